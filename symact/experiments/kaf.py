"""Experiments of the KAF chapter.

**"KAFs may be good candidates"** (:func:`kaf_candidates`), the finished thesis's first, exploratory experiment
(``../shared/papers/kaf-thesis-results.md``, section "Exploratory experiment: 'KAFs may be good candidates'";
the outline ``kaf-robustness-thesis.txt``, Chapter 4): the thesis's small CNN (:class:`ThesisSmallCNN`) with
ReLU, k-WTA and KAF under standard training on CIFAR-10, attacked by PGD at eps 0.031 with step 0.003 and
random restarts; then the pre-activation distributions of each layer for clean and adversarial inputs, and
the per-layer distance between clean and adversarial activations. This module runs it with the evaluation the
book asks of every network: the true labels (and, beside them, the model's predicted labels, the thesis's
protocol), official AutoAttack, Square alone, an adaptive attack on the k-WTA network (:class:`NoiseAveragedPGD`,
after Tramer et al. 2020), the worst case per image; and it divides each layer's distance by the norm of the
clean activations, which the thesis did not.

Attacks written here because :mod:`symact.attacks` lacks them (they belong there; see the chapter's report):
:class:`PredictedLabelPGD` (PGD against the model's own predictions, the protocol of the thesis's IBM ART code)
and :class:`NoiseAveragedPGD` (PGD on a margin loss whose gradient is averaged over Gaussian-perturbed copies
of the input).

The analysis works from stored results and returns pandas DataFrames: :func:`accuracy_table`,
:func:`distance_table`, :func:`smallest_distance`, :func:`preactivation_quantiles`,
:func:`preactivation_histograms`; :func:`activation_distances` is the per-image distance itself.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torchattacks
from torch import nn

from symact import attacks, data
from symact.attacks import NoiseAveragedPGD, PredictedLabelPGD, margin_loss  # noqa: F401  (re-exported)
from symact.activations import as_factory, factory, is_activation
from symact.device import get_device, seed_everything
from symact.evaluation import decode_outcomes, encode_outcomes, evaluate
from symact.models import Normalize
from symact.results import Unit, experiment, gpu_resources
from symact.train import TrainConfig, place, train

__all__ = ["ACT_NAMES", "CANDIDATE_ACTS", "CandidatesConfig", "KAF_CANDIDATES_REPORTED", "candidates_display",
           "candidates_markdown", "NoiseAveragedPGD", "PredictedLabelPGD", "ThesisSmallCNN",
           "accuracy_table", "activation_distances", "autoattack_label", "autoattack_name", "distance_table",
           "kaf_candidates", "layer_activations", "margin_loss", "preactivation_histograms", "preactivation_quantiles",
           "smallest_distance", "thesis_small_cnn"]

#: the activations of the experiment, by the name its units and tables use
CANDIDATE_ACTS = ("relu", "kwta", "kaf")
#: the chapter's name of each activation
ACT_NAMES = {"relu": "ReLU", "kwta": "k-WTA", "kaf": "KAF"}
#: the published numbers, cited as theirs: the finished thesis (peconi2020robustness), exploratory experiment,
#: kaf-thesis-results.md, section "Exploratory experiment: 'KAFs may be good candidates'": clean accuracy and
#: PGD accuracy (eps 0.031, step 0.003, 40 random restarts, predicted labels, 1,000 random test images)
KAF_CANDIDATES_REPORTED = {"relu": {"clean": 0.7796, "pgd": 0.110},
                           "kwta": {"clean": 0.6533, "pgd": 0.132},
                           "kaf": {"clean": 0.6880, "pgd": 0.157}}


# --------------------------------------------------------------------------------------------------- the network


class ThesisSmallCNN(nn.Module):
    """The small CNN of the finished thesis's exploratory experiment (kaf-thesis-results.md, "Exploratory
    experiment: 'KAFs may be good candidates'")::

        [conv 3x3 x32 - BN - act] x2 - maxpool 2 - dropout
        [conv 3x3 x64 - BN - act] x2 - maxpool 2 - dropout
        global average pooling - dense 128 - act - dense num_classes

    What the note states: two blocks of two 3x3 convolutions (32 then 64 filters), batch normalisation, then
    max-pooling and dropout, global average pooling, a dense layer of 128 units and the output layer. What it
    leaves open, and what we chose: "same" padding (1); batch normalisation after every convolution, before its
    activation (as the thesis's VGG network, :class:`symact.models.VGGInspired`); the dropout rate (``dropout``,
    0.25 after each block, none after the dense layer); the dense layer's activation is the network's
    activation; Keras's default initialisation, which a TensorFlow model gets unless it says otherwise
    (Glorot uniform kernels, zero biases); PyTorch's batch normalisation defaults (Keras: momentum 0.99,
    epsilon 1e-3). Inputs are images in [0, 1], normalised by the first layer.

    ``act``: a registry name or a factory ``channels -> nn.Module`` (:func:`symact.activations.as_factory`).
    :attr:`layer_names` names the activation layers in order (``conv1`` .. ``conv4``, ``dense``);
    :meth:`activation_modules` gives them with their names.
    """

    supports_channels_last = True  # see symact.models.channels_last_default
    layer_names = ("conv1", "conv2", "conv3", "conv4", "dense")

    def __init__(self, act="relu", num_classes: int = 10, widths: Sequence[int] = (32, 64), fc_width: int = 128,
                 dropout: float = 0.25, in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None):
        super().__init__()
        if len(widths) != 2 or any(int(w) != w or w < 1 for w in widths):
            raise ValueError(f"widths must be two positive integers (one per block), got {widths!r}")
        if num_classes < 2 or fc_width < 1 or in_channels < 1:
            raise ValueError(f"need num_classes >= 2, fc_width >= 1, in_channels >= 1; got {num_classes}, "
                             f"{fc_width}, {in_channels}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        make = as_factory(act)
        mean = mean or ((0.4914, 0.4822, 0.4465) if in_channels == 3 else (0.5,) * in_channels)
        std = std or ((0.2470, 0.2435, 0.2616) if in_channels == 3 else (0.5,) * in_channels)
        layers: list[nn.Module] = [Normalize(mean, std)]
        cin = in_channels
        for width in widths:
            for _ in range(2):
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.BatchNorm2d(width), make(width)]
                cin = width
            layers += [nn.MaxPool2d(2), nn.Dropout(dropout)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.hidden = nn.Sequential(nn.Linear(cin, fc_width), make(fc_width))
        self.classifier = nn.Linear(fc_width, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)  # Keras's glorot_uniform
                nn.init.zeros_(m.bias)

    def activation_modules(self) -> list[tuple[str, nn.Module]]:
        """The activation layers in forward order, named as :attr:`layer_names`."""
        mods = [m for m in (*self.features, *self.hidden) if is_activation(m)]
        if len(mods) != len(self.layer_names):
            raise RuntimeError(f"expected {len(self.layer_names)} registered activations, found {len(mods)}")
        return list(zip(self.layer_names, mods))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.hidden(self.features(x)))


def thesis_small_cnn(act: str = "relu", act_kwargs: Mapping | None = None, **kwargs) -> ThesisSmallCNN:
    """:class:`ThesisSmallCNN` with the registry activation ``act`` built with ``act_kwargs``: the builder the
    zoo imports (``"symact.experiments.kaf:thesis_small_cnn"``), whose arguments are JSON."""
    return ThesisSmallCNN(act=factory(act, **dict(act_kwargs or {})), **kwargs)


# --------------------------------------------------------------------------------------------------- analysis


def layer_activations(model: nn.Module, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """The input (``"pre"``, the pre-activation) and output (``"post"``) of every activation layer of ``model``
    for the images ``x``, by layer name: ``model.activation_modules()`` if the model has it (as
    :class:`ThesisSmallCNN`), else every registered activation module under its qualified name. Runs
    ``model(x)`` once under ``torch.no_grad()``, in the model's current mode."""
    mods = (model.activation_modules() if hasattr(model, "activation_modules") else
            [(n, m) for n, m in model.named_modules() if n and is_activation(m)])
    if not mods:
        raise ValueError("the model has no registered activation layers to record")
    out: dict[str, dict[str, torch.Tensor]] = {}

    def hook(name):
        def fn(_module, inputs, output):
            out[name] = {"pre": inputs[0].detach(), "post": output.detach()}
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in mods]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return out


def activation_distances(clean: Mapping[str, torch.Tensor], adversarial: Mapping[str, torch.Tensor]):
    """Per image and layer, the L2 distance between clean and adversarial activations, raw and relative.

    For layer ``l`` with activations ``a_l(x)`` flattened per image::

        raw_l(x, x')      = || a_l(x') - a_l(x) ||_2
        relative_l(x, x') = raw_l(x, x') / || a_l(x) ||_2

    The raw distance is the finished thesis's (kaf-thesis-results.md, "Exploratory experiment"); it scales
    with the layer: multiplying a layer's activations by ``c`` multiplies it by ``|c|`` and leaves the relative
    distance unchanged. ``clean`` and ``adversarial`` map layer names to tensors ``(N, ...)`` of equal shapes
    (the same images in the same order). Returns a DataFrame with columns ``layer``, ``image`` (0-based),
    ``raw``, ``clean_norm`` and ``relative`` (NaN where the clean activations are all zero), layers in the
    order of ``clean``.
    """
    import pandas as pd

    if not isinstance(clean, Mapping) or not isinstance(adversarial, Mapping):
        raise TypeError("clean and adversarial must map layer names to activation tensors")
    if list(clean) != list(adversarial):
        raise ValueError(f"clean and adversarial must name the same layers in the same order, got {list(clean)} "
                         f"and {list(adversarial)}")
    if not clean:
        raise ValueError("no layers given")
    frames = []
    for name, a in clean.items():
        b = adversarial[name]
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        if a.shape != b.shape or a.ndim < 2:
            raise ValueError(f"layer {name!r}: clean and adversarial activations must have equal shapes (N, ...), "
                             f"got {tuple(a.shape)} and {tuple(b.shape)}")
        a64, b64 = a.detach().double().flatten(1), b.detach().double().flatten(1)
        raw = (b64 - a64).norm(dim=1).cpu().numpy()
        norm = a64.norm(dim=1).cpu().numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(norm > 0, raw / np.where(norm > 0, norm, 1.0), np.nan)
        frames.append(pd.DataFrame({"layer": name, "image": np.arange(len(raw)), "raw": raw, "clean_norm": norm,
                                    "relative": rel}))
    return pd.concat(frames, ignore_index=True)


QUANTILES = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)


def _sig(values, digits: int = 5) -> list:
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _layer_analysis(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, values: int, bins: int, seed: int,
                    batch_size: int = 100) -> dict:
    """Per layer: pre-activation quantiles and histograms (clean and adversarial, on ``values`` positions per
    image drawn once with ``seed``, the same for both) and per-image raw distances and clean norms of the
    pre- and post-activations (:func:`activation_distances`)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    samples: dict = {}
    dist: dict = {}
    positions: dict = {}
    for i in range(0, len(x), batch_size):
        c = layer_activations(model, x[i:i + batch_size])
        a = layer_activations(model, x_adv[i:i + batch_size])
        for which in ("pre", "post"):
            df = activation_distances({k: v[which] for k, v in c.items()}, {k: v[which] for k, v in a.items()})
            for name, g in df.groupby("layer", sort=False):
                d = dist.setdefault(name, {"raw_pre": [], "norm_pre": [], "raw_post": [], "norm_post": []})
                d[f"raw_{which}"] += g["raw"].tolist()
                d[f"norm_{which}"] += g["clean_norm"].tolist()
        for name in c:
            flat_c, flat_a = c[name]["pre"].flatten(1).cpu(), a[name]["pre"].flatten(1).cpu()
            if name not in positions:
                k = min(values, flat_c.shape[1])
                positions[name] = torch.randperm(flat_c.shape[1], generator=gen)[:k]
            s = samples.setdefault(name, {"clean": [], "adversarial": []})
            s["clean"].append(flat_c[:, positions[name]].flatten())
            s["adversarial"].append(flat_a[:, positions[name]].flatten())
    layers = {}
    for name, s in samples.items():
        vc, va = torch.cat(s["clean"]).double().numpy(), torch.cat(s["adversarial"]).double().numpy()
        both = np.concatenate([vc, va])
        lo, hi = np.quantile(both, [0.001, 0.999])
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        layers[name] = {
            "edges": _sig(edges),
            "preact": {cond: {"quantiles": _sig(np.quantile(v, QUANTILES)), "hist": np.histogram(v, edges)[0].tolist(),
                              "below": int((v < edges[0]).sum()), "above": int((v > edges[-1]).sum()),
                              "n": int(len(v)), "mean": _sig([v.mean()])[0], "std": _sig([v.std()])[0]}
                       for cond, v in (("clean", vc), ("adversarial", va))},
            "distances": {k: _sig(v) for k, v in dist[name].items()},
        }
    return {"quantile_levels": list(QUANTILES), "layer_order": list(layers), "layers": layers}


# --------------------------------------------------------------------------------------------------- the experiment


@dataclass(frozen=True)
class CandidatesConfig:
    """The thesis's exploratory experiment (kaf-thesis-results.md, "Exploratory experiment: 'KAFs may be good
    candidates'") and our evaluation of it.

    Networks: :class:`ThesisSmallCNN` with each activation of ``acts`` (``"relu"``; ``"kwta"``, k-WTA with
    sparsity ratio ``kwta_ratio`` over all channels and positions of a layer, Xiao et al. 2020; ``"kaf"``, a
    per-channel KAF with ``kaf_D`` dictionary points on ``[-kaf_boundary, kaf_boundary]``, random coefficients
    ``N(0, 0.3^2)`` and the bandwidth rule ``kaf_bandwidth``, ``"thesis"``: ``gamma = 1/(6 Delta^2)``), one per
    seed of ``seeds``; block dropout ``dropout``. Training: standard, Adam (``lr``, no weight decay, constant
    rate), mini-batches of ``batch_size``, ``epochs`` epochs on the first ``n_train`` training images of the
    CIFAR-10 JPEG copy (all when None), no augmentation.

    Evaluation on the first ``n_test`` test images, every attack L-infinity at ``eps``:

    - ``pgd``: PGD on cross-entropy with the true labels, ``pgd_steps`` steps of ``pgd_alpha`` from a uniform
      random start, ``pgd_restarts`` restarts (an image is robust only if every restart fails);
    - ``pgd_predicted``: the same PGD against the model's predicted labels (:class:`PredictedLabelPGD`), the
      thesis's protocol, reported both as the thesis counted it (correct after the attack, over all images)
      and as the book counts robustness (correct before and after);
    - ``autoattack``: official AutoAttack (:class:`symact.attacks.AutoAttack`, seeded with ``attack_seed``);
      with ``aa_steps`` set (smoke only), ``aa-reduced``: its cascade with ``aa_steps`` iterations of APGD-CE,
      APGD-T and FAB-T and ``square_queries`` Square queries, which is *not* AutoAttack
      (:func:`autoattack_label`);
    - ``square``: Square alone with ``square_queries`` queries (AutoAttack's settings otherwise);
    - ``adaptive``, on the networks whose activation is in ``adaptive_acts``: :class:`NoiseAveragedPGD`,
      ``adaptive_steps`` steps of ``adaptive_alpha``, ``adaptive_samples`` noise samples of standard deviation
      ``adaptive_sigma``;
    - the worst case per image over ``pgd``, ``autoattack``, ``square`` and ``adaptive`` (where run).

    Per-layer analysis on the first ``n_analysis`` test images and their ``pgd`` adversarial images (attacked
    whatever their clean prediction): pre-activation quantiles and histograms (``hist_bins`` bins) from
    ``analysis_values`` positions per image and layer, and per-image distances between clean and adversarial
    activations, raw and divided by the clean activations' norm.
    """

    acts: tuple[str, ...] = CANDIDATE_ACTS
    seeds: tuple[int, ...] = (0, 1, 2)
    n_train: int | None = None
    n_test: int = 1000
    epochs: int = 40
    batch_size: int = 128
    lr: float = 1e-3
    dropout: float = 0.25
    kwta_ratio: float = 0.1
    kaf_D: int = 20
    kaf_boundary: float = 3.0
    kaf_bandwidth: str = "thesis"
    eps: float = 0.031
    pgd_alpha: float = 0.003
    pgd_steps: int = 40
    pgd_restarts: int = 40
    square_queries: int = 5000
    aa_steps: int | None = None
    adaptive_acts: tuple[str, ...] = CANDIDATE_ACTS
    adaptive_steps: int = 100
    adaptive_alpha: float = 0.003
    adaptive_samples: int = 32
    adaptive_sigma: float = 0.031
    n_analysis: int = 1000
    analysis_values: int = 256
    hist_bins: int = 40
    attack_seed: int = 0


def _check_config(cfg: CandidatesConfig) -> None:
    unknown = [a for a in (*cfg.acts, *cfg.adaptive_acts) if a not in CANDIDATE_ACTS]
    if unknown:
        raise ValueError(f"unknown activations {unknown}; expected some of {list(CANDIDATE_ACTS)}")
    if not cfg.acts or not cfg.seeds or len(set(cfg.acts)) != len(cfg.acts) or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ValueError(f"acts and seeds must be non-empty and without repeats, got {cfg.acts} and {cfg.seeds}")
    if cfg.n_test < 1 or not 1 <= cfg.n_analysis <= cfg.n_test:
        raise ValueError(f"need n_test >= 1 and 1 <= n_analysis <= n_test, got {cfg.n_test} and {cfg.n_analysis}")
    if cfg.aa_steps is not None and (int(cfg.aa_steps) != cfg.aa_steps or cfg.aa_steps < 1):
        raise ValueError(f"aa_steps must be None (official AutoAttack) or an integer >= 1, got {cfg.aa_steps!r}")


def _act_spec(cfg: CandidatesConfig, act: str) -> dict:
    """The zoo builder's arguments for ``act`` (:func:`thesis_small_cnn`)."""
    kwargs = {"relu": {}, "kwta": {"ratio": cfg.kwta_ratio},
              "kaf": {"D": cfg.kaf_D, "boundary": cfg.kaf_boundary, "bandwidth": cfg.kaf_bandwidth,
                      "init": "normal"}}[act]
    return {"act": act, "act_kwargs": kwargs, "dropout": cfg.dropout}


def _train_unit(cfg: CandidatesConfig, act: str, seed: int, checkpoint=None) -> dict:
    """One network: :class:`ThesisSmallCNN` with ``act``, seeded with ``seed``, trained by the thesis's recipe
    (:class:`CandidatesConfig`); its weights go to the zoo at the converged profile."""
    seed_everything(seed)
    spec = _act_spec(cfg, act)
    model = thesis_small_cnn(**spec)
    train_set = data.load("cifar10", train=True).head(cfg.n_train)
    test_set = data.load("cifar10", train=False).head(cfg.n_test)
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer="adam", lr=cfg.lr, weight_decay=0.0,
                       schedule="constant", method="standard", early_stop=False, seed=seed)
    history = train(model, train_set, tcfg, test=test_set,
                    checkpoint=None if checkpoint is None else checkpoint / "train.ckpt")
    return {"act": act, "seed": seed, "history": history, "n_train": len(train_set),
            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "builder": "symact.experiments.kaf:thesis_small_cnn", "builder_kwargs": spec}


def autoattack_name(cfg: CandidatesConfig) -> str:
    """The cascade's key in the results and how tables name it: ``"autoattack"`` for official AutoAttack
    (``cfg.aa_steps`` None), ``"aa-reduced"`` for the reduced cascade of a smoke run (not AutoAttack)."""
    return "autoattack" if cfg.aa_steps is None else "aa-reduced"


def autoattack_label(cfg) -> str:
    """How prose and captions name the cascade that ``cfg`` (a :class:`CandidatesConfig` or its stored dict) ran."""
    steps = cfg["aa_steps"] if isinstance(cfg, Mapping) else cfg.aa_steps
    queries = cfg["square_queries"] if isinstance(cfg, Mapping) else cfg.square_queries
    if steps is None:
        return "AutoAttack"
    return (f"AutoAttack's cascade at reduced strength ({steps} iterations of APGD-CE, APGD-T and FAB-T, Square "
            f"with {queries:,} queries; not AutoAttack)")


def _cascade(cfg: CandidatesConfig, model: nn.Module):
    aa = attacks.AutoAttack(model, norm="Linf", eps=cfg.eps, seed=cfg.attack_seed)
    if cfg.aa_steps is not None:  # a smoke run's cascade: the same components, fewer iterations and queries
        for _, comp in aa.components[:3]:
            comp.steps = cfg.aa_steps
        aa.components[3][1].n_queries = cfg.square_queries
    return aa


def _eval_attacks(cfg: CandidatesConfig, act: str, model: nn.Module) -> dict:
    atks = {"pgd": attacks.LossPGD(model, cfg.eps, cfg.pgd_alpha, cfg.pgd_steps, cfg.pgd_restarts,
                                   seed=cfg.attack_seed),
            autoattack_name(cfg): _cascade(cfg, model),
            "square": torchattacks.Square(model, eps=cfg.eps, n_queries=cfg.square_queries, n_restarts=1,
                                          p_init=0.8, loss="margin", resc_schedule=False, seed=cfg.attack_seed)}
    if act in cfg.adaptive_acts:
        atks["adaptive"] = NoiseAveragedPGD(model, cfg.eps, cfg.adaptive_alpha, cfg.adaptive_steps,
                                            cfg.adaptive_samples, cfg.adaptive_sigma, seed=cfg.attack_seed)
    return atks


def _eval_unit(cfg: CandidatesConfig, act: str, seed: int, trained: dict) -> dict:
    """One network of :func:`_train_unit` under every attack of :class:`CandidatesConfig`, and its per-layer
    analysis."""
    torch.manual_seed(cfg.attack_seed)
    dev = get_device()
    model = thesis_small_cnn(**trained["builder_kwargs"])
    model.load_state_dict(trained["weights"])
    place(model, dev)
    model.eval()
    test = data.load("cifar10", train=False).head(cfg.n_test)
    times = {}
    start = time.perf_counter()
    ev = evaluate(model, test, _eval_attacks(cfg, act, model), progress=False)
    times["attacks"] = time.perf_counter() - start
    start = time.perf_counter()
    pred_atk = PredictedLabelPGD(model, cfg.eps, cfg.pgd_alpha, cfg.pgd_steps, cfg.pgd_restarts, seed=cfg.attack_seed)
    ev_pred = evaluate(model, test, pred_atk, progress=False)
    correct = torch.cat(pred_atk.correct).numpy()
    clean = decode_outcomes(ev["outcome"], ev["n"])
    times["pgd_predicted"] = time.perf_counter() - start
    start = time.perf_counter()
    x, y = test.head(cfg.n_analysis).tensors(dev)
    x_adv = attacks.LossPGD(model, cfg.eps, cfg.pgd_alpha, cfg.pgd_steps, cfg.pgd_restarts,
                            seed=cfg.attack_seed)(x, y)
    with torch.no_grad():
        adv_correct = (model(x_adv).argmax(1) == y).cpu().numpy()
    analysis = _layer_analysis(model, x, x_adv, cfg.analysis_values, cfg.hist_bins, cfg.attack_seed)
    analysis["adv_correct"] = encode_outcomes(adv_correct)
    analysis["n"] = int(len(y))
    analysis["linf"] = _sig([float((x_adv - x).abs().amax())])[0]
    times["analysis"] = time.perf_counter() - start
    return {"act": act, "seed": seed, "evaluation": ev,
            "pgd_predicted": {"evaluation": {k: v for k, v in ev_pred.items() if k != "examples"},
                              "correct_after": encode_outcomes(correct),
                              "thesis_acc": float(correct.mean()),
                              "rescued": int((correct & ~clean).sum())},
            "analysis": analysis, "attack_seconds": {k: round(v, 2) for k, v in times.items()}}


def _candidate_units(cfg: CandidatesConfig) -> list[Unit]:
    _check_config(cfg)
    units = []
    for seed in cfg.seeds:
        for act in cfg.acts:
            key = f"{act}-seed{seed}"
            units.append(Unit(key, _train_unit, (cfg, act, seed), checkpoint=True, zoo=True,
                              resources=gpu_resources()))
            units.append(Unit(f"eval-{key}", _eval_unit, (cfg, act, seed), needs=(key,), resources=gpu_resources()))
    return units


# Cost on one CPU thread of this project's machines (measured at smoke and on one 5,000-image epoch): a training
# epoch costs about 2.2 ms per image with ReLU, 7 ms with k-WTA and 8 ms with the KAF (thesis bandwidth, torch
# kernel), so quick trains in about 500 s and evaluates in about 600 s (about 10 minutes on two workers), and paper
# is about 30 CPU-hours of training and 7 of evaluation: a GPU run (tools/device.sh).
@experiment(
    "kaf",
    "kaf-candidates",
    {
        "smoke": CandidatesConfig(seeds=(0,), n_train=256, n_test=40, epochs=1, pgd_steps=5, pgd_restarts=2,
                                  square_queries=50, aa_steps=5, adaptive_acts=("kwta",), adaptive_steps=5,
                                  adaptive_samples=2, n_analysis=16, analysis_values=32, hist_bins=20),
        "quick": CandidatesConfig(seeds=(0,), n_train=10000, n_test=200, epochs=3, pgd_steps=20, pgd_restarts=3,
                                  square_queries=1000, adaptive_acts=("kwta",), adaptive_steps=20,
                                  adaptive_samples=8, n_analysis=100, analysis_values=128),
        "paper": CandidatesConfig(),
    },
    units=_candidate_units,
    converged=("paper",),
)
def kaf_candidates(cfg: CandidatesConfig, outputs: dict) -> dict:
    """The finished thesis's exploratory experiment with the book's evaluation (:class:`CandidatesConfig`): one
    training unit per (activation, seed), ``<act>-seed<seed>`` (zoo: ``kaf/kaf-candidates`` at ``paper``), and
    one evaluation unit per network, ``eval-<act>-seed<seed>``, which needs it.

    Returns ``data`` (the data set's description: CIFAR-10 (JPEG q75 copy) on these machines), ``n_train``,
    ``n_test`` and ``networks``: per ``<act>-seed<seed>``, ``act``, ``seed``, the training ``history``, the
    :func:`symact.evaluation.evaluate` result of ``pgd``, ``autoattack``, ``square`` and ``adaptive`` (where run)
    with per-image outcomes and their worst case (``evaluation``), ``pgd_predicted`` (the thesis's protocol:
    ``thesis_acc``, ``rescued`` misclassified images the attack made correct, ``correct_after`` per image, and
    its ``evaluation``) and ``analysis`` (per layer: pre-activation quantiles and histograms, per-image raw
    distances and clean norms of pre- and post-activations).
    """
    nets = {}
    for seed in cfg.seeds:
        for act in cfg.acts:
            key = f"{act}-seed{seed}"
            tr, ev = outputs[key], outputs[f"eval-{key}"]
            nets[key] = {"act": act, "seed": seed, "history": tr["history"],
                         **{k: v for k, v in ev.items() if k not in ("act", "seed")}}
    first = outputs[f"{cfg.acts[0]}-seed{cfg.seeds[0]}"]
    return {"data": data.load("cifar10", train=False).description, "autoattack": autoattack_label(cfg),
            "n_train": first["n_train"],
            "n_test": next(iter(nets.values()))["evaluation"]["n"], "networks": nets}


# --------------------------------------------------------------------------------------------------- tables


def _networks(res) -> dict:
    """The networks of a result in the order of :data:`CANDIDATE_ACTS`, then by seed (a stored result's keys
    are sorted alphabetically)."""
    if not isinstance(res, Mapping) or "networks" not in res:
        raise ValueError("expected a stored kaf_candidates result (a dict with 'networks')")
    rank = {a: i for i, a in enumerate(CANDIDATE_ACTS)}
    return dict(sorted(res["networks"].items(), key=lambda kv: (rank.get(kv[1]["act"], len(rank)), kv[1]["seed"])))


def _layers(net: Mapping) -> list[tuple[str, dict]]:
    """A network's analysed layers in forward order (``layer_order``; a stored result's keys are sorted)."""
    layers = net["analysis"]["layers"]
    order = net["analysis"].get("layer_order") or list(layers)
    return [(name, layers[name]) for name in order]


def accuracy_table(res):
    """One row per network of a stored :func:`kaf_candidates` result: ``network``, ``act``, ``seed``, the last
    epoch's training accuracy (``train_acc``), ``clean``; robust accuracy (correct before and after the
    attack) under ``pgd`` (true labels), ``autoattack`` (or the reduced cascade of a smoke run, see
    :func:`autoattack_label`), ``square``, ``adaptive`` (NaN where not run) and
    ``worst_case`` (all attacks run, per image); ``pgd_predicted_robust`` (the thesis's attack, counted as the
    book counts) and ``pgd_predicted_thesis`` (counted as the thesis did: correct after the attack, over all
    images), with ``rescued`` (misclassified images the predicted-label attack made correct). Fractions."""
    import pandas as pd

    rows = []
    for key, net in _networks(res).items():
        ev = net["evaluation"]
        row = {"network": key, "act": net["act"], "seed": net["seed"], "train_acc": net["history"]["train_acc"][-1],
               "clean": ev["clean_acc"]}
        for name in ("pgd", "autoattack", "square", "adaptive"):
            entry = ev["attacks"].get(name) or (ev["attacks"].get("aa-reduced") if name == "autoattack" else None)
            row[name] = entry["robust_acc"] if entry else float("nan")
        row["worst_case"] = ev["worst_case"]["robust_acc"]
        p = net["pgd_predicted"]
        row["pgd_predicted_robust"] = p["evaluation"]["attacks"]["attack"]["robust_acc"]
        row["pgd_predicted_thesis"] = p["thesis_acc"]
        row["rescued"] = p["rescued"]
        rows.append(row)
    return pd.DataFrame(rows)


def distance_table(res, which: str = "post"):
    """Per network and layer of a stored :func:`kaf_candidates` result, the distances between clean and
    adversarial activations (``which``: ``"post"``, the activations, as the thesis; ``"pre"``, their inputs)
    over the analysis images (:func:`activation_distances`): ``raw_median``, ``raw_q1``, ``raw_q3``,
    ``relative_median``, ``relative_q1``, ``relative_q3``, ``clean_norm_median``, with ``network``, ``act``,
    ``seed``, ``layer``, ``depth`` (1-based) and ``n`` (images)."""
    import pandas as pd

    if which not in ("post", "pre"):
        raise ValueError(f"which must be 'post' (activations) or 'pre' (pre-activations), got {which!r}")
    rows = []
    for key, net in _networks(res).items():
        for depth, (layer, entry) in enumerate(_layers(net), start=1):
            raw = np.asarray(entry["distances"][f"raw_{which}"], dtype=float)
            norm = np.asarray(entry["distances"][f"norm_{which}"], dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(norm > 0, raw / np.where(norm > 0, norm, 1.0), np.nan)
            q = lambda v, p: float(np.nanquantile(v, p)) if np.isfinite(v).any() else float("nan")  # noqa: E731
            rows.append({"network": key, "act": net["act"], "seed": net["seed"], "layer": layer, "depth": depth,
                         "n": len(raw), "raw_median": q(raw, 0.5), "raw_q1": q(raw, 0.25), "raw_q3": q(raw, 0.75),
                         "relative_median": q(rel, 0.5), "relative_q1": q(rel, 0.25),
                         "relative_q3": q(rel, 0.75), "clean_norm_median": q(norm, 0.5)})
    return pd.DataFrame(rows)


def smallest_distance(res, which: str = "post"):
    """Per layer, the activation whose networks have the smallest median distance (the mean over seeds of each
    network's median, :func:`distance_table`), by the raw distance (the thesis's measure) and by the relative
    one: columns ``layer``, ``depth``, ``smallest_raw``, ``smallest_relative``, ``same`` (whether they agree)."""
    import pandas as pd

    t = distance_table(res, which)
    means = t.groupby(["depth", "layer", "act"], sort=True)[["raw_median", "relative_median"]].mean().reset_index()
    rows = []
    for (depth, layer), g in means.groupby(["depth", "layer"], sort=True):
        raw = g.loc[g["raw_median"].idxmin(), "act"]
        rel = g.loc[g["relative_median"].idxmin(), "act"] if g["relative_median"].notna().any() else None
        rows.append({"layer": layer, "depth": depth, "smallest_raw": raw, "smallest_relative": rel,
                     "same": raw == rel})
    return pd.DataFrame(rows)


def preactivation_quantiles(res):
    """Long table of the pre-activation quantiles of a stored :func:`kaf_candidates` result: ``network``,
    ``act``, ``seed``, ``layer``, ``depth``, ``condition`` (``clean`` or ``adversarial``), ``level``, ``value``,
    and the condition's ``mean`` and ``std`` (of the sampled values) on every row."""
    import pandas as pd

    rows = []
    for key, net in _networks(res).items():
        levels = net["analysis"]["quantile_levels"]
        for depth, (layer, entry) in enumerate(_layers(net), start=1):
            for cond, p in entry["preact"].items():
                for level, value in zip(levels, p["quantiles"]):
                    rows.append({"network": key, "act": net["act"], "seed": net["seed"], "layer": layer,
                                 "depth": depth, "condition": cond, "level": level, "value": value,
                                 "mean": p["mean"], "std": p["std"]})
    return pd.DataFrame(rows)


def preactivation_histograms(res):
    """Long table of the pre-activation histograms of a stored :func:`kaf_candidates` result, one row per bin:
    ``network``, ``act``, ``seed``, ``layer``, ``depth``, ``condition``, ``left``, ``right`` (the bin's edges),
    ``count`` and ``density`` (count / (sampled values x bin width), values outside the edges included in the
    total)."""
    import pandas as pd

    rows = []
    for key, net in _networks(res).items():
        for depth, (layer, entry) in enumerate(_layers(net), start=1):
            edges = np.asarray(entry["edges"], dtype=float)
            for cond, p in entry["preact"].items():
                width = np.diff(edges)
                for left, right, w, count in zip(edges[:-1], edges[1:], width, p["hist"]):
                    rows.append({"network": key, "act": net["act"], "seed": net["seed"], "layer": layer,
                                 "depth": depth, "condition": cond, "left": left, "right": right, "count": count,
                                 "density": count / (p["n"] * w) if p["n"] and w > 0 else float("nan")})
    return pd.DataFrame(rows)


def candidates_display(acc, cfg):
    """An :func:`accuracy_table` as the chapter shows it, one string per cell: per network, clean accuracy,
    PGD with the true labels, PGD with the predicted labels counted as the thesis did (with the images it
    rescued), the cascade (official AutoAttack, or the reduced cascade of a smoke run), Square, the adaptive
    attack and the worst case (bold), as percentages (:data:`symact.report.MISSING` where not run); then the
    finished thesis's clean and PGD accuracy (:data:`KAF_CANDIDATES_REPORTED`). ``cfg``: the experiment's config
    (a :class:`CandidatesConfig` or its stored dict), for the columns' names."""
    import pandas as pd

    from symact import report

    if not isinstance(acc, pd.DataFrame):
        raise TypeError(f"expected the DataFrame of accuracy_table, got {type(acc).__name__}")
    missing = [c for c in ("act", "seed", "clean", "pgd", "pgd_predicted_thesis", "rescued", "autoattack", "square",
                           "adaptive", "worst_case") if c not in acc.columns]
    if missing:
        raise ValueError(f"expected an accuracy_table DataFrame; it lacks {', '.join(missing)}")
    get = (lambda k: cfg[k]) if isinstance(cfg, Mapping) else (lambda k: getattr(cfg, k))
    pgd = f"PGD-{get('pgd_steps')}x{get('pgd_restarts')}"
    cols = ["network", "clean", f"{pgd}, true labels", f"{pgd}, predicted labels (thesis's count)",
            "AutoAttack" if get("aa_steps") is None else "reduced cascade", "Square", "adaptive", "worst case"]
    rows = [[f"{ACT_NAMES.get(r.act, r.act)}, seed {r.seed}", report.pct(r.clean), report.pct(r.pgd),
             f"{report.pct(r.pgd_predicted_thesis)} ({r.rescued} rescued)", report.pct(r.autoattack),
             report.pct(r.square), report.pct(r.adaptive), f"**{report.pct(r.worst_case)}**"]
            for r in acc.itertuples()]
    rows += [[f"{ACT_NAMES[act]}, the finished thesis", report.pct(rep["clean"], 2), "", report.pct(rep["pgd"]),
              "", "", "", ""] for act, rep in KAF_CANDIDATES_REPORTED.items()]
    return pd.DataFrame(rows, columns=cols)


def candidates_markdown(acc, cfg, caption: str) -> str:
    """:func:`candidates_display` as a Markdown table followed by ``caption``."""
    from symact import report

    shown = candidates_display(acc, cfg)
    return report.markdown_table(shown.columns, shown.itertuples(index=False)) + "\n\n" + caption
