"""Error rates: symmetric-apl.txt Table 1 and the t-test of Table 7 (experiments
``table1-<network>-<dataset>[-da]``)."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from symact import data, models
from symact.activations import Maxout, create
from symact.attacks import accuracy
from symact.device import seed_everything
from symact.results import Unit, experiment, gpu_resources, stored_units
from symact.train import train
from symact.experiments.sapl.common import _lenet_recipe, _train_lenet, LeNetRecipe

__all__ = ['PAPER_TABLE1', 'PAPER_TABLE1_EXTRA', 'PAPER_TABLE7', 'table7', 'TABLE1', 'TABLE1_ACTS', 'TABLE1_EXTRA', 'Table1Config', 'Table1ResNetConfig', 'table1_progress', 'table1_run', 'table1_summary']


#: Table 1's activations: symact registry names, Maxout with nine pieces per unit (a true maxout network)
TABLE1_ACTS = ("relu", "leaky_relu", "prelu", "tanh", "sigmoid", "elu", "maxout", "swish", "sapl")

#: symmetric-apl.txt Table 1 (error %, best baseline named, then S-APL) and Table 7 (p-value):
#: (network, dataset, augment) -> (best baseline, its error, S-APL error, p)
PAPER_TABLE1 = {("lenet", "mnist", False): ("prelu", 1.11, 1.03, 0.061),
                ("mlp", "mnist", False): ("swish", 1.55, 1.71, 0.073),
                ("lenet", "cifar10", False): ("prelu", 31.93, 30.83, 0.041),
                ("lenet", "cifar10", True): ("prelu", 27.42, 27.02, 0.049)}
#: the same for the rows of :data:`TABLE1_EXTRA`
PAPER_TABLE1_EXTRA = {("resnet18", "cifar10", False): ("prelu", 9.41, 8.93, 0.029),
                      ("resnet18", "cifar10", True): ("prelu", 9.02, 8.07, 0.031),
                      ("lenet", "cifar100", False): ("prelu", 46.31, 45.74, 0.054),
                      ("lenet", "cifar100", True): ("prelu", 45.39, 44.81, 0.062),
                      ("resnet18", "cifar100", False): ("prelu", 20.14, 19.24, 0.049),
                      ("resnet18", "cifar100", True): ("prelu", 19.60, 18.71, 0.040)}


#: symmetric-apl.txt Table 7, every p-value (Appendix 8.2): (network, dataset, augment) -> (the comparison as the
#: table names it, p). 22 cells: LeNet-5 on MNIST, CIFAR-10 and CIFAR-100 (with and without augmentation), the MLP on
#: MNIST, and pure CNN, ResNet-18, EfficientNet-B0 and Network in Network on CIFAR-10 and CIFAR-100
PAPER_TABLE7 = {
    ("lenet", "mnist", False): ("PReLU vs S-APL", 0.061),
    ("lenet", "cifar10", False): ("PReLU vs S-APL", 0.041), ("lenet", "cifar10", True): ("PReLU vs S-APL", 0.049),
    ("lenet", "cifar100", False): ("PReLU vs S-APL", 0.054), ("lenet", "cifar100", True): ("PReLU vs S-APL", 0.062),
    ("mlp", "mnist", False): ("Swish vs S-APL", 0.073),
    ("pure-cnn", "cifar10", False): ("maxout vs S-APL", 0.043), ("pure-cnn", "cifar10", True): ("maxout vs S-APL", 0.057),
    ("pure-cnn", "cifar100", False): ("maxout vs S-APL", 0.072),
    ("pure-cnn", "cifar100", True): ("maxout vs S-APL", 0.068),
    ("resnet18", "cifar10", False): ("PReLU vs S-APL", 0.029), ("resnet18", "cifar10", True): ("PReLU vs S-APL", 0.031),
    ("resnet18", "cifar100", False): ("PReLU vs S-APL", 0.049),
    ("resnet18", "cifar100", True): ("PReLU vs S-APL", 0.040),
    ("efficientnet-b0", "cifar10", False): ("ReLU vs S-APL", 0.052),
    ("efficientnet-b0", "cifar10", True): ("ReLU vs S-APL", 0.042),
    ("efficientnet-b0", "cifar100", False): ("ReLU vs S-APL", 0.055),
    ("efficientnet-b0", "cifar100", True): ("ReLU vs S-APL", 0.059),
    ("nin", "cifar10", False): ("ReLU vs S-APL", 0.012), ("nin", "cifar10", True): ("ReLU vs S-APL", 0.019),
    ("nin", "cifar100", False): ("ReLU vs S-APL", 0.041), ("nin", "cifar100", True): ("ReLU vs S-APL", 0.050),
}


def table7(alpha: float = 0.05):
    """symmetric-apl.txt Table 7 as a DataFrame, one row per p-value (:data:`PAPER_TABLE7`): ``network``,
    ``dataset``, ``augment``, ``comparison``, ``p`` and ``above`` (p > ``alpha``: not significant at that level).
    ``df.attrs`` holds the summary the chapter quotes: ``n``, ``min``, ``max``, ``above`` (the count), ``alpha``."""
    import pandas as pd

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    df = pd.DataFrame([{"network": k[0], "dataset": k[1], "augment": k[2], "comparison": c, "p": p, "above": p > alpha}
                       for k, (c, p) in PAPER_TABLE7.items()])
    df.attrs.update(n=len(df), min=float(df["p"].min()), max=float(df["p"].max()), above=int(df["above"].sum()),
                    alpha=alpha)
    return df


def _table1_act(name: str):
    if name == "maxout":
        return lambda c: Maxout(9, keep_channels=False)   # "maxout (nine features)"
    if name == "prelu":
        return lambda c: create("prelu", channels=c)
    return lambda c: create(name)


@dataclass(frozen=True)
class Table1Config(LeNetRecipe):
    """symmetric-apl.txt Table 1: error rates of one network over ``seeds`` seeds for each activation.

    LeNet-5 in the SAF paper's shapes (our LeNet-5, see :class:`symact.models.LeNet5`), the MLP of
    Appendix 8.2 (258 and 128 hidden units, dropout 0.3, batch 32, 50 epochs). BN before every
    activation in every network (the paper puts it before every S-APL; we give the baselines the same).
    The paper gives no recipe for LeNet-5: SGD, momentum 0.9, lr 0.01, weight decay 5e-4, batch 128.
    """

    network: str = "lenet"
    dataset: str = "mnist"
    augment: bool = False
    activations: tuple[str, ...] = TABLE1_ACTS
    seeds: int = 5
    n_test: int | None = None


@dataclass(frozen=True)
class Table1ResNetConfig(Table1Config):
    """symmetric-apl.txt Table 1, ResNet-18 rows: a GPU job (about 0.56 G multiply-adds per image; maxout's
    nine-times-wider convolutions, nine times that).

    The paper takes its ResNet-18 and recipe from Napoletano et al. (2018) ("five residual convolution
    blocks, one MLP"; Appendix 8.2) and does not restate them. We use the CIFAR ResNet-18 of
    :class:`symact.models.ResNet18` (BN before every activation, as in every Table 1 network; ``width`` 64 is
    the standard one) with the usual CIFAR recipe: SGD, momentum 0.9, ``lr`` 0.1 on a cosine ``schedule``,
    weight decay 5e-4, batch 128, 100 epochs. Maxout (nine pieces) makes every convolution before an
    activation nine times wider and adds the shortcut to each piece.
    """

    network: str = "resnet18"
    dataset: str = "cifar10"
    epochs: int = 100
    lr: float = 0.1
    schedule: str = "cosine"
    width: int = 64


def _table1_one(cfg: Table1Config, name: str, seed: int, train_set, test_set, checkpoint=None) -> dict:
    """One network of Table 1: its test error (a fraction) and training seconds; ``checkpoint``: a file for
    resumable training (:func:`symact.train.train`)."""
    tcfg = _lenet_recipe(cfg, seed, cfg.augment)
    if cfg.network == "resnet18":
        seed_everything(seed)
        model = models.ResNet18(len(train_set.classes), act=_table1_act(name), in_channels=train_set.shape[0],
                                width=cfg.width)
        hist = train(model, train_set, dataclasses.replace(tcfg, schedule=cfg.schedule), checkpoint=checkpoint)
    elif cfg.network == "mlp":
        seed_everything(seed)
        model = models.MLP(train_set.x.shape[1:], (258, 128), len(train_set.classes), act=_table1_act(name),
                           batch_norm=True, dropout=0.3)
        hist = train(model, train_set, tcfg, checkpoint=checkpoint)
    else:
        model, hist = _train_lenet(_table1_act(name), train_set, tcfg, checkpoint=checkpoint)
    return {"error": 1 - accuracy(model, test_set), "seconds": float(np.sum(hist["seconds"]))}


def table1_summary(runs: dict) -> dict:
    """Table 1's rows from ``runs`` (activation -> list of :func:`_table1_one` results, one per seed): errors,
    their mean and standard deviation, training seconds; and Table 7's t-test (Welch's) of S-APL against the
    baseline with the lowest mean error, when both have two or more seeds."""
    from scipy.stats import ttest_ind

    rows = {}
    for name, done in runs.items():
        errors = [r["error"] for r in done]
        rows[name] = {"errors": errors, "mean": float(np.mean(errors)),
                      "std": float(np.std(errors, ddof=1)) if len(errors) > 1 else 0.0,
                      "train_seconds": [r["seconds"] for r in done]}
    out = {"rows": rows}
    baselines = [a for a in rows if a != "sapl"]
    if "sapl" in rows and baselines:
        best = min(baselines, key=lambda a: rows[a]["mean"])
        p = None
        if min(len(rows["sapl"]["errors"]), len(rows[best]["errors"])) > 1:
            with warnings.catch_warnings():  # seeds with equal errors: SciPy warns of precision loss, p stands
                warnings.simplefilter("ignore", RuntimeWarning)
                p = ttest_ind(rows["sapl"]["errors"], rows[best]["errors"], equal_var=False).pvalue
        out["ttest"] = {"best_baseline": best, "p": None if p is None or not np.isfinite(p) else float(p)}
    return out


def _table1_units(cfg: Table1Config) -> list[Unit]:
    """One unit per network, ``<activation>-seed<seed>`` (:func:`_table1_unit`), seed by seed, S-APL first and
    maxout (nine times wider layers) last, so that an unfinished run shows every activation early; each network
    is seeded on its own, so the order changes no number."""
    if (cfg.network not in ("lenet", "mlp", "resnet18") or cfg.dataset not in ("mnist", "cifar10", "cifar100")
            or cfg.seeds < 1):
        raise ValueError(f"network in ('lenet', 'mlp', 'resnet18'), dataset in ('mnist', 'cifar10', 'cifar100'), "
                         f"seeds >= 1; got {cfg}")
    if (cfg.network == "resnet18") != isinstance(cfg, Table1ResNetConfig):
        raise ValueError(f"ResNet-18 rows take a Table1ResNetConfig, and only they; got {type(cfg).__name__} "
                         f"with network={cfg.network!r}")
    unknown = [a for a in cfg.activations if a not in TABLE1_ACTS]
    if unknown:
        raise ValueError(f"unknown activations {unknown}; expected some of {list(TABLE1_ACTS)}")
    order = sorted(((seed, name) for name in cfg.activations for seed in range(cfg.seeds)),
                   key=lambda sn: (sn[1] == "maxout", sn[0], sn[1] != "sapl"))
    return [Unit(f"{name}-seed{seed}", _table1_unit, (cfg, name, seed), checkpoint=True, resources=gpu_resources())
            for seed, name in order]


def _table1_unit(cfg: Table1Config, name: str, seed: int, checkpoint=None) -> dict:
    """One network of Table 1 (:func:`_table1_one`), its data loaded here; ``checkpoint``: its folder."""
    train_set, test_set = data.load(cfg.dataset).head(cfg.n_train), data.load(cfg.dataset, train=False).head(cfg.n_test)
    return _table1_one(cfg, name, seed, train_set, test_set,
                       checkpoint=None if checkpoint is None else checkpoint / "train.ckpt")


def table1_run(cfg: Table1Config, outputs: dict | None = None) -> dict:
    """Table 1 from its networks (:func:`_table1_units`, one unit each); errors are fractions
    (:func:`table1_summary`). Called with a config alone, it runs every network in this process, stores nothing.
    A paper run of many CPU-hours can be stopped and resumed, and its finished networks shown before it ends
    (:func:`table1_progress`)."""
    units = _table1_units(cfg)
    if outputs is None:
        outputs = {u.key: u.fn(*u.args) for u in units}
    runs = {name: [outputs[f"{name}-seed{seed}"] for seed in range(cfg.seeds)] for name in cfg.activations}
    test_set = data.load(cfg.dataset, train=False).head(cfg.n_test)
    return {"data": test_set.description, **table1_summary(runs)}


def table1_progress(key: tuple, profile: str = "paper") -> dict | None:
    """The networks of an unfinished Table 1 run (``key`` as in :data:`TABLE1`) that are stored as units, as
    :func:`table1_summary` rows plus ``done`` and ``total`` network counts; None when there are none."""
    exp = TABLE1[key] if key in TABLE1 else TABLE1_EXTRA[key]
    cfg = exp.configs[profile]
    parts = stored_units(exp, profile)
    runs = {a: [parts[f"{a}-seed{s}"] for s in range(cfg.seeds) if f"{a}-seed{s}" in parts] for a in cfg.activations}
    runs = {a: r for a, r in runs.items() if r}
    if not runs:
        return None
    return {**table1_summary(runs), "done": len(parts), "total": len(cfg.activations) * cfg.seeds}


def _table1_configs(network: str, dataset: str, augment: bool) -> dict:
    base = Table1Config(network=network, dataset=dataset, augment=augment)
    if network == "mlp":
        base = Table1Config(network=network, dataset=dataset, epochs=50, batch_size=32, weight_decay=0.0)
    # smoke: maxout (nine times wider layers, the slowest) only on the MNIST LeNet-5, which covers its code path
    smoke_acts = ("relu", "maxout", "sapl") if (network, dataset) == ("lenet", "mnist") else ("relu", "sapl")
    smoke = Table1Config(network=network, dataset=dataset, augment=augment, activations=smoke_acts,
                         seeds=2, epochs=1, n_train=256, n_test=500)
    # quick: maxout on LeNet-5 (nine times wider layers: most of the quick training time on MNIST) is left to the
    # paper profile; the MLP keeps all nine, and three seeds; LeNet-5 two seeds (the chapter within 15 minutes)
    quick_acts = TABLE1_ACTS if network == "mlp" else tuple(a for a in TABLE1_ACTS if a != "maxout")
    quick = Table1Config(network=network, dataset=dataset, augment=augment, activations=quick_acts,
                         seeds=3 if network == "mlp" else 2, epochs=2, n_train=5000 if dataset == "mnist" else 2000,
                         n_test=2000, batch_size=base.batch_size, weight_decay=base.weight_decay)
    if network == "resnet18":  # a GPU job at every profile but smoke, which is a narrow ResNet-18 for tests
        base = Table1ResNetConfig(dataset=dataset, augment=augment)
        smoke = Table1ResNetConfig(dataset=dataset, augment=augment, activations=("relu", "maxout", "sapl"),
                                   seeds=2, epochs=1, n_train=256, n_test=200, width=8)
        quick = dataclasses.replace(base, activations=quick_acts, seeds=3, epochs=15)
    return {"smoke": smoke, "quick": quick, "paper": base}


def _table1_name(key: tuple) -> str:
    return f"table1-{key[0]}-{key[1]}{'-da' if key[2] else ''}"


#: (network, dataset, augment) -> registered experiment ``table1-<network>-<dataset>[-da]``
TABLE1 = {key: experiment("sapl", _table1_name(key), _table1_configs(*key), units=_table1_units)(table1_run)
          for key in PAPER_TABLE1}
#: the rows of :data:`PAPER_TABLE1_EXTRA`, registered the same way; the book shows a row only when its paper
#: result is stored (ResNet-18 needs a GPU, CIFAR-100 a download)
TABLE1_EXTRA = {key: experiment("sapl", _table1_name(key), _table1_configs(*key), units=_table1_units)(table1_run)
                for key in PAPER_TABLE1_EXTRA}
