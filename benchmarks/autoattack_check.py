"""AutoAttack: ours (symact.attacks.AutoAttack, torchattacks components) against the authors' implementation
(pyautoattack, https://github.com/fra31/auto-attack), on the same images of two trained MNIST networks.

The networks are trained here, in a few CPU minutes: a small LeNet-like convolutional network (Wong et al.
2020's MNIST network: two strided convolutions, a hidden layer of 100), once with standard training (Adam,
lr 1e-3), attacked at eps 0.1, and once with fast adversarial training (FGSM from a random start, eps 0.3,
step 0.375, Adam, cyclic lr up to 5e-3; 3 epochs, as more overfit catastrophically), attacked at eps 0.2;
L-infinity, the first ``--images`` MNIST test images. Both implementations run the standard version with
seed 0. Per network the JSON's ``rows`` hold: images, clean-correct count, robust count of each
implementation with its Wilson 95% interval, the per-image agreement (both robust, both broken, only ours
robust, only theirs robust), an exact McNemar p-value (a two-sided binomial test on the discordant pairs)
and each implementation's wall-clock seconds; its ``details``: the training, the component that broke each
image in ours (-1 robust, -2 misclassified before the attack) and the robust count after each component of
each implementation.

Run: ``python benchmarks/autoattack_check.py [--images N] [--epochs E] [--n-train M] [--threads T]``; writes
results/benchmarks/autoattack_check.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import sys
import time
from pathlib import Path

import torch
from scipy.stats import binomtest
from torch import nn

import symact
from symact import attacks, data, models
from symact.device import device_name
from symact.results import REPO_ROOT, _git_commit
from symact.train import TrainConfig, train

SEED = 0


def small_conv() -> nn.Module:
    """Wong et al. (2020)'s MNIST network: two strided convolutions, a hidden layer of 100."""
    return nn.Sequential(models.Normalize((0.1307,), (0.3081,)), nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))


NETWORKS = {
    # name: (model factory, training config, epochs, eps of the check, description). Fast adversarial training
    # with this recipe overfits catastrophically on MNIST after a few epochs (10 epochs on 20,000 images: PGD-20
    # robust accuracy 0 at eps 0.1); after 3 epochs on 10,000 it holds 77% at eps 0.1 and 30% at 0.2 (PGD-20,
    # 100 images), so it is checked at eps 0.2, where robust accuracy is neither 0 nor the clean accuracy.
    "smallconv-standard": (small_conv,
                           lambda e: TrainConfig(epochs=e, batch_size=100, optimizer="adam", lr=1e-3, weight_decay=0.0,
                                                 seed=SEED),
                           2, 0.1, "small conv net, standard training (undefended)"),
    "smallconv-fat": (small_conv,
                      lambda e: TrainConfig(epochs=e, batch_size=100, optimizer="adam", lr=5e-3, weight_decay=0.0,
                                            schedule="cyclic", method="fgsm", eps=0.3, alpha=0.375, seed=SEED),
                      3, 0.2, "small conv net, fast adversarial training (eps 0.3)"),
}


class _Capture(logging.Handler):
    """Collects pyautoattack's 'robust accuracy after APGD-CE: 12.34%' lines."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.after: dict[str, float] = {}

    def emit(self, record):
        m = re.match(r"robust accuracy after ([A-Z-]+): ([\d.]+)%", record.getMessage())
        if m:
            self.after[m.group(1).lower()] = float(m.group(2)) / 100


def wilson(k: int, n: int) -> list[float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [ci.low, ci.high]


def check(name: str, n_images: int, epochs: int, n_train: int) -> dict:
    make, tcfg, default_epochs, eps, desc = NETWORKS[name]
    epochs = epochs or default_epochs
    torch.manual_seed(SEED)
    model = make()
    cfg = tcfg(epochs)
    start = time.perf_counter()
    hist = train(model, data.load("mnist").head(n_train), cfg, progress=False)
    train_s = time.perf_counter() - start
    model.eval()
    x, y = data.load("mnist", train=False).head(n_images).tensors("cpu")
    with torch.no_grad():
        clean_ok = model(x).argmax(1) == y

    ours = attacks.make_attack("autoattack", model, eps=eps, seed=SEED)
    start = time.perf_counter()
    adv = ours(x, y)
    ours_s = time.perf_counter() - start
    with torch.no_grad():
        ours_rob = clean_ok & (model(adv).argmax(1) == y)
    broken = ours.last_broken_by
    assert torch.equal(ours_rob, broken == attacks.ROBUST), "cascade bookkeeping disagrees with the images"
    assert float((adv - x).abs().max()) <= eps + 1e-6

    from pyautoattack import AutoAttack as Authors
    log = logging.getLogger("auto-attack")
    cap = _Capture()
    log.addHandler(cap)
    log.setLevel(logging.DEBUG)
    theirs = Authors(model, norm="Linf", eps=eps, version="standard", seed=SEED, device="cpu")
    start = time.perf_counter()
    adv_t, _ = theirs.run_standard_evaluation(x, y, batch_size=n_images)
    theirs_s = time.perf_counter() - start
    log.removeHandler(cap)
    with torch.no_grad():
        theirs_rob = clean_ok & (model(adv_t).argmax(1) == y)

    n, both = len(y), int((ours_rob & theirs_rob).sum())
    only_ours, only_theirs = int((ours_rob & ~theirs_rob).sum()), int((~ours_rob & theirs_rob).sum())
    discordant = only_ours + only_theirs
    k_ours, k_theirs = int(ours_rob.sum()), int(theirs_rob.sum())
    names = [c for c, _ in ours.components]
    after_ours = {c: int(((broken == attacks.ROBUST) | (broken > i)).sum()) for i, c in enumerate(names)}
    print(f"{name}: clean {int(clean_ok.sum())}/{n}, robust ours {k_ours} ({ours_s:.0f} s), "
          f"theirs {k_theirs} ({theirs_s:.0f} s), discordant {only_ours} + {only_theirs}", flush=True)
    row = {
        "network": name, "eps": eps, "n": n, "clean_correct": int(clean_ok.sum()),
        "robust_ours": k_ours, "robust_theirs": k_theirs,
        "wilson95_ours": wilson(k_ours, n), "wilson95_theirs": wilson(k_theirs, n),
        "both_robust": both, "both_broken": n - both - discordant,
        "only_ours_robust": only_ours, "only_theirs_robust": only_theirs,
        "mcnemar_exact_p": binomtest(only_ours, discordant, 0.5).pvalue if discordant else 1.0,
        "seconds_ours": round(ours_s, 1), "seconds_theirs": round(theirs_s, 1),
    }
    detail = {
        "description": desc, "norm": "Linf",
        "train": {"config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "n_train": n_train,
                  "seconds": round(train_s, 1), "train_acc": hist["train_acc"]},
        "seeds": {"ours": SEED, "theirs": SEED, "training": SEED},
        "ours_component_seconds": dict(zip(names, [round(s, 1) for s in ours.last_seconds])),
        "robust_after_component": {"ours": after_ours,
                                   "theirs": {c: round(a * n) for c, a in cap.after.items()}},
        "ours_broken_by": broken.tolist(),
        "ours_robust": ours_rob.int().tolist(), "theirs_robust": theirs_rob.int().tolist(),
    }
    return row, detail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None, help="default: each network's own (2 and 3)")
    ap.add_argument("--n-train", type=int, default=10000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from importlib.metadata import version
    prov = {
        "profile": "benchmark", "commit": _git_commit(), "symact_version": symact.__version__,
        "torch_version": torch.__version__, "torchattacks_version": version("torchattacks"),
        "pyautoattack_version": version("pyautoattack"), "device": device_name(), "threads": torch.get_num_threads(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    start = time.perf_counter()
    results = {name: check(name, args.images, args.epochs, args.n_train) for name in NETWORKS}
    rows = [row for row, _ in results.values()]
    details = {name: detail for name, (_, detail) in results.items()}
    notes = (f"The first {args.images} MNIST test images; both implementations: standard version, L-infinity, "
             f"seed {SEED}. Networks trained here on the first {args.n_train:,} training images "
             f"({', '.join(f'{k} {v[2]} epochs' for k, v in NETWORKS.items())}). Robust: correct on the clean and on the adversarial image. Ours: components "
             f"{', '.join(attacks.AUTOATTACK_COMPONENTS)} (torchattacks classes at the authors' parameters). "
             f"Total {time.perf_counter() - start:.0f} s.")
    out = REPO_ROOT / "results" / "benchmarks" / "autoattack_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"provenance": prov, "notes": notes, "rows": rows, "details": details}, indent=1) + "\n")
    print(f"written to {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
