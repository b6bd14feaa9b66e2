import pytest
import torch

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
