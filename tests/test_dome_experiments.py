"""Helpers of the DOME chapter's experiments (symact.experiments.dome)."""
import numpy as np
import pytest
import torch

from symact.activations.dome import MDOME
from symact.experiments import dome as exp
from symact.models import LeNet5


def _two_clusters(spread):
    g = np.random.default_rng(0)
    z = np.concatenate([g.normal(0, spread, (100, 2)), g.normal(0, spread, (100, 2)) + [10, 0]])
    return z, np.repeat([0, 1], 100)


def test_distance_stats_separated_and_mixed_clusters():
    sep = exp.distance_stats(*_two_clusters(0.1))
    assert sep["intra_inter_ratio"] < 0.05 and sep["auc"] == 1.0 and sep["overlap"] < 0.01
    z = np.random.default_rng(1).normal(size=(200, 2))
    mixed = exp.distance_stats(z, np.repeat([0, 1], 100))
    assert 0.9 < mixed["intra_inter_ratio"] < 1.1 and 0.4 < mixed["auc"] < 0.6 and mixed["overlap"] > 0.8
    assert sep["radius_mean"] == pytest.approx(np.linalg.norm(_two_clusters(0.1)[0], axis=1).mean())


def test_class_likelihood_is_normalised_per_class():
    z, y = _two_clusters(1.0)
    lik = exp.class_likelihood(z, y)
    assert lik.shape == (200,) and (lik > 0).all()
    for c in (0, 1):
        assert lik[y == c].max() == pytest.approx(1.0)
    # the densest point of a Gaussian cloud is near its centre
    centre = np.argmax(lik[:100])
    assert np.linalg.norm(z[centre]) < 1.0


def test_paper_tables_cover_every_cell():
    cells = {(d, m) for d in exp.DATASETS for m in exp.MODELS}
    assert set(exp.PAPER_TABLE1) == cells and set(exp.PAPER_TABLE2) == cells
    assert set(exp.TABLE2) == {(n, d, m) for n in exp.REGISTERED_NETWORKS for d, m in cells}


def test_union_of_views_restores_the_view_and_tries_each():
    head = MDOME(n=3, dim=3)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), head).eval()
    seen = []

    def make(m):
        def attack(x, y):
            seen.append(head.output)
            return x if head.output != "logit2" else torch.zeros_like(x)  # only the last view "finds" something
        return attack

    x = torch.rand(8, 1, 2, 2)
    y = model(x).argmax(1)
    adv = exp.union_of_views(model, head, make)(x, y)
    assert seen == list(exp.MDOME_VIEWS) and head.output == "normalized"
    fooled = model(torch.zeros_like(x)).argmax(1) != y
    assert torch.equal(adv[fooled], torch.zeros_like(x)[fooled])
    assert torch.equal(model(adv[~fooled]).argmax(1), y[~fooled])  # no view fooled these


def test_lenet_embed_act_none_keeps_a_linear_embedding():
    m = LeNet5("mnist", num_classes=2, embed_dim=2, embed_act=None)
    assert isinstance(m.hidden[-1], torch.nn.Identity)
    assert m.embed(torch.rand(3, 1, 28, 28)).shape == (3, 2)
