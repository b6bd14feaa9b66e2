import math

import pytest
import torch
import torchattacks

from symact import attacks, evaluation
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
        if name != "autoattack":  # two classes: too few for APGD-T (below)
            attacks.make_attack(name, trained, eps=0.1)
    with pytest.raises(ValueError, match="n_classes >= 4"):
        attacks.make_attack("autoattack", trained, eps=0.1)
    with pytest.raises(ValueError, match="available: fgsm"):
        attacks.make_attack("deepfool", trained)
    with pytest.raises(ValueError, match="eps"):
        attacks.make_attack("fgsm", trained, eps=-1)
    with pytest.raises(ValueError, match="restarts"):
        attacks.make_attack("pgd", trained, restarts=0)


def test_evaluate_metrics(trained, toy_data):
    clean = evaluation.evaluate(trained, toy_data)
    assert {"n", "clean_acc", "outcome"} <= set(clean) and "robust_acc" not in clean and clean["n"] == len(toy_data)
    none = evaluation.evaluate(trained, toy_data, lambda x, y: x)
    assert none["robust_acc"] == clean["clean_acc"] and none["success_rate"] == 0
    assert math.isnan(none["psnr"]) and math.isnan(none["mean_linf"])
    big = 0.4  # larger than half the gap between the class means: the attack must win
    fgsm = evaluation.evaluate(trained, toy_data, attacks.make_attack("fgsm", trained, eps=big))
    pgd = evaluation.evaluate(trained, toy_data, attacks.make_attack("pgd", trained, eps=big, steps=20, restarts=2))
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
    out = evaluation.evaluate(trained, small, lambda xb, yb: x_adv, batch_size=len(small))
    with torch.no_grad():
        clean_ok = trained(x).argmax(1) == y
        p = trained(x_adv).softmax(1)
    fooled = clean_ok & (p.argmax(1) != y)
    want = [abs(float(p[i, y[i]] - p[i, p[i].argmax()])) for i in range(len(y)) if fooled[i]]
    assert want and out["confidence_gap"] == pytest.approx(sum(want) / len(want), rel=1e-5)


def test_wilson_interval():
    lo, hi = evaluation.proportion_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert evaluation.proportion_interval(0, 10)[0] == 0.0 and evaluation.proportion_interval(10, 10)[1] == 1.0
    lo1000, hi1000 = evaluation.proportion_interval(500, 1000)
    assert hi1000 - lo1000 < (hi - lo) / 3  # ten times the images, about a third of the width
    with pytest.raises(ValueError):
        evaluation.proportion_interval(11, 10)


def test_evaluate_returns_examples(trained, toy_data):
    out = evaluation.evaluate(trained, toy_data.head(20), attacks.make_attack("fgsm", trained, eps=0.1),
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


class _ViewNet(torch.nn.Module):
    """A plain user module: a convolution, then ``x.view(x.size(0), -1)`` (fails on channels-last activations)."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 6 * 6, classes)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(h.view(h.size(0), -1))


def _view_net_and_images(n=12, classes=5, seed=0):
    torch.manual_seed(seed)
    model = _ViewNet(classes).eval()
    x = torch.rand(n, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def _cheap(aa, steps=4, queries=40):
    """AutoAttack with its components cut down to seconds (the parameters are checked separately)."""
    for name, atk in aa.components:
        if name == "square":
            atk.n_queries = queries
        else:
            atk.steps = steps
    return aa


def test_autoattack_carries_the_official_parameters():
    model, _, _ = _view_net_and_images(classes=10)
    for norm in ("Linf", "L2"):
        aa = attacks.make_attack("autoattack", model, eps=0.3, norm=norm)
        assert isinstance(aa, attacks.AutoAttack) and isinstance(aa, torchattacks.attack.Attack)
        assert [n for n, _ in aa.components] == ["apgd-ce", "apgd-t", "fab-t", "square"] == list(
            attacks.AUTOATTACK_COMPONENTS)
        c = dict(aa.components)
        assert isinstance(c["apgd-ce"], torchattacks.APGD) and c["apgd-ce"].loss == "ce"
        assert isinstance(c["apgd-t"], torchattacks.APGDT) and isinstance(c["fab-t"], torchattacks.FAB)
        assert isinstance(c["square"], torchattacks.Square)
        for name in ("apgd-ce", "apgd-t", "fab-t"):
            assert c[name].steps == 100, name
        assert c["apgd-t"].n_target_classes == 9 and c["fab-t"].n_target_classes == 9
        assert c["fab-t"].multi_targeted
        assert c["square"].n_queries == 5000 and c["square"].p_init == 0.8 and not c["square"].rescale_schedule
        for _, atk in aa.components:
            assert atk.n_restarts == 1 and atk.seed == 0 and atk.norm == norm and atk.eps == 0.3
        assert aa.n_classes == 10 and aa.seed == 0  # inferred from the last nn.Linear; seed 0, never the clock
    eleven = attacks.AutoAttack(_ViewNet(11), eps=0.1, seed=3)
    assert dict(eleven.components)["apgd-t"].n_target_classes == 9  # the authors fix 9 targets
    assert all(atk.seed == 3 for _, atk in eleven.components)


def test_cascade_10_is_torchattacks_weaker_autoattack_with_a_seed():
    model, _, _ = _view_net_and_images(classes=10)
    old = attacks.make_attack("cascade-10", model, eps=0.3)
    assert type(old) is torchattacks.AutoAttack and old.seed == 0
    assert old._autoattack.attacks[0].steps == 10  # not AutoAttack's 100
    with pytest.raises(ValueError, match="seed"):
        attacks.make_attack("cascade-10", model, eps=0.3, seed=None)


def test_autoattack_is_seeded_and_records_the_cascade():
    model, x, y = _view_net_and_images(n=16)
    y[:2] = (y[:2] + 1) % 5  # two images misclassified before the attack
    aa = _cheap(attacks.make_attack("autoattack", model, eps=0.15, seed=0))
    seen = {}
    for name, atk in aa.components:
        forward = atk.forward

        def spy(images, labels, name=name, forward=forward):
            seen[name] = len(images)
            return forward(images, labels)
        atk.forward = spy
    torch.manual_seed(123)
    adv = aa(x, y)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))  # the components reseed torch; the user's state is restored
    broken = aa.last_broken_by.clone()
    assert broken.shape == y.shape and broken.dtype == torch.long
    assert broken[:2].eq(attacks.MISCLASSIFIED).all() and (broken[2:] != attacks.MISCLASSIFIED).all()
    assert (broken >= 0).any() and broken.max() < 4
    with torch.no_grad():
        wrong = model(adv).argmax(1) != y
    assert wrong[broken >= 0].all() and not wrong[broken == attacks.ROBUST].any()
    assert torch.equal(adv[broken < 0], x[broken < 0])  # unbroken and misclassified images come back unchanged
    assert ((adv - x).abs().amax((1, 2, 3)) <= 0.15 + 1e-6).all()
    # each component ran only on the images still robust: never on the misclassified ones
    for k, (name, _) in enumerate(aa.components):
        if name in seen:
            assert seen[name] == int(((broken == attacks.ROBUST) | (broken >= k)).sum()), name
    assert len(aa.last_seconds) == len(seen)
    again = aa(x, y)  # seeded: the same per-image outcome and the same images
    assert torch.equal(again, adv) and torch.equal(aa.last_broken_by, broken)


def test_autoattack_under_a_prediction_rule():
    model, x, y = _view_net_and_images(n=10)
    reject_all = lambda out: torch.full((len(out),), -1, dtype=torch.long)  # noqa: E731
    aa = _cheap(attacks.AutoAttack(model, eps=0.1, predict=reject_all))
    adv = aa(x, y)
    assert aa.last_broken_by.eq(attacks.MISCLASSIFIED).all() and torch.equal(adv, x)  # nothing left to attack
    # a rule that rejects low-margin decisions: the cascade counts a rejection as broken
    margin = lambda out: torch.where(out.topk(2, 1).values.diff(dim=1)[:, 0].abs() > 1e9, out.argmax(1), -1)  # noqa
    aa = _cheap(attacks.AutoAttack(model, eps=0.1, predict=margin))
    aa(x, y)
    assert aa.last_broken_by.eq(attacks.MISCLASSIFIED).all()


def test_autoattack_bad_input():
    model, _, _ = _view_net_and_images()
    with pytest.raises(ValueError, match="norm"):
        attacks.AutoAttack(model, norm="L1")
    with pytest.raises(ValueError, match="eps"):
        attacks.AutoAttack(model, eps=-0.1)
    with pytest.raises(ValueError, match="eps"):
        attacks.make_attack("autoattack", model, eps=float("nan"))
    with pytest.raises(ValueError, match="n_classes"):
        attacks.AutoAttack(model, n_classes=1)
    with pytest.raises(ValueError, match="n_classes >= 4"):
        attacks.AutoAttack(model, n_classes=3)
    with pytest.raises(ValueError, match="seed"):
        attacks.AutoAttack(model, seed=None)
    with pytest.raises(ValueError, match="n_classes"):
        attacks.AutoAttack(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3)))  # nothing to infer from


def _old_first_success(runs, correct):
    """The closure ``symact.attacks.first_success`` was (commit ab43a1c), kept here as the reference."""
    def attack(x, y):
        best = x.detach().clone()
        todo = torch.ones(len(y), dtype=torch.bool, device=y.device)
        for run in runs:
            idx = todo.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            adv = run(x[idx], y[idx]).detach()
            best[idx] = adv
            with torch.no_grad():
                todo[idx] = correct(adv, y[idx])
        return best
    return attack


def _old_pgd_restarts(model, loss_fn, eps, alpha, steps, restarts, seed, correct=None):
    """The closure ``symact.attacks.pgd_restarts`` was (commit ab43a1c), kept here as the reference."""
    correct = correct or (lambda adv, y: model(adv).argmax(1) == y)

    def attack(x, y):
        gen = torch.Generator().manual_seed(seed)
        run = lambda xs, ys: attacks.perturb_linf(model, xs, ys, eps, alpha, steps, loss_fn, True, gen)  # noqa: E731
        return _old_first_success([run] * restarts, correct)(x, y)
    return attack


def test_loss_pgd_equals_the_old_pgd_restarts():
    model, x, y = _view_net_and_images(n=24)
    def mse(out, yy):
        return torch.nn.functional.mse_loss(out.softmax(1), torch.nn.functional.one_hot(yy, 5).float())
    rule = lambda out: torch.where(out.softmax(1).amax(1) < 0.3, -1, out.argmax(1))  # noqa: E731  rejects
    for loss_fn, restarts, predict in [(None, 3, None), (mse, 4, None), (torch.nn.functional.cross_entropy, 3, rule)]:
        old_correct = None if predict is None else (lambda adv, yy: rule(model(adv)) == yy)
        old = _old_pgd_restarts(model, loss_fn, 0.05, 0.02, 3, restarts, 7, old_correct)(x, y)
        new = attacks.LossPGD(model, 0.05, 0.02, 3, restarts=restarts, loss_fn=loss_fn, seed=7, predict=predict)(x, y)
        assert torch.equal(old, new)
    with pytest.raises(ValueError, match="restarts"):
        attacks.LossPGD(model, 0.1, 0.1, 3, restarts=0)
    with pytest.raises(ValueError, match="eps"):
        attacks.LossPGD(model, -0.1, 0.1, 3)


def test_loss_pgd_keeps_a_fooling_start():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    x = torch.rand(16, 1, 2, 2)
    y = model(x).argmax(1)
    adv = attacks.LossPGD(model, eps=1.0, alpha=0.5, steps=5, restarts=3,
                          loss_fn=torch.nn.functional.cross_entropy)(x, y)
    assert (adv - x).abs().max() <= 1.0 + 1e-6
    assert (model(adv).argmax(1) != y).float().mean() > 0.5  # a budget of 1 on [0, 1] images fools a linear model


class _Scale(torch.nn.Module):
    """Logits (0, x): class 1 iff the image's single pixel is positive; the margin is the pixel value."""

    def forward(self, x):
        v = x.flatten(1)[:, :1]
        return torch.cat([torch.zeros_like(v), v], 1)


def test_first_success_attacks_only_what_is_left_under_a_rule():
    seen = []

    def run(value):
        def attack(x, y):
            seen.append(len(y))
            return torch.full_like(x, value)
        return attack

    model = _Scale()
    x, y = torch.full((6, 1, 1, 1), 0.9), torch.ones(6, dtype=torch.long)
    y[0] = 0  # misclassified before the attack
    def confident(out):  # rejects margins <= 0.5
        return torch.where(out[:, 1] - out[:, 0] > 0.5, out.argmax(1), -1)
    chain = attacks.FirstSuccess([run(0.8), run(0.4), run(0.45)], predict=confident, model=model)
    adv = chain(x, y)
    # 0.8 keeps the argmax and the rule's decision; 0.4 keeps the argmax (class 1) but the rule rejects it: a success
    assert seen == [6, 5] and adv[1:].eq(0.4).all() and adv[0].eq(0.8).all()
    assert chain.last_broken_by.tolist() == [attacks.MISCLASSIFIED] + [1] * 5
    argmax = attacks.FirstSuccess([run(0.8), run(0.4)], model=model)  # under arg max nothing fools
    seen.clear()
    adv = argmax(x, y)
    assert seen == [6, 5] and argmax.last_broken_by.tolist() == [attacks.MISCLASSIFIED] + [attacks.ROBUST] * 5
    skip = attacks.FirstSuccess([run(0.4)], predict=confident, model=model, skip_misclassified=True)
    seen.clear()
    adv = skip(x, y)
    assert seen == [5] and adv[0].eq(0.9).all()  # the misclassified image is not attacked
    with pytest.raises(ValueError, match="model="):
        attacks.FirstSuccess([run(1.0)])
    with pytest.raises(ValueError, match="at least one"):
        attacks.FirstSuccess([], model=model)


def test_attacks_compose_with_multiattack():
    model, x, y = _view_net_and_images(n=10)
    parts = [attacks.FGSMaxGrad(model, 0.05), attacks.LossPGD(model, 0.1, 0.03, 5, seed=1),
             attacks.FirstSuccess([attacks.LossPGD(model, 0.1, 0.03, 5, seed=2)])]
    multi = torchattacks.MultiAttack(parts)
    adv = multi(x, y)
    assert adv.shape == x.shape and ((adv - x).abs().amax((1, 2, 3)) <= 0.1 + 1e-6).all()
    single = parts[1](x, y)
    with torch.no_grad():
        assert (model(adv).argmax(1) != y).sum() >= (model(single).argmax(1) != y).sum() > 0
    # a FirstSuccess of torchattacks objects, and one inside a MultiAttack
    nested = torchattacks.MultiAttack([attacks.FirstSuccess(parts[:2]), torchattacks.FGSM(model, eps=0.1)])
    assert nested(x, y).shape == x.shape


def test_fgs_max_grad_attack_leaves_the_box_without_clip():
    model, x, y = _view_net_and_images(n=8)
    far = attacks.FGSMaxGrad(model, 0.9)(x, y)
    assert far.min() < 0 or far.max() > 1  # the paper's Eq. 10 does not clip, and torchattacks lets it through
    assert torch.equal(far, attacks.fgs_max_grad(model, x, y, 0.9))
    clipped = attacks.FGSMaxGrad(model, 0.9, clip=True)(x, y)
    assert clipped.min() >= 0 and clipped.max() <= 1
    multi = torchattacks.MultiAttack([attacks.FGSMaxGrad(model, 0.9), attacks.FGSMaxGrad(model, 0.9, clip=True)])
    assert multi(x, y).shape == x.shape
    with pytest.raises(ValueError, match="beta"):
        attacks.FGSMaxGrad(model, -1.0)


def test_every_attack_runs_on_a_plain_view_module():
    model, x, y = _view_net_and_images(n=6)
    model.train()
    kwargs = {"cw": dict(steps=3), "square": dict(n_queries=20), "onepixel": dict(steps=1, popsize=10),
              "de": dict(steps=1, popsize=10), "pgd": dict(steps=3, restarts=2)}
    made = {}
    for name in attacks.ATTACKS:
        atk = attacks.make_attack(name, model, eps=0.1, **kwargs.get(name, {}))
        if name == "autoattack":
            _cheap(atk, steps=2, queries=10)
        if name == "cascade-10":
            atk._autoattack.attacks[3].n_queries = 10
        made[name] = atk
    made.update(losspgd=attacks.LossPGD(model, 0.1, 0.05, 2, restarts=2), fgsmaxgrad=attacks.FGSMaxGrad(model, 0.1),
                firstsuccess=attacks.FirstSuccess([attacks.FGSMaxGrad(model, 0.1, clip=True)]))
    for name, atk in made.items():
        adv = atk(x, y)
        assert adv.shape == x.shape, name
        assert model.training, name  # the mode is restored
        if name not in ("cw", "onepixel", "de"):
            assert (adv - x).abs().max() <= 0.1 + 1e-6, name


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
    whole = evaluation.evaluate(model, imgs, atk)
    halves = [evaluation.evaluate(model, dataclasses.replace(imgs, x=imgs.x[i:i + 20], y=imgs.y[i:i + 20]), atk)
              for i in (0, 20)]
    assert 0 < whole["success_rate"] < 1 and halves[0]["success_rate"] != halves[1]["success_rate"]
    pooled = evaluation.pool(halves)
    assert set(pooled) == set(whole)
    for key in ("n", "clean_acc", "robust_acc", "success_rate", "psnr", "mean_linf", "mean_l2", "confidence_gap"):
        assert pooled[key] == pytest.approx(whole[key], rel=1e-6), key
    assert pooled["outcome"] == whole["outcome"] and pooled["worst_case"]["outcome"] == whole["worst_case"]["outcome"]
    assert evaluation.pool([evaluation.evaluate(model, imgs)] * 2)["n"] == 2 * len(imgs)  # clean only pools too
