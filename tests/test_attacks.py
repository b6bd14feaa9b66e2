import math

import pytest
import torch
import torchattacks

from symact import attacks
from symact.train import TrainConfig, train


@pytest.fixture
def trained(toy_data, toy_model):
    train(toy_model, toy_data, TrainConfig(epochs=3, batch_size=32, lr=0.1))
    return toy_model


def _on_model_device(model, data):
    return data.tensors(next(model.parameters()).device)


def test_perturb_linf_stays_in_ball_and_box(trained, toy_data):
    x, y = _on_model_device(trained, toy_data.head(64))
    adv = attacks.perturb_linf(trained, x, y, eps=0.1, alpha=0.03, steps=5)
    assert (adv - x).abs().max() <= 0.1 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1


def test_perturb_linf_equals_torchattacks_pgd_for_cross_entropy(trained, toy_data):
    x, y = _on_model_device(trained, toy_data.head(64))
    trained.eval()
    ours = attacks.perturb_linf(trained, x, y, eps=0.2, alpha=0.05, steps=7, random_start=False)
    theirs = torchattacks.PGD(trained, eps=0.2, alpha=0.05, steps=7, random_start=False)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_make_attack_names_and_errors(trained):
    assert isinstance(attacks.make_attack("pgd", trained, eps=0.1, restarts=3), torchattacks.MultiAttack)
    assert isinstance(attacks.make_attack("pgd", trained, eps=0.1), torchattacks.PGD)
    for name in attacks.ATTACKS:
        attacks.make_attack(name, trained, eps=0.1)
    with pytest.raises(ValueError, match="available: fgsm"):
        attacks.make_attack("deepfool", trained)
    with pytest.raises(ValueError, match="eps"):
        attacks.make_attack("fgsm", trained, eps=-1)
    with pytest.raises(ValueError, match="restarts"):
        attacks.make_attack("pgd", trained, restarts=0)


def test_evaluate_metrics(trained, toy_data):
    clean = attacks.evaluate(trained, toy_data)
    assert set(clean) == {"n", "clean_acc"} and clean["n"] == len(toy_data)
    none = attacks.evaluate(trained, toy_data, lambda x, y: x)
    assert none["robust_acc"] == clean["clean_acc"] and none["success_rate"] == 0
    assert math.isnan(none["psnr"]) and math.isnan(none["mean_linf"])
    big = 0.4  # larger than half the gap between the class means: the attack must win
    fgsm = attacks.evaluate(trained, toy_data, attacks.make_attack("fgsm", trained, eps=big))
    pgd = attacks.evaluate(trained, toy_data, attacks.make_attack("pgd", trained, eps=big, steps=20, restarts=2))
    assert pgd["robust_acc"] <= fgsm["robust_acc"] and pgd["robust_acc"] < 0.2
    assert fgsm["mean_linf"] == pytest.approx(big, abs=1e-5)
    # PSNR of an eps-sign perturbation where no pixel is clipped is exactly 10 log10(1 / eps^2); clipping only raises it
    assert fgsm["psnr"] >= 10 * math.log10(1 / big**2) - 1e-3
    assert 0 < pgd["success_rate"] <= 1
    assert math.isnan(none["confidence_gap"]) and 0 <= pgd["confidence_gap"] <= 1


def test_confidence_gap_is_the_papers_metric(trained, toy_data):
    """avg |Z_true - Z_adv| (symmetric-apl.txt Section 6.1) recomputed by hand from the adversarial images."""
    small = toy_data.head(40)
    atk = attacks.make_attack("pgd", trained, eps=0.4, steps=10)
    x, y = _on_model_device(trained, small)
    torch.manual_seed(0)
    x_adv = atk(x, y)
    out = attacks.evaluate(trained, small, lambda xb, yb: x_adv, batch_size=len(small))
    with torch.no_grad():
        clean_ok = trained(x).argmax(1) == y
        p = trained(x_adv).softmax(1)
    fooled = clean_ok & (p.argmax(1) != y)
    want = [abs(float(p[i, y[i]] - p[i, p[i].argmax()])) for i in range(len(y)) if fooled[i]]
    assert want and out["confidence_gap"] == pytest.approx(sum(want) / len(want), rel=1e-5)


def test_wilson_interval():
    lo, hi = attacks.wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert attacks.wilson_interval(0, 10)[0] == 0.0 and attacks.wilson_interval(10, 10)[1] == 1.0
    lo1000, hi1000 = attacks.wilson_interval(500, 1000)
    assert hi1000 - lo1000 < (hi - lo) / 3  # ten times the images, about a third of the width
    with pytest.raises(ValueError, match="successes"):
        attacks.wilson_interval(11, 10)


def test_evaluate_returns_examples(trained, toy_data):
    out = attacks.evaluate(trained, toy_data.head(20), attacks.make_attack("fgsm", trained, eps=0.1),
                           batch_size=8, return_examples=5)
    ex = out["examples"]
    assert len(ex["label"]) == 5 and torch.tensor(ex["adversarial"]).shape == (5, 1, 8, 8)


def test_eq10_picks_the_wrong_class_with_the_largest_gradient(trained, toy_data):
    """saf.txt Eq. 10 against a per-image, per-class brute force."""
    x, y = _on_model_device(trained, toy_data.head(12))
    trained.eval()
    direction, target = attacks.eq10_direction(trained, x, y)
    n_out = trained(x[:1]).shape[1]
    for i in range(len(x)):
        norms, grads = {}, {}
        for cls in range(n_out):
            if cls == int(y[i]):
                continue
            xi = x[i : i + 1].clone().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(trained(xi), torch.tensor([cls], device=x.device))
            (g,) = torch.autograd.grad(loss, xi)
            norms[cls], grads[cls] = float(g.abs().sum()), g[0]
        best = max(norms, key=norms.get)
        assert int(target[i]) == best != int(y[i])
        assert torch.equal(direction[i], -grads[best].sign())


def test_fgs_max_grad_step_size_clip_and_errors(trained, toy_data):
    x, y = _on_model_device(trained, toy_data.head(16))
    trained.eval()
    adv = attacks.fgs_max_grad(trained, x, y, beta=0.3)
    assert torch.allclose((adv - x).abs().amax(), torch.tensor(0.3, device=x.device))
    far = attacks.fgs_max_grad(trained, x, y, beta=0.9)
    assert far.min() < 0 or far.max() > 1          # the paper's Eq. 10 does not clip
    clipped = attacks.fgs_max_grad(trained, x, y, beta=0.9, clip=True)
    assert clipped.min() >= 0 and clipped.max() <= 1
    # a label outside the candidate classes (a nonsense class) leaves every class a candidate
    _, target = attacks.eq10_direction(trained, x, torch.full_like(y, 99))
    assert target.min() >= 0
    with pytest.raises(ValueError, match="beta"):
        attacks.fgs_max_grad(trained, x, y, beta=-0.1)
    with pytest.raises(ValueError, match="num_classes"):
        attacks.eq10_direction(trained, x, y, num_classes=1)


def test_pgd_restarts_keeps_a_fooling_start():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    x = torch.rand(16, 1, 2, 2)
    y = model(x).argmax(1)
    adv = attacks.pgd_restarts(model, torch.nn.functional.cross_entropy, eps=1.0, alpha=0.5, steps=5, restarts=3, seed=0)(x, y)
    assert (adv - x).abs().max() <= 1.0 + 1e-6
    assert (model(adv).argmax(1) != y).float().mean() > 0.5  # a budget of 1 on [0, 1] images fools a linear model


def test_first_success_attacks_only_what_is_left():
    seen = []

    def run(value):
        def attack(x, y):
            seen.append(len(y))
            return torch.full_like(x, value)
        return attack

    x, y = torch.zeros(6, 1), torch.tensor([0, 1, 0, 1, 0, 1])
    correct = lambda adv, y: (adv[:, 0] < 1) | (y == 0)  # noqa: E731  value 1 fools only the label-1 images
    adv = attacks.first_success([run(1.0), run(2.0)], correct)(x, y)
    assert seen == [6, 3]                        # the second run sees only the images the first left correct
    assert adv[y == 1].eq(1).all() and adv[y == 0].eq(2).all()
    with pytest.raises(ValueError, match="correct"):
        attacks.first_success([run(1.0)])


class _BrightPixel(torch.nn.Module):
    """Class 1 iff some pixel's first channel exceeds its second by more than 0.8 (a smooth max over pixels)."""

    def forward(self, x):
        score = 20 * torch.logsumexp(20 * (x[:, 0] - x[:, 1]).flatten(1), 1) / 20
        return torch.stack([torch.full_like(score, 16.0), score], 1)


def test_pixel_de_fools_with_few_pixels_and_stops_early():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 8, 8) * 0.5
    y = torch.zeros(6, dtype=torch.long)
    model = _BrightPixel()
    assert (model(x).argmax(1) == 0).all()
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    for k in (1, 3):
        calls.clear()
        adv = attacks.PixelDE(model, pixels=k, steps=10, popsize=50)(x, y)
        assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
        changed = (adv != x).any(1).flatten(1).sum(1)
        assert (changed <= k).all() and (changed >= 1).all()
        assert (model(adv).argmax(1) == 1).all()
        assert len(calls) < 2 + 10 * 2  # stopped before the last generation
    sizes = []
    model.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    attacks.PixelDE(model, pixels=5, steps=0, popsize=20, inf_batch=10**6)(x[:1], y[:1])
    assert sizes[0] == 25  # as torchattacks: max(1, popsize // D) * D candidates, D = 5 pixels * (2 + 3 channels)
    assert attacks.de_population(20, 5, 3) == 25 and attacks.de_population(400, 3, 3) == 390
    assert attacks.de_population(1, 1, 1) == 5  # SciPy's minimum
    same = attacks.PixelDE(model, steps=2, popsize=50, seed=3)
    assert torch.equal(same(x, y), same(x, y))  # seeded: reproducible
    model.train()
    same(x, y)
    assert model.training  # it attacks an eval-mode copy (symact.models.inference_copy), not the model


def test_pixel_de_matches_torchattacks_onepixel_statistically():
    """The same algorithm as torchattacks' OnePixel: on a small random CNN, success rates agree."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 6 * 6, 4)).eval()
    x = torch.rand(40, 3, 8, 8)
    y = model(x).argmax(1).detach()
    rates = {}
    for name, atk in [("ours", attacks.PixelDE(model, pixels=1, steps=5, popsize=30)),
                      ("torchattacks", torchattacks.OnePixel(model, pixels=1, steps=5, popsize=30))]:
        torch.manual_seed(0)
        import numpy as np
        np.random.seed(0)
        adv = atk(x, y)
        assert ((adv != x).any(1).flatten(1).sum(1) <= 1).all()
        rates[name] = (model(adv).argmax(1) != y).float().mean().item()
    assert 0.1 < rates["torchattacks"] and abs(rates["ours"] - rates["torchattacks"]) <= 0.15, rates


def test_pixel_de_bad_input():
    model = _BrightPixel()
    with pytest.raises(ValueError, match="pixels >= 1"):
        attacks.PixelDE(model, pixels=0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        attacks.PixelDE(model)(torch.rand(3, 8, 8), torch.zeros(3, dtype=torch.long))
    assert isinstance(attacks.make_attack("de", model, pixels=2), attacks.PixelDE)


def test_pool_evaluations_is_the_evaluation_of_the_union():
    """evaluate() on two halves, pooled, is evaluate() on the whole (a deterministic attack: FGSM)."""
    import dataclasses

    from symact.data import ImageData

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3)).eval()
    imgs = ImageData((torch.rand(40, 3, 4, 4) * 255).to(torch.uint8), torch.randint(0, 3, (40,)), "toy", tuple("abc"),
                     "toy")
    atk = attacks.make_attack("fgsm", model, eps=0.1)
    whole = attacks.evaluate(model, imgs, atk)
    halves = [attacks.evaluate(model, dataclasses.replace(imgs, x=imgs.x[i:i + 20], y=imgs.y[i:i + 20]), atk)
              for i in (0, 20)]
    assert 0 < whole["success_rate"] < 1 and halves[0]["success_rate"] != halves[1]["success_rate"]
    pooled = attacks.pool_evaluations(halves)
    assert set(pooled) == set(whole)
    for key, value in whole.items():
        assert pooled[key] == pytest.approx(value, rel=1e-6), key
    with pytest.raises(ValueError, match="evaluate"):
        attacks.pool_evaluations([attacks.evaluate(model, imgs)])  # no attack
