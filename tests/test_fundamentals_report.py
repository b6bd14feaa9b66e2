"""The Fundamentals chapter's gallery curve and demo checks, moved from the notebook into
symact.experiments.fundamentals, on small inputs shaped like results/fundamentals/lenet-mnist-attacks.*.json."""
import pytest
import torch

from symact.experiments import fundamentals as f

GRID = torch.linspace(-2, 2, 5)


def test_elementwise_curve_values_and_derivatives():
    y, dy = f.elementwise_curve("relu", GRID)
    assert y.tolist() == [0.0, 0.0, 0.0, 1.0, 2.0] and dy.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    y, dy = f.elementwise_curve("tanh", GRID)
    assert torch.allclose(y, torch.tanh(GRID)) and torch.allclose(dy, 1 - torch.tanh(GRID) ** 2)
    y, dy = f.elementwise_curve("prelu", GRID)                               # PyTorch's default slope 0.25
    assert y.tolist() == [-0.5, -0.25, 0.0, 1.0, 2.0]


def test_elementwise_curve_leaves_out_what_is_not_elementwise():
    assert f.elementwise_curve("maxout", GRID) is None                       # changes the shape
    assert f.elementwise_curve("kwta", GRID) is None                         # depends on the other inputs
    assert f.elementwise_curve("no-such-activation", GRID) is None           # cannot be created
    with pytest.raises(ValueError, match="1-D grid"):
        f.elementwise_curve("relu", GRID.view(1, -1))


def _demo(fgsm, pgd, eps=(0.0, 0.1, 0.2)):
    return {"eps": list(eps), "fgsm_acc": list(fgsm), "pgd_acc": list(pgd)}


def test_accuracy_rises():
    up = f.accuracy_rises([0.0, 0.1, 0.2, 0.3], [0.9, 0.5, 0.6, 0.1])
    assert up.to_dict("records") == [{"eps": 0.1, "eps_next": 0.2, "acc": 0.5, "acc_next": 0.6}]
    assert f.accuracy_rises([0.0, 0.1], [0.9, 0.9]).empty                     # equal is not a rise
    with pytest.raises(ValueError, match="one accuracy per budget"):
        f.accuracy_rises([0.0, 0.1], [0.9])
    with pytest.raises(ValueError, match="must increase"):
        f.accuracy_rises([0.1, 0.0], [0.9, 0.5])


def test_demo_checks_sentences():
    ok = f.demo_checks(_demo([0.9, 0.5, 0.2], [0.9, 0.3, 0.0]))
    assert ok == ("accuracy is non-increasing in $\\varepsilon$ for both attacks over the whole grid. PGD is never "
                  "weaker than FGSM: at every budget its accuracy is at most FGSM's.")
    bad = f.demo_checks(_demo([0.9, 0.5, 0.6], [0.9, 0.55, 0.1]))
    assert bad == ("FGSM accuracy is **not** monotone: it rises from 50.0 % at $\\varepsilon = 0.1$ to 60.0 % at "
                   "$\\varepsilon = 0.2$, and PGD accuracy is non-increasing in $\\varepsilon$ over the whole grid. "
                   "PGD is **weaker** than FGSM at $\\varepsilon = 0.1$ (55.0 % against 50.0 %).")
