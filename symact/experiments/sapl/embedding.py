"""A picture of the logits: symmetric-apl.txt Section 6, Fig. 4 (experiment ``tsne-lenet-cifar10``)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

import torch

from symact import data
from symact.attacks import accuracy
from symact.results import Unit, experiment
from symact.experiments.sapl.common import _lenet_recipe, _train_lenet, LeNetRecipe
from symact.experiments.sapl.robustness import ROBUSTNESS_ACTS, _section6_act

__all__ = ['CIFAR10_TEST_PER_CLASS', 'TSNEConfig', 'knn_accuracy', 'tsne']


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out accuracy of the ``k``-nearest-neighbour vote (Euclidean; ties to the lowest label):
    the fraction of points whose ``k`` nearest other points mostly share their label.

    scikit-learn's ``NearestNeighbors.kneighbors()`` without query points leaves each point out of its own
    neighbours (exact leave-one-out); the vote is ``scipy.stats.mode``, whose ties go to the lowest label."""
    from scipy.stats import mode
    from sklearn.neighbors import NearestNeighbors

    points, labels = np.asarray(points, dtype=np.float64), np.asarray(labels)
    if points.ndim != 2 or len(points) != len(labels) or not 1 <= k < len(points):
        raise ValueError(f"expected points (N, D), N labels and 1 <= k < N; got {points.shape}, {labels.shape}, k={k}")
    near = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(points).kneighbors(return_distance=False)
    vote = mode(labels[near], axis=1, keepdims=False).mode
    return float((vote == labels).mean())


@dataclass(frozen=True)
class TSNEConfig(LeNetRecipe):
    """symmetric-apl.txt Section 6, Fig. 4 (settings in Appendix 8.2): t-SNE of LeNet-5's pre-softmax outputs
    (the logits) for random CIFAR-10 test images of ``classes``, one network per activation.

    Networks: LeNet-5 on CIFAR-10 with each of ``activations`` (:data:`ROBUSTNESS_ACTS`), trained as in
    :class:`RobustnessConfig` (the Table 1 recipe: BN before every activation, SGD momentum 0.9, ``lr``,
    ``weight_decay``, batch 128, no augmentation; same seed), so on one device they are the networks attacked
    by ``robustness-lenet-cifar10-<activation>`` at the same ``epochs`` and ``n_train``.
    t-SNE: scikit-learn's ``TSNE`` with learning rate ``tsne_lr`` 30 and perplexity 40 (the paper's), its
    other settings at their defaults (PCA initialisation, 1,000 iterations, Barnes-Hut).
    The paper's "100 random samples of frog and ship images" does not say whether 100 of each or in all:
    we take ``n_per_class`` of each. The paper shows one draw and judges separation by eye; we draw
    ``draws`` image sets (the same images for every network, seed ``seed + i``, t-SNE seeded alike) and
    measure separation by the silhouette score and the leave-one-out ``k``-NN accuracy of the classes, in
    the t-SNE plane and in the logit space, and in the logit space of every test image of ``classes``.
    """

    activations: tuple[str, ...] = ("relu", "sapl")
    classes: tuple[str, ...] = ("frog", "ship")
    n_per_class: int = 100
    draws: int = 10
    perplexity: float = 40.0
    tsne_lr: float = 30.0
    k: int = 5
    n_test: int | None = None
    seed: int = 0


@torch.no_grad()
def _logits(model: torch.nn.Module, images) -> np.ndarray:
    model.eval()
    return torch.cat([model(xb) for xb, _ in images.batches(500)]).double().numpy()


def _separation(points: np.ndarray, labels: np.ndarray, k: int) -> dict:
    from sklearn.metrics import silhouette_score

    return {"silhouette": float(silhouette_score(points, labels)), "knn": knn_accuracy(points, labels, k)}


#: test images of each CIFAR-10 class (the test set is balanced)
CIFAR10_TEST_PER_CLASS = 1000


def _tsne_units(cfg: TSNEConfig) -> list[Unit]:
    """One unit per activation (:func:`_tsne_one`): its network trained, its logits embedded and measured."""
    unknown = [a for a in cfg.activations if a not in ROBUSTNESS_ACTS]
    if unknown or not cfg.activations:
        raise ValueError(f"unknown activations {unknown}; expected some of {list(ROBUSTNESS_ACTS)}")
    if len(set(cfg.classes)) < 2 or any(c not in data.CIFAR10_CLASSES for c in cfg.classes):
        raise ValueError(f"classes must be two or more distinct names of {data.CIFAR10_CLASSES}; got {cfg.classes}")
    n = cfg.n_per_class * len(cfg.classes)
    if cfg.draws < 1 or cfg.n_per_class < 1 or not 1 <= cfg.k < n or not 0 < cfg.perplexity < n:
        raise ValueError(f"need draws >= 1, n_per_class >= 1 and 1 <= k, perplexity < the {n} images; got {cfg}")
    if cfg.n_per_class > CIFAR10_TEST_PER_CLASS:
        raise ValueError(f"n_per_class = {cfg.n_per_class} exceeds the {CIFAR10_TEST_PER_CLASS} test images of a "
                         "class")
    return [Unit(act, _tsne_one, (cfg, act)) for act in cfg.activations]


def _tsne_one(cfg: TSNEConfig, act: str) -> dict:
    """One network of Fig. 4 (:func:`tsne`): trained, then its logits embedded for every draw and measured."""
    from sklearn.manifold import TSNE

    train_set, test_set = data.load("cifar10").head(cfg.n_train), data.load("cifar10", train=False)
    idx = [data.CIFAR10_CLASSES.index(c) for c in cfg.classes]
    keep = torch.isin(test_set.y, torch.tensor(idx))
    chosen = dataclasses.replace(test_set, x=test_set.x[keep], y=test_set.y[keep])
    labels_all = np.array([idx.index(int(y)) for y in chosen.y])
    members = [np.flatnonzero(labels_all == c) for c in range(len(idx))]
    if min(len(m) for m in members) < cfg.n_per_class:
        raise ValueError(f"n_per_class = {cfg.n_per_class} exceeds the {min(len(m) for m in members)} test images "
                         f"of a class")
    picks = []  # per draw: n_per_class random images of each class, the same for every network
    for i in range(cfg.draws):
        g = torch.Generator().manual_seed(cfg.seed + i)
        picks.append(np.concatenate([m[torch.randperm(len(m), generator=g)[:cfg.n_per_class].numpy()]
                                     for m in members]))
    model, hist = _train_lenet(_section6_act(act), train_set, _lenet_recipe(cfg, cfg.seed))
    z = _logits(model, chosen)
    rows = []
    for i, pick in enumerate(picks):
        emb = TSNE(2, perplexity=cfg.perplexity, learning_rate=cfg.tsne_lr,
                   random_state=cfg.seed + i).fit_transform(z[pick])
        rows.append({"tsne": _separation(emb, labels_all[pick], cfg.k),
                     "logits": _separation(z[pick], labels_all[pick], cfg.k)})
        if i == 0:
            points, labels = np.round(emb.astype(np.float64), 4).tolist(), labels_all[pick].tolist()
    return {
        "test_acc": accuracy(model, test_set.head(cfg.n_test)), "n_test": len(test_set.head(cfg.n_test)),
        "train_loss": hist["train_loss"], "train_seconds": float(np.sum(hist["seconds"])),
        "logits_all": {"n": len(labels_all), **_separation(z, labels_all, cfg.k)},
        "draws": rows, "points": points, "labels": labels}


@experiment("sapl", "tsne-lenet-cifar10", {
    "smoke": TSNEConfig(n_per_class=30, draws=2, epochs=1, n_train=512, n_test=200),
    "quick": TSNEConfig(draws=3, epochs=2, n_train=10000, n_test=2000),
    "paper": TSNEConfig(),
}, units=_tsne_units)
def tsne(cfg: TSNEConfig, outputs: dict) -> dict:
    """Fig. 4 (:class:`TSNEConfig`). Per activation: test accuracy, training loss, the separation of the classes
    (``silhouette`` in [-1, 1], ``knn`` a fraction) per draw in the t-SNE plane (``tsne``) and in the logit space
    (``logits``), and on all test images of ``classes`` (``logits_all``); the first draw's 2-D points
    (4 decimals) and labels (indices into ``classes``) for the figure. One unit per activation."""
    import sklearn

    return {"data": data.load("cifar10", train=False).description, "classes": list(cfg.classes),
            "sklearn_version": sklearn.__version__, "activations": {act: outputs[act] for act in cfg.activations}}
