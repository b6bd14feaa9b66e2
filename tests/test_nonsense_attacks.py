"""The adaptive attacks on networks that can answer "nonsense" (symact.attacks, saf.txt Section 5)."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from symact import attacks
from symact.experiments import saf


def test_margin_loss_formula_with_a_nonsense_output():
    out = torch.tensor([[-0.1, -2.0, -0.5, -0.3], [-3.0, -0.2, -1.0, -0.1]])  # 3 real classes, nonsense = 3
    y = torch.tensor([0, 1])
    loss = attacks.nonsense_margin_loss(3, nonsense=3)
    # image 0: best wrong -0.5, true -0.1, nonsense -0.3 -> -0.5 - (-0.1); image 1: -1.0 - max(-0.2, -0.1)
    want = ((-0.5 + 0.1) + (-1.0 + 0.1)) / 2
    assert loss(out, y).item() == pytest.approx(want)


def test_margin_loss_threshold_and_logits():
    out = torch.tensor([[-2.0, -0.1, -3.0]])  # log-confidences, no nonsense output
    loss = attacks.nonsense_margin_loss(3, threshold=0.5)
    assert loss(out, torch.tensor([0])).item() == pytest.approx(-0.1 - math.log(0.5))
    logits = torch.tensor([[1.0, 2.0, 0.5, 0.0]])
    lc = F.log_softmax(logits, 1)[0]
    got = attacks.nonsense_margin_loss(3, nonsense=3, outputs="logits")(logits, torch.tensor([2]))
    assert got.item() == pytest.approx((lc[1] - torch.maximum(lc[2], lc[3])).item())
    got = attacks.confident_class_loss(3, nonsense=3, outputs="logits")(logits, torch.tensor([3]))
    assert got.item() == pytest.approx((lc[:3].max() - lc[3]).item())


@pytest.mark.parametrize("nonsense_class", [True, False])
def test_margin_sign_matches_the_papers_decision(nonsense_class):
    """Positive loss exactly when saf.decide picks a wrong real class (not the true one, not nonsense)."""
    g = torch.Generator().manual_seed(0)
    out = -torch.rand((400, 10 + nonsense_class), generator=g) * 3  # log-RBF outputs
    y = torch.randint(0, 10, (400,), generator=g)
    fn = attacks.nonsense_margin_loss(10, nonsense=10 if nonsense_class else None)
    per = torch.stack([fn(out[i:i + 1], y[i:i + 1]) for i in range(len(y))])
    dec = saf.decide(out, robust=True, nonsense_class=nonsense_class)
    wrong_real = (dec != y) & (dec != saf.NONSENSE)
    assert torch.equal(per > 0, wrong_real)
    assert wrong_real.any() and (~wrong_real).any()
    fn2 = attacks.confident_class_loss(10, nonsense=10 if nonsense_class else None)
    per2 = torch.stack([fn2(out[i:i + 1], y[i:i + 1]) for i in range(len(y))])
    assert torch.equal(per2 > 0, dec != saf.NONSENSE)


class _Toy(nn.Module):
    """Inputs (n, 1, 1, 2) in [0, 1]; logits of real classes 0 and 1 and of nonsense (index 2).
    Class 1 wins for x0 > 0.625; nonsense grows fast with x1."""

    def forward(self, x):
        x0, x1 = x[:, 0, 0, 0], x[:, 0, 0, 1]
        return torch.stack([torch.zeros_like(x0), 8 * (x0 - 0.5) - 1, 30 * (x1 - 0.5) - 1], 1)


def _rule(out):
    return out.argmax(1)


def test_margin_pgd_reaches_a_wrong_real_class_where_cross_entropy_ends_in_nonsense():
    model, x, y = _Toy(), torch.full((1, 1, 1, 2), 0.5), torch.tensor([0])
    assert _rule(model(x)).item() == 0
    ce = attacks.LossPGD(model, eps=0.2, alpha=0.05, steps=20, predict=_rule)
    assert _rule(model(ce(x, y))).item() == 2                    # cross-entropy: pushed into nonsense
    atk = attacks.NonsenseMarginPGD(model, eps=0.2, alpha=0.05, steps=20, num_classes=2, nonsense=2,
                                    outputs="logits", predict=_rule)
    adv = atk(x, y)
    assert _rule(model(adv)).item() == 1                         # the wrong real class, nonsense suppressed
    assert (adv - x).abs().max() <= 0.2 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


def test_noise_to_class_pgd_leaves_the_nonsense_region():
    model, noise, y = _Toy(), torch.tensor([[[[0.5, 0.8]]]]), torch.tensor([2])
    assert _rule(model(noise)).item() == 2
    small = attacks.NoiseToClassPGD(model, eps=0.2, alpha=0.05, steps=20, num_classes=2, nonsense=2,
                                    outputs="logits", predict=_rule)
    assert _rule(model(small(noise, y))).item() == 2             # 0.2 is not enough: c_ns >= 2 > c_1
    big = attacks.NoiseToClassPGD(model, eps=0.3, alpha=0.05, steps=30, num_classes=2, nonsense=2,
                                  outputs="logits", predict=_rule)
    assert _rule(model(big(noise, y))).item() in (0, 1)          # a real class


def test_bad_input():
    with pytest.raises(ValueError, match="outputs must be"):
        attacks.nonsense_margin_loss(10, outputs="probabilities")
    with pytest.raises(ValueError, match="index of the nonsense output"):
        attacks.nonsense_margin_loss(10, nonsense=3)
    with pytest.raises(ValueError, match="threshold"):
        attacks.confident_class_loss(10, threshold=1.5)
    with pytest.raises(ValueError, match="eps"):
        attacks.NonsenseMarginPGD(_Toy(), eps=-0.1, alpha=0.01, steps=3, num_classes=2, nonsense=2)
    fn = attacks.nonsense_margin_loss(10, nonsense=10)
    with pytest.raises(ValueError, match="outside the model's 10 outputs"):
        fn(torch.zeros(2, 10), torch.tensor([0, 1]))
