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


def test_evaluate_returns_examples(trained, toy_data):
    out = attacks.evaluate(trained, toy_data.head(20), attacks.make_attack("fgsm", trained, eps=0.1),
                           batch_size=8, return_examples=5)
    ex = out["examples"]
    assert len(ex["label"]) == 5 and torch.tensor(ex["adversarial"]).shape == (5, 1, 8, 8)
