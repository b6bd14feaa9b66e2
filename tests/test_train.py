import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from symact.attacks import accuracy
from symact.train import TrainConfig, _lr_at, loss_function, train


def test_standard_training_learns(toy_data, toy_model):
    hist = train(toy_model, toy_data, TrainConfig(epochs=3, batch_size=32, lr=0.1), test=toy_data)
    assert len(hist["train_loss"]) == 3 and hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["test_acc"][-1] > 0.95
    assert accuracy(toy_model, toy_data) == pytest.approx(hist["test_acc"][-1])


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_adversarial_training_runs_and_is_robust(toy_data, toy_model, method):
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.1, method=method, eps=0.1, pgd_steps=3, schedule="cyclic")
    hist = train(toy_model, toy_data, cfg)
    assert hist["train_acc"][-1] > 0.9  # the toy task is robust at eps = 0.1 (class means differ by 0.33)
    if method == "fgsm":
        assert len(hist["check_robust_acc"]) == len(hist["epoch"])
        assert hist["check_robust_acc"][-1] > 0.9
        assert hist["stopped_early"] is None


def test_fgsm_early_stop_restores_previous_weights(toy_data, toy_model, monkeypatch):
    import symact.train as t

    seq = iter([0.9, 0.5, 0.5])  # robust accuracy collapses after epoch 2
    monkeypatch.setattr(t, "_robust_check", lambda *a, **k: next(seq))
    snapshots = []
    orig = toy_model.load_state_dict

    def spy(state, *a, **k):
        snapshots.append({k2: v.clone() for k2, v in state.items()})
        return orig(state, *a, **k)

    monkeypatch.setattr(toy_model, "load_state_dict", spy)
    hist = train(toy_model, toy_data, TrainConfig(epochs=3, batch_size=64, lr=0.05, method="fgsm", eps=0.1))
    assert hist["stopped_early"] == 1 and len(hist["epoch"]) == 2 and len(snapshots) == 1


def test_cyclic_schedule_shape():
    cfg = TrainConfig(epochs=10, lr=0.2, schedule="cyclic")
    assert _lr_at(cfg, 0) == 0 and _lr_at(cfg, 4) == pytest.approx(0.2) and _lr_at(cfg, 10) == 0
    assert _lr_at(cfg, 2) == pytest.approx(0.1)
    step = TrainConfig(epochs=4, lr=1.0, schedule="step")
    assert [_lr_at(step, t) for t in (1, 2, 3)] == pytest.approx([1.0, 0.1, 0.01])


def test_mse_loss_uses_one_hot():
    out = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    y = torch.tensor([0, 1])
    assert loss_function("mse")(out, y).item() == pytest.approx((0 + 0 + 0.25 + 0.25) / 4)


@pytest.mark.parametrize(
    "kwargs", [{"method": "free"}, {"schedule": "exp"}, {"loss": "hinge"}, {"optimizer": "rmsprop"}, {"epochs": 0}]
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)



def _toy_net(seed: int) -> torch.nn.Module:
    from symact.models import Normalize

    torch.manual_seed(seed)
    return torch.nn.Sequential(Normalize((0.5,), (0.2,)), torch.nn.Flatten(), torch.nn.Linear(64, 16),
                               torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 2))


class _Stop(Exception):
    pass


@pytest.mark.parametrize("method", ["standard", "fgsm"])
def test_checkpoint_resume_equals_uninterrupted_training(toy_data, tmp_path, method):
    """Training stopped mid-epoch and resumed from its checkpoint ends where an uninterrupted run does: same
    weights, same history but the seconds. Dropout, shuffling, augmentation and the FGSM start all draw
    random numbers, so any generator state the checkpoint missed would show."""
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.1, method=method, eps=0.1, augment=True)
    whole = _toy_net(0)
    ref = train(whole, toy_data, cfg)

    calls = []

    def stop_in_epoch_3(x, y, g):  # 8 batches an epoch: the third batch of epoch 3 raises
        calls.append(1)
        if len(calls) == 19:
            raise _Stop
        return x, y  # unchanged: it changes no number

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(_Stop):
        train(_toy_net(0), toy_data, cfg, batch_fn=stop_in_epoch_3, checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    torch.manual_seed(123)  # the global generator is restored from the checkpoint too
    net = _toy_net(1)  # other initial weights, replaced by the checkpoint's
    resumed = train(net, toy_data, cfg, checkpoint=ckpt)
    assert not ckpt.exists()
    assert {k: v for k, v in resumed.items() if k != "seconds"} == {k: v for k, v in ref.items() if k != "seconds"}
    assert len(resumed["seconds"]) == 3
    for (k, a), b in zip(whole.state_dict().items(), net.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=k)


def test_checkpoint_of_another_run_raises(toy_data, toy_model, tmp_path):
    ckpt = tmp_path / "run.ckpt"

    def stop_after_epoch_1(x, y, g):
        if ckpt.exists():
            raise _Stop
        return x, y

    with pytest.raises(_Stop):
        train(toy_model, toy_data, TrainConfig(epochs=2, batch_size=128), batch_fn=stop_after_epoch_1, checkpoint=ckpt)
    with pytest.raises(ValueError, match="another config"):
        train(toy_model, toy_data, TrainConfig(epochs=2, batch_size=64), checkpoint=ckpt)


class _ViewFlatten(torch.nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


def _user_conv_net() -> torch.nn.Module:
    """A user's convolutional network flattening by ``view``, as Wong et al.'s MNIST network does."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                               _ViewFlatten(), torch.nn.Linear(8 * 2 * 2, 2))


@pytest.mark.parametrize("method", ["standard", "fgsm"])
def test_train_runs_a_user_network_that_flattens_by_view(toy_data, method):
    from symact.train import place

    model = _user_conv_net()
    hist = train(model, toy_data, TrainConfig(epochs=3, batch_size=32, lr=0.1, method=method, eps=0.05), test=toy_data)
    assert hist["test_acc"][-1] > 0.9
    assert not model[2].weight.is_contiguous(memory_format=torch.channels_last)
    place(model)
    assert not model[2].weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="view"):  # the layout it cannot take, when asked for explicitly
        train(_user_conv_net(), toy_data, TrainConfig(epochs=1, batch_size=32), channels_last=True)


def test_library_conv_models_still_train_channels_last():
    from symact.data import ImageData
    from symact.models import LeNet5
    from symact.train import place

    g = torch.Generator().manual_seed(0)
    tiny = ImageData(torch.randint(0, 256, (16, 1, 28, 28), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (16,), generator=g), "tiny", tuple(map(str, range(10))), "random")
    torch.manual_seed(0)
    model = LeNet5("mnist")
    conv2 = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][1]
    train(model, tiny, TrainConfig(epochs=1, batch_size=8))
    assert conv2.weight.is_contiguous(memory_format=torch.channels_last)
    place(model, channels_last=False)  # asked not to
    assert not conv2.weight.is_contiguous(memory_format=torch.channels_last)


def test_start_rule_is_recorded_and_changes_only_the_adversarial_start(toy_data):
    cfg = TrainConfig(epochs=1, batch_size=64, lr=0.05, method="fgsm", eps=0.3, alpha=0.375, early_stop=False)
    assert cfg.start == "clamped"
    hists = {s: train(_toy_net(0), toy_data, dataclasses.replace(cfg, start=s)) for s in ("clamped", "unclamped")}
    assert hists["clamped"]["random_start"] == "clamped" and hists["unclamped"]["random_start"] == "unclamped"
    assert hists["clamped"]["train_loss"] != hists["unclamped"]["train_loss"]
    assert "random_start" not in train(_toy_net(0), toy_data, TrainConfig(epochs=1))
    with pytest.raises(ValueError):
        TrainConfig(start="zero")


def test_perturb_linf_clamp_start_only_moves_the_first_gradient():
    from symact.attacks import perturb_linf

    seen = []

    class Probe(torch.nn.Module):  # records the input of every forward pass; a linear classifier
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(16, 2)

        def forward(self, x):
            seen.append(x.detach().clone())
            return self.lin(x.flatten(1))

    torch.manual_seed(0)
    model, x, y = Probe(), torch.rand(8, 1, 4, 4), torch.randint(0, 2, (8,))
    x[:, :, 0] = 0.0  # pixels at the border of the image range, where the start may leave it
    outs = {}
    for clamp in (True, False):
        seen.clear()
        outs[clamp] = perturb_linf(model, x, y, 0.3, 0.375, 1, generator=torch.Generator().manual_seed(1),
                                   clamp_start=clamp)
        start = seen[0]
        assert (start.min() >= 0) == clamp  # unclamped, the first gradient is taken outside [0, 1]
        assert ((start - x).abs().max() <= 0.3 + 1e-6)
        assert outs[clamp].min() >= 0 and outs[clamp].max() <= 1 and (outs[clamp] - x).abs().max() <= 0.3 + 1e-6
    assert not torch.equal(outs[True], outs[False])


def test_clamped_start_makes_fgsm_on_a_black_background_the_fgsm_without_random_start():
    """The mechanism behind catastrophic overfitting on MNIST (fundamentals chapter): on pixels at 0, FGSM with
    step 1.25 eps from the clamped start lands on 0 or eps, exactly where FGSM without a random start lands
    (the gradient signs agree here: a linear model); from the unclamped start it lands anywhere in [0, eps]."""
    from symact.attacks import perturb_linf

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    x, y = torch.zeros(256, 1, 8, 8), torch.randint(0, 2, (256,))
    eps = 0.3
    plain = perturb_linf(model, x, y, eps, eps, 1, random_start=False)
    clamped = perturb_linf(model, x, y, eps, 1.25 * eps, 1, generator=torch.Generator().manual_seed(0))
    unclamped = perturb_linf(model, x, y, eps, 1.25 * eps, 1, generator=torch.Generator().manual_seed(0),
                             clamp_start=False)
    torch.testing.assert_close(clamped, plain, rtol=0, atol=1e-6)
    inside = ((unclamped > 1e-6) & (unclamped < eps - 1e-6)).float().mean()
    assert 0.1 < inside < 0.3  # pushed up (half the pixels) from u < -eps/4 (3 in 8): about 3/16 end inside


# --------------------------------------------------------------------------- learning-rate range test


def _linear_task(n: int = 2048):
    """A linearly separable 16-pixel task; with a linear model and the MSE loss the training loss is a quadratic
    whose Hessian's largest eigenvalue is known: (2 / K) lambda_max(E[x~ x~^T]) with x~ = [x; 1], K = 2."""
    from symact.data import ImageData

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 4, 4), generator=g).to(torch.uint8)
    w = torch.randn(16, generator=g)
    y = ((x.float().flatten(1) / 255 - 0.5) @ w > 0).long()
    xt = torch.cat([x.float().flatten(1) / 255, torch.ones(n, 1)], 1)
    lam = float(torch.linalg.eigvalsh(xt.T @ xt / n).max()) * 2 / 2
    return ImageData(x, y, "toy", ("a", "b"), "toy"), lam


def _linear_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lr_range_test_choice_on_a_quadratic_lies_where_theory_puts_it(seed):
    """Plain SGD on a quadratic diverges above lr = 2 / lambda_max. The loss is smallest just below that
    threshold, the moving average's minimum comes a little later (its lag), so the rule's choice (a tenth of
    it) lies between 0.05 and 0.25 of the threshold."""
    from symact.train import LR_RULE, lr_range_test

    data, lam = _linear_task()
    cfg = TrainConfig(batch_size=64, optimizer="sgd", momentum=0.0, weight_decay=0.0, loss="mse", seed=seed)
    r = lr_range_test(_linear_model, data, cfg, lr_min=1e-4, lr_max=100.0, steps=100, progress=False)
    threshold = 2 / lam
    assert 0.05 * threshold <= r["lr_max"] <= 0.25 * threshold
    assert r["lr_max"] == pytest.approx(r["lr_at_min"] / 10) and r["rule"] == LR_RULE
    assert r["diverged_at"] is not None and r["lr"][-1] > threshold  # stopped on divergence, past the threshold
    assert len(r["lr"]) == len(r["loss"]) == len(r["smoothed"]) == r["diverged_at"] + 1 < 100
    ratios = np.diff(np.log(r["lr"]))
    np.testing.assert_allclose(ratios, np.log(1e6) / 99)  # exponential sweep
    assert r["notes"] == []


def test_lr_range_test_is_deterministic_and_leaves_the_global_generator_alone(toy_data):
    from symact.models import Normalize
    from symact.train import lr_range_test

    def make():
        return nn.Sequential(Normalize((0.5,), (0.2,)), nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))

    cfg = TrainConfig(batch_size=32, method="fgsm", eps=0.1, seed=3)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = lr_range_test(make, toy_data, cfg, lr_min=1e-4, lr_max=10, steps=30, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    b = lr_range_test(make, toy_data, cfg, lr_min=1e-4, lr_max=10, steps=30, progress=False)
    assert a == b and a["method"] == "fgsm"
    c = lr_range_test(make, toy_data, dataclasses.replace(cfg, method="standard"), lr_min=1e-4, lr_max=10,
                      steps=30, progress=False)
    assert c["loss"][:3] != a["loss"][:3]  # FGSM batches, not clean ones
    d = lr_range_test(make, toy_data, dataclasses.replace(cfg, seed=4), lr_min=1e-4, lr_max=10, steps=30,
                      progress=False)
    assert d["loss"] != a["loss"]


def test_lr_range_test_flags_a_sweep_that_ends_too_low(toy_data):
    from symact.models import Normalize
    from symact.train import lr_range_test

    def make():
        return nn.Sequential(Normalize((0.5,), (0.2,)), nn.Flatten(), nn.Linear(64, 2))

    r = lr_range_test(make, toy_data, TrainConfig(batch_size=32, seed=0), lr_min=1e-4, lr_max=1e-2, steps=20,
                      progress=False)
    assert r["diverged_at"] is None and len(r["lr"]) == 20
    assert any("raise lr_max" in n for n in r["notes"])


def test_lr_range_test_bad_input(toy_data):
    from symact.train import lr_range_test

    cfg = TrainConfig()
    make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 2))  # noqa: E731
    with pytest.raises(TypeError, match="fresh nn.Module"):
        lr_range_test(make(), toy_data, cfg)
    with pytest.raises(TypeError, match="returned int"):
        lr_range_test(lambda: 3, toy_data, cfg)
    for kw, msg in [({"lr_min": 0}, "lr_min"), ({"lr_min": 1.0, "lr_max": 0.1}, "lr_min"),
                    ({"steps": 1}, "steps"), ({"smoothing": 1.0}, "smoothing"), ({"diverge": 1.0}, "diverge"),
                    ({"divisor": 0}, "divisor")]:
        with pytest.raises(ValueError, match=msg):
            lr_range_test(make, toy_data, cfg, **kw)


def test_lr_range_test_flags_a_sweep_in_which_the_network_never_began_to_learn(toy_data):
    """Under cross-entropy the loss of a uniform prediction is ln C: a sweep whose smoothed loss never falls
    below it measured how long the network trained, not which learning rate suits it."""
    from symact.models import Normalize
    from symact.train import lr_range_test

    def make(scale):
        def build():
            net = nn.Sequential(Normalize((0.5,), (0.2,)), nn.Flatten(), nn.Linear(64, 2))
            with torch.no_grad():
                net[2].weight.mul_(scale)  # large logits: a loss far above ln 2 at the start
            return net
        return build

    cfg = TrainConfig(batch_size=32, seed=0)
    stuck = lr_range_test(make(30.0), toy_data, cfg, lr_min=1e-7, lr_max=1e-6, steps=10, progress=False)
    assert min(stuck["smoothed"]) > math.log(2)
    assert any("never fell below a uniform prediction's cross-entropy (ln 2 = 0.69)" in n for n in stuck["notes"])
    learns = lr_range_test(make(1.0), toy_data, cfg, lr_min=1e-3, lr_max=10, steps=60, progress=False)
    assert min(learns["smoothed"]) < math.log(2) and not any("uniform prediction" in n for n in learns["notes"])
    mse = lr_range_test(make(30.0), toy_data, dataclasses.replace(cfg, loss="mse"), lr_min=1e-7, lr_max=1e-6,
                        steps=10, progress=False)
    assert not any("uniform prediction" in n for n in mse["notes"])  # the bound is cross-entropy's only
