"""Measuring adversarial robustness: one evaluation protocol, its statistics, and the book's verdict rule.

One job: turn a network, an image set and a set of attacks into JSON-able numbers that can be compared,
pooled and tested later without rerunning anything. Attacks come from torchattacks (or
:mod:`symact.attacks`): anything called as ``atk(images, labels) -> adversarial images``, or a *cascade*
(an object with ``components: list[tuple[str, attack]]``, e.g. AutoAttack as its authors run it).

What :func:`evaluate` returns (protocol :data:`EVAL_PROTOCOL`)::

    {"protocol": "symact-eval-2", "predict": "argmax",   # the prediction rule's name
     "n": 500, "clean_correct": 487, "clean_acc": 0.974,
     "outcome": "<base64>",                               # per image: correct on the clean image
     "attacks": {name: {
         "kind": "attack" | "cascade",
         "robust": 301, "robust_acc": 0.602,              # correct on the clean AND the adversarial image
         "fooled": 186, "success_rate": 0.382,            # fooled / clean_correct
         "outcome": "<base64>",                           # per image: robust under this attack
         "linf": {"mean": .., "median": ..}, "l2": {"mean": .., "median": ..},   # successful perturbations
         "psnr": .., "mean_linf": .., "mean_l2": .., "confidence_gap": ..,      # as symact.attacks.evaluate
         "broken_by": {"components": [..], "counts": {..}, "code": "<base64>"}  # cascades only
         "examples": {...}}},                             # with return_examples=k
     "worst_case": {"attacks": [names], "robust": 290, "robust_acc": 0.58, "outcome": "<base64>"}}

Per-image outcomes are ``np.packbits`` of a boolean array in base64 (:func:`encode_outcomes`,
:func:`decode_outcomes`): 10,000 images take 1,668 characters. Stored outcomes are what makes paired tests
possible later: :func:`mcnemar` (two attacks or two networks on the same images), :func:`worst_case`
(robust = survives every attack), :func:`pool` (disjoint image sets). Means over an empty set are NaN.

Beyond one epsilon: :func:`robustness_curve` (worst-case accuracy against epsilon, with intervals) and
:func:`compare_curves`; :func:`min_norm_distances` (FAB or CW, the smallest perturbation found per image).
:func:`sanity` runs the checks of Carlini et al. (2019) for gradient masking on a report that
:func:`run_sanity` builds. :func:`verdict` is the one evidence rule of the book (its docstring states it).
"""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torchattacks
from torchattacks.attack import Attack as _TAAttack
from scipy import stats
from torch import nn

from symact.attacks import progress_bar
from symact.data import ImageData
from symact.device import get_device
from symact.store.checkpoints import load_matching, rng_state, save_atomic, set_rng_state

__all__ = ["EVAL_PROTOCOL", "cascade_label", "Transfer", "Verdict", "argmax", "compare_curves", "decode_broken_by",
           "decode_outcomes", "encode_outcomes", "evaluate", "mcnemar", "min_norm_distances", "distance_values", "pool",
           "proportion_interval", "robust_acc_at", "robustness_curve", "run_sanity", "sanity", "verdict",
           "worst_case"]

EVAL_PROTOCOL = "symact-eval-2"
"""Version of the protocol :func:`evaluate` implements. Version 2: per-image outcomes, a prediction rule,
attacks run on the clean-correct images only (except a single, non-dict attack: see :func:`evaluate`),
cascades run component by component on the images still robust, worst case over all attacks."""

Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Predict = Callable[[torch.Tensor], torch.Tensor]
NAN = float("nan")


# --------------------------------------------------------------------------- outcomes


def cascade_label(stored) -> str:
    """How a table names the AutoAttack-like cascade of a stored result (a :class:`symact.results.Result` or the
    stored ``{"provenance", "result"}`` layout): from its config's ``autoattack`` field, and for a result stored
    before that field existed (all of which ran torchattacks' 10-iteration cascade) as ``"cascade-10"``; see
    :func:`symact.attacks.attack_label`. Only the official 100-iteration cascade is called AutoAttack."""
    from symact.attacks import attack_label

    prov = stored.provenance if hasattr(stored, "provenance") else stored["provenance"]
    return attack_label(prov.get("config", {}).get("autoattack", "cascade-10"))


def argmax(outputs: torch.Tensor) -> torch.Tensor:
    """The default prediction rule: the index of the largest output (dim 1)."""
    return outputs.argmax(1)


def encode_outcomes(outcome) -> str:
    """A boolean vector (array, list or tensor) as base64 of ``np.packbits`` (8 images a byte).

    Example:
        >>> s = encode_outcomes([True, False, True])
        >>> decode_outcomes(s, 3).tolist()
        [True, False, True]
    """
    arr = np.asarray(outcome.cpu() if isinstance(outcome, torch.Tensor) else outcome)
    if arr.ndim != 1 or (arr.dtype != bool and arr.size and not np.isin(arr, (0, 1)).all()):
        raise ValueError(f"expected a 1-D boolean outcome vector, got shape {arr.shape} dtype {arr.dtype}")
    return base64.b64encode(np.packbits(arr.astype(bool)).tobytes()).decode("ascii")


def decode_outcomes(s: str, n: int) -> np.ndarray:
    """The boolean vector of ``n`` images that :func:`encode_outcomes` wrote into ``s``."""
    raw = np.frombuffer(base64.b64decode(s.encode("ascii")), dtype=np.uint8)
    if not 0 <= n <= 8 * len(raw) or len(raw) != (n + 7) // 8:
        raise ValueError(f"the outcome string holds {len(raw)} bytes, not the {(n + 7) // 8} that {n} images need")
    return np.unpackbits(raw)[:n].astype(bool)


def _encode_codes(codes: np.ndarray) -> str:
    return base64.b64encode(np.asarray(codes, dtype=np.uint8).tobytes()).decode("ascii")


def decode_broken_by(entry: Mapping, n: int) -> list[str | None]:
    """Per image, the cascade component that broke it (``None``: not broken, or misclassified clean).

    ``entry`` is a cascade's entry of :func:`evaluate`'s ``attacks`` (or its ``broken_by`` dict). The stored
    ``code`` is one byte per image: 0 = not broken, ``k`` = ``components[k - 1]``.
    """
    bb = entry.get("broken_by", entry)
    codes = np.frombuffer(base64.b64decode(bb["code"].encode("ascii")), dtype=np.uint8)
    if len(codes) != n:
        raise ValueError(f"the broken_by code holds {len(codes)} images, not {n}")
    names = [None, *bb["components"]]
    return [names[c] for c in codes]


def _as_outcome(x, n: int | None = None) -> np.ndarray:
    """A boolean vector from an encoded string (needs ``n``), an evaluate() entry, an array, list or tensor."""
    if isinstance(x, Mapping):
        x = x["outcome"]
    if isinstance(x, str):
        if n is None:
            raise ValueError("an encoded outcome string needs n= (the number of images)")
        return decode_outcomes(x, n)
    arr = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D outcome vector, got shape {arr.shape}")
    if arr.dtype != bool:
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError("expected boolean outcomes (or 0/1)")
        arr = arr.astype(bool)
    if n is not None and len(arr) != n:
        raise ValueError(f"expected {n} outcomes, got {len(arr)}")
    return arr


# --------------------------------------------------------------------------- statistics


def worst_case(outcomes: Iterable | Mapping, n: int | None = None) -> np.ndarray:
    """Per image, robust under every attack: the AND of the outcome vectors (arrays, or strings with ``n``).

    Example:
        >>> worst_case([[True, True, False], [True, False, True]]).tolist()
        [True, False, False]
    """
    vecs = [_as_outcome(o, n) for o in (outcomes.values() if isinstance(outcomes, Mapping) else outcomes)]
    if not vecs:
        raise ValueError("worst_case needs at least one outcome vector")
    if len({len(v) for v in vecs}) != 1:
        raise ValueError(f"outcome vectors of different lengths {[len(v) for v in vecs]}: not the same images")
    return np.logical_and.reduce(vecs)


def mcnemar(a, b, n: int | None = None) -> dict:
    """Exact McNemar test of two paired outcome vectors on the same images (two attacks, or two networks).

    Returns ``{"b": .., "c": .., "n": .., "p": ..}``: ``b`` images correct under ``a`` and wrong under ``b``,
    ``c`` the reverse, ``p`` the two-sided exact binomial p-value of ``b`` among the ``b + c`` discordant
    images (``scipy.stats.binomtest``, probability 1/2); ``p = 1`` when there are none.
    """
    a, b_ = _as_outcome(a, n), _as_outcome(b, n)
    if len(a) != len(b_):
        raise ValueError(f"paired outcomes must have equal length, got {len(a)} and {len(b_)}")
    nb, nc = int((a & ~b_).sum()), int((~a & b_).sum())
    p = float(stats.binomtest(nb, nb + nc, 0.5).pvalue) if nb + nc else 1.0
    return {"b": nb, "c": nc, "n": int(len(a)), "p": p}


def proportion_interval(k: int, n: int, level: float = 0.95, method: str = "wilson") -> tuple[float, float]:
    """Confidence interval of the proportion ``k / n``: ``scipy.stats.binomtest(k, n).proportion_ci``.

    ``method`` is ``"wilson"`` (score interval) or ``"exact"`` (Clopper-Pearson). ``n = 0`` (no images)
    gives ``(0.0, 1.0)``: nothing is known about the proportion.

    Example:
        >>> [round(v, 3) for v in proportion_interval(50, 100)]
        [0.404, 0.596]
    """
    if method not in ("wilson", "exact"):
        raise ValueError(f"method must be 'wilson' or 'exact', got {method!r}")
    if int(k) != k or int(n) != n or n < 0 or not 0 <= k <= n:
        raise ValueError(f"need integers 0 <= k <= n, got k={k}, n={n}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n == 0:
        return 0.0, 1.0
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method=method)
    return float(ci.low), float(ci.high)


# --------------------------------------------------------------------------- evaluate


def _is_cascade(atk) -> bool:
    return hasattr(atk, "components")


def _rule_name(predict: Predict | None) -> str:
    if predict is None:
        return "argmax"
    return getattr(predict, "__name__", type(predict).__name__)


class _Tally:
    """Running sums of one attack over the batches."""

    def __init__(self, kind: str, components: list[str] | None = None):
        self.kind, self.components = kind, components
        self.robust = self.fooled = 0
        self.psnr = self.linf = self.l2 = self.gap = 0.0
        self.linfs: list[torch.Tensor] = []
        self.l2s: list[torch.Tensor] = []
        self.outcome: list[torch.Tensor] = []
        self.codes: list[torch.Tensor] = []
        self.examples: dict[str, list] = {"clean": [], "adversarial": [], "label": [], "clean_pred": [],
                                          "adv_pred": []}

    def result(self, n: int, clean_ok: int, return_examples: int) -> dict:
        f = self.fooled
        linfs = torch.cat(self.linfs).numpy() if self.linfs else np.zeros(0)
        l2s = torch.cat(self.l2s).numpy() if self.l2s else np.zeros(0)
        out = {"kind": self.kind, "robust": self.robust, "robust_acc": self.robust / max(n, 1),
               "fooled": f, "success_rate": f / max(clean_ok, 1),
               "outcome": encode_outcomes(torch.cat(self.outcome) if self.outcome else np.zeros(0, bool)),
               "linf": {"mean": self.linf / f if f else NAN, "median": float(np.median(linfs)) if f else NAN},
               "l2": {"mean": self.l2 / f if f else NAN, "median": float(np.median(l2s)) if f else NAN},
               "psnr": self.psnr / f if f else NAN, "mean_linf": self.linf / f if f else NAN,
               "mean_l2": self.l2 / f if f else NAN, "confidence_gap": self.gap / f if f else NAN}
        if self.kind == "cascade":
            codes = torch.cat(self.codes).numpy() if self.codes else np.zeros(0, np.uint8)
            out["broken_by"] = {"components": list(self.components),
                                "counts": {c: int((codes == i + 1).sum()) for i, c in enumerate(self.components)},
                                "code": _encode_codes(codes)}
        if return_examples:
            out["examples"] = self.examples
        return out


def _run_cascade(model, rule, atk, xb, yb, ok) -> tuple[torch.Tensor, torch.Tensor]:
    """Each component on the images still robust under ``rule``; the adversarial images and, per image, the
    1-based index of the component that broke it (0: none)."""
    adv = xb.clone()
    code = torch.zeros(len(yb), dtype=torch.uint8)
    todo = ok.clone()
    for k, (_, comp) in enumerate(atk.components, start=1):
        idx = todo.nonzero()[:, 0]
        if len(idx) == 0:
            break
        a = comp(xb[idx], yb[idx]).detach()
        model.eval()
        adv[idx] = a
        with torch.no_grad():
            still = rule(model(a)) == yb[idx]
        code[idx[~still].cpu()] = k
        todo[idx] = still
    return adv, code


def evaluate(
    model: nn.Module,
    data: ImageData,
    attacks: Mapping[str, Any] | Any | None = None,
    predict: Predict | None = None,
    batch_size: int = 250,
    device=None,
    progress: bool | None = None,
    return_examples: int = 0,
    checkpoint: str | Path | None = None,
) -> dict:
    """Clean accuracy, and robustness under each attack, of ``model`` on ``data``, per image.

    Args:
        model: maps images in [0, 1] to outputs; evaluated in eval mode (its mode is restored afterwards).
        data: the images (:class:`symact.data.ImageData`).
        attacks: a dict name -> attack, or a single attack (backward compatible: see below), or ``None``
            (clean accuracy only). An attack is called as ``atk(images, labels) -> adversarial images``;
            a *cascade* (an object with ``components: [(name, attack), ...]``) is run as its authors run it:
            each component attacks only the images every earlier component left robust under ``predict``,
            and ``broken_by`` records which component broke each image.
        predict: the prediction rule ``predict(outputs) -> labels`` (default :func:`argmax`). A label that is
            no class (e.g. -1 for a rejected input) counts as wrong. The attacks themselves use their own
            criteria (torchattacks: argmax); the rule decides what counts as correct.
        batch_size, device, progress: batching, the device (:func:`symact.device.get_device`), tqdm bars.
        return_examples: keep the first ``k`` clean and adversarial images, labels and predictions.
        checkpoint: a file for a resumable evaluation. After every batch the running sums and torch's random
            state are saved there; called again after an interruption, the evaluation resumes after the last
            saved batch and returns what an uninterrupted run returns (the attacks draw the same numbers). A
            checkpoint written for another network, data, batches, attacks or rule raises ValueError; the file
            is removed once the evaluation returns. (Written here, not taken from a library: torchattacks and Dask keep no
            state across an interrupted attack.)

    Every attack of a dict runs on the clean-correct images only (the others are wrong already), so the
    per-image outcomes of different attacks compare like with like. ``robust`` counts images correct on the
    clean and on the adversarial image; ``success_rate`` is fooled / clean-correct; ``linf``, ``l2``
    (mean and median), ``psnr`` (mean of 10 log10(1 / MSE)), ``mean_linf``, ``mean_l2`` and
    ``confidence_gap`` (the S-APL paper's avg |Z_true - Z_adv|: softmax probabilities of the true class
    and of the most probable class on the adversarial image, symmetric-apl.txt Section 6.1) are over the
    successful adversarial examples (clean-correct images made wrong), NaN when there are none.
    ``worst_case`` is robust under every attack run. The layout is in the module docstring.

    Backward compatibility: with a single attack (not a dict) it is named ``"attack"``, runs on whole
    batches exactly as :func:`symact.attacks.evaluate` runs it (so random attacks draw the same numbers),
    and the result also carries that function's flat keys with identical numbers: ``robust_acc``,
    ``success_rate``, ``psnr``, ``mean_linf``, ``mean_l2``, ``confidence_gap`` and ``examples``. (A single
    cascade still runs component by component on the clean-correct images.)

    Example:
        >>> r = evaluate(model, test, {"fgsm": FGSM(model, 0.1), "pgd": PGD(model, 0.1)})   # doctest: +SKIP
        >>> r["worst_case"]["robust_acc"], mcnemar(r["attacks"]["fgsm"]["outcome"],          # doctest: +SKIP
        ...                                        r["attacks"]["pgd"]["outcome"], n=r["n"])["p"]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    single = attacks is not None and not isinstance(attacks, Mapping)
    named = {"attack": attacks} if single else dict(attacks or {})
    for name, atk in named.items():
        if not (callable(atk) or _is_cascade(atk)):
            raise TypeError(f"attack {name!r} is neither callable nor a cascade with .components")
    rule = predict or argmax
    dev = get_device(device)
    was = model.training
    model.eval()
    tallies = {name: _Tally("cascade" if _is_cascade(atk) else "attack",
                            [c for c, _ in atk.components] if _is_cascade(atk) else None)
               for name, atk in named.items()}
    n = clean_ok = 0
    clean_outcome: list[torch.Tensor] = []
    total = math.ceil(len(data) / batch_size)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    fingerprint = None
    if checkpoint is not None:
        from symact.store.provenance import fingerprint as weights_hash

        fingerprint = (f"network {weights_hash(model)}, {len(data)} images, batches of {batch_size}, rule "
                       f"{_rule_name(predict)}, attacks " + ", ".join(f"{k} ({t.kind})" for k, t in tallies.items())
                       + f", {return_examples} examples")
    done = 0
    state = load_matching(checkpoint, fingerprint, "evaluation")
    if state is not None:
        done, n, clean_ok, clean_outcome = state["batches"], state["n"], state["clean_ok"], state["clean_outcome"]
        for name, saved in state["tallies"].items():
            tallies[name].__dict__.update(saved)
        set_rng_state(state["rng"], dev)
    try:
        for b, (xb, yb) in enumerate(progress_bar(data.batches(batch_size, device=dev), total, "evaluate",
                                                  progress)):
            if b < done:  # evaluated before the interruption
                continue
            with torch.no_grad():
                out = model(xb)
                pred = rule(out)
            ok = pred == yb
            n += len(yb)
            clean_ok += int(ok.sum())
            clean_outcome.append(ok.cpu())
            for name, atk in named.items():
                t = tallies[name]
                code = None
                if t.kind == "cascade":
                    x_adv, code = _run_cascade(model, rule, atk, xb, yb, ok)
                elif single:
                    x_adv = atk(xb, yb).detach()
                else:
                    x_adv = xb.clone()
                    idx = ok.nonzero()[:, 0]
                    if len(idx):
                        x_adv[idx] = atk(xb[idx], yb[idx]).detach()
                model.eval()  # some attacks restore the mode they found; be sure
                with torch.no_grad():
                    adv_out = model(x_adv)
                    prob = adv_out.float().softmax(1)
                    adv_pred = rule(adv_out)
                rob = (adv_pred == yb) & ok  # robust: correct before and after the attack
                t.robust += int(rob.sum())
                t.outcome.append(rob.cpu())
                if code is not None:
                    t.codes.append(code)
                fooled = ok & ~rob
                t.fooled += int(fooled.sum())
                if fooled.any():
                    d = (x_adv - xb).flatten(1)[fooled]
                    mse = d.pow(2).mean(1).clamp_min(1e-20)
                    t.psnr += float((10 * torch.log10(1 / mse)).sum())
                    linf, l2 = d.abs().amax(1), d.norm(dim=1)
                    t.linf += float(linf.sum())
                    t.l2 += float(l2.sum())
                    t.linfs.append(linf.detach().float().cpu())
                    t.l2s.append(l2.detach().float().cpu())
                    p = prob[fooled]
                    top = prob.argmax(1)[fooled]
                    t.gap += float((p.gather(1, yb[fooled, None]) - p.gather(1, top[:, None])).abs().sum())
                ex = t.examples
                have = len(ex["label"])
                if have < return_examples:
                    k = return_examples - have
                    ex["clean"] += xb[:k].cpu().tolist()
                    ex["adversarial"] += x_adv[:k].cpu().tolist()
                    ex["label"] += yb[:k].cpu().tolist()
                    ex["clean_pred"] += pred[:k].cpu().tolist()
                    ex["adv_pred"] += adv_pred[:k].cpu().tolist()
            if checkpoint is not None:
                save_atomic({"fingerprint": fingerprint, "batches": b + 1, "n": n, "clean_ok": clean_ok,
                             "clean_outcome": clean_outcome, "tallies": {k: vars(t) for k, t in tallies.items()},
                             "rng": rng_state(dev)}, checkpoint)
    finally:
        model.train(was)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    clean = torch.cat(clean_outcome) if clean_outcome else torch.zeros(0, dtype=torch.bool)
    result: dict[str, Any] = {"protocol": EVAL_PROTOCOL, "predict": _rule_name(predict), "n": n,
                              "clean_correct": clean_ok, "clean_acc": clean_ok / max(n, 1),
                              "outcome": encode_outcomes(clean),
                              "attacks": {name: t.result(n, clean_ok, return_examples) for name, t in tallies.items()}}
    if named:
        result["worst_case"] = _worst_entry(result["attacks"], n)
    if single:
        _add_flat(result)
    return result


def _worst_entry(entries: Mapping[str, dict], n: int) -> dict:
    w = worst_case([e["outcome"] for e in entries.values()], n)
    return {"attacks": list(entries), "robust": int(w.sum()), "robust_acc": int(w.sum()) / max(n, 1),
            "outcome": encode_outcomes(w)}


_FLAT = ("robust_acc", "success_rate", "psnr", "mean_linf", "mean_l2", "confidence_gap")


def _add_flat(result: dict) -> None:
    entry = result["attacks"]["attack"]
    result.update({k: entry[k] for k in _FLAT})
    if "examples" in entry:
        result["examples"] = entry.pop("examples")


def pool(results: Sequence[dict]) -> dict:
    """:func:`evaluate` results on disjoint image sets pooled into the result on their union.

    Counts add, outcomes (and cascades' ``broken_by`` codes) concatenate in the order given, accuracies are
    recomputed from the counts, the means over fooled images (``psnr``, ``mean_linf``, ``mean_l2``,
    ``confidence_gap``, ``linf``/``l2`` means) are weighted by fooled images, as
    :func:`symact.attacks.pool_evaluations` weighs them. Medians cannot be pooled from summaries: they are
    ``None`` in a pool of several results. ``examples`` are dropped. Results of single-attack (flat)
    evaluations pool into a flat result too. All results must share the protocol, the prediction rule and
    the attack names.
    """
    results = list(results)
    if not results:
        raise ValueError("pool needs at least one evaluate() result")
    first = results[0]
    for r in results:
        if r.get("protocol") != EVAL_PROTOCOL:
            raise ValueError(f"pool needs results of protocol {EVAL_PROTOCOL}, got {r.get('protocol')!r}")
        if r["predict"] != first["predict"] or list(r["attacks"]) != list(first["attacks"]):
            raise ValueError("pooled results must share the prediction rule and the attack names")
    n = sum(r["n"] for r in results)
    clean_ok = sum(r["clean_correct"] for r in results)
    cat = lambda key, src: encode_outcomes(np.concatenate(  # noqa: E731
        [decode_outcomes(s[key], r["n"]) for s, r in src])) if n else encode_outcomes(np.zeros(0, bool))
    out: dict[str, Any] = {"protocol": EVAL_PROTOCOL, "predict": first["predict"], "n": n,
                           "clean_correct": clean_ok, "clean_acc": clean_ok / max(n, 1),
                           "outcome": cat("outcome", [(r, r) for r in results]), "attacks": {}}
    for name in first["attacks"]:
        es = [r["attacks"][name] for r in results]
        fooled = [e["fooled"] for e in es]
        f = sum(fooled)
        wmean = lambda get: (sum(get(e) * k for e, k in zip(es, fooled) if k) / f) if f else NAN  # noqa: E731
        robust = sum(e["robust"] for e in es)
        median = lambda key: es[0][key]["median"] if len(es) == 1 else None  # noqa: E731
        entry = {"kind": es[0]["kind"], "robust": robust, "robust_acc": robust / max(n, 1), "fooled": f,
                 "success_rate": f / max(clean_ok, 1), "outcome": cat("outcome", zip(es, results)),
                 "linf": {"mean": wmean(lambda e: e["linf"]["mean"]), "median": median("linf")},
                 "l2": {"mean": wmean(lambda e: e["l2"]["mean"]), "median": median("l2")}}
        for key in ("psnr", "mean_linf", "mean_l2", "confidence_gap"):
            entry[key] = wmean(lambda e: e[key])
        if entry["kind"] == "cascade":
            comps = es[0]["broken_by"]["components"]
            codes = np.concatenate([np.frombuffer(base64.b64decode(e["broken_by"]["code"]), dtype=np.uint8)
                                    for e in es])
            entry["broken_by"] = {"components": comps,
                                  "counts": {c: sum(e["broken_by"]["counts"][c] for e in es) for c in comps},
                                  "code": _encode_codes(codes)}
        out["attacks"][name] = entry
    if out["attacks"]:
        out["worst_case"] = _worst_entry(out["attacks"], n)
    if all("robust_acc" in r for r in results) and list(first["attacks"]) == ["attack"]:
        _add_flat(out)
    return out


# --------------------------------------------------------------------------- curves and distances


def robustness_curve(
    model: nn.Module,
    data: ImageData,
    make_attacks: Callable[[nn.Module, float], Mapping[str, Any]],
    eps_grid: Sequence[float],
    predict: Predict | None = None,
    stop_at_zero: bool = True,
    level: float = 0.95,
    batch_size: int = 250,
    device=None,
    progress: bool | None = None,
) -> dict:
    """Robust accuracy against epsilon: under each attack and in the worst case over all of them.

    ``make_attacks(model, eps)`` returns a dict name -> attack at budget ``eps``; every point of the
    (sorted) ``eps_grid`` is one :func:`evaluate` with that dict. With ``stop_at_zero`` the curve stops
    after the first epsilon at which every attack leaves 0 robust images (larger budgets are taken to
    leave none either).

    Returns ``{"protocol", "predict", "n", "clean_acc", "level", "eps_grid" (asked), "eps" (evaluated),
    "stopped_early", "attacks" (names), "robust": {name | "worst_case": [count per eps]},
    "robust_acc": {...: [acc per eps]}, "interval": {...: [[lo, hi] per eps]} (Wilson, ``level``),
    "points": [evaluate() result per eps]}`` (the points keep the per-image outcomes).
    """
    grid = sorted(float(e) for e in eps_grid)
    if not grid or any(not (e >= 0 and math.isfinite(e)) for e in grid):
        raise ValueError(f"eps_grid must hold finite epsilons >= 0, got {list(eps_grid)}")
    points, names = [], None
    for eps in grid:
        atks = dict(make_attacks(model, eps))
        if not atks:
            raise ValueError("make_attacks returned no attacks")
        if names is None:
            names = list(atks)
        elif list(atks) != names:
            raise ValueError(f"make_attacks must return the same names at every eps: {names} vs {list(atks)}")
        r = evaluate(model, data, atks, predict=predict, batch_size=batch_size, device=device, progress=progress)
        points.append(r)
        if stop_at_zero and all(e["robust"] == 0 for e in r["attacks"].values()):
            break
    n = points[0]["n"]
    keys = [*names, "worst_case"]
    count = lambda r, k: r["worst_case"]["robust"] if k == "worst_case" else r["attacks"][k]["robust"]  # noqa: E731
    robust = {k: [count(r, k) for r in points] for k in keys}
    return {"protocol": EVAL_PROTOCOL, "predict": points[0]["predict"], "n": n,
            "clean_acc": points[0]["clean_acc"], "level": level, "eps_grid": grid,
            "eps": grid[:len(points)], "stopped_early": len(points) < len(grid), "attacks": names,
            "robust": robust, "robust_acc": {k: [c / max(n, 1) for c in v] for k, v in robust.items()},
            "interval": {k: [list(proportion_interval(c, n, level)) for c in v] for k, v in robust.items()},
            "points": points}


def compare_curves(a: dict, b: dict, key: str = "worst_case") -> dict:
    """Paired comparison of two :func:`robustness_curve` results on the same images (two networks).

    At every epsilon both curves evaluated, an exact McNemar test of the per-image outcomes under ``key``
    (``"worst_case"`` or an attack name). Returns ``{"eps", "robust_acc_a", "robust_acc_b", "difference"
    (a - b), "b", "c", "p"}``, lists over the common epsilons. Only the image count can be checked: the
    caller guarantees the same images in the same order.
    """
    if a["n"] != b["n"]:
        raise ValueError(f"the curves are on different numbers of images ({a['n']} and {b['n']})")
    pos_b = {round(e, 12): i for i, e in enumerate(b["eps"])}
    out: dict[str, list] = {k: [] for k in ("eps", "robust_acc_a", "robust_acc_b", "difference", "b", "c", "p")}
    for i, e in enumerate(a["eps"]):
        j = pos_b.get(round(e, 12))
        if j is None:
            continue
        pa, pb = a["points"][i], b["points"][j]
        oa = pa["worst_case"] if key == "worst_case" else pa["attacks"][key]
        ob = pb["worst_case"] if key == "worst_case" else pb["attacks"][key]
        t = mcnemar(oa["outcome"], ob["outcome"], n=a["n"])
        out["eps"].append(e)
        out["robust_acc_a"].append(oa["robust_acc"])
        out["robust_acc_b"].append(ob["robust_acc"])
        out["difference"].append(oa["robust_acc"] - ob["robust_acc"])
        for k in ("b", "c", "p"):
            out[k].append(t[k])
    return out


def min_norm_distances(
    model: nn.Module,
    data: ImageData,
    norm: str = "Linf",
    method: str = "fab",
    steps: int = 100,
    predict: Predict | None = None,
    batch_size: int = 250,
    device=None,
    progress: bool | None = None,
    **kwargs,
) -> dict:
    """The smallest successful perturbation found per image: untargeted FAB (Linf or L2) or CW (L2).

    ``fab``: ``torchattacks.FAB`` with ``steps`` (default 100) and a budget that constrains nothing (1 in
    Linf, the image diagonal in L2; ``eps=`` overrides), so it returns the smallest perturbation it found.
    ``cw``: ``torchattacks.CW`` (c = 1, ``steps``; ``c``, ``kappa``, ``lr`` by keyword) keeps the smallest
    L2 perturbation that fooled the model, at one constant ``c`` (no binary search). Either is an upper
    bound on the true minimum distance. Other keywords go to the torchattacks class.

    Returns ``{"protocol", "norm", "method", "steps", "predict", "n", "clean_correct", "clean_outcome",
    "distances" (one per image: 0.0 for an image misclassified clean, ``inf`` where the attack failed),
    "found" (clean-correct images with a finite distance), and over the clean-correct images "median",
    "q1", "q3" (``inf`` where more than that fraction failed; NaN with no clean-correct image)}``.
    """
    if norm not in ("Linf", "L2"):
        raise ValueError(f"norm must be 'Linf' or 'L2', got {norm!r}")
    if method not in ("fab", "cw"):
        raise ValueError(f"method must be 'fab' or 'cw', got {method!r}")
    if method == "cw" and norm != "L2":
        raise ValueError("CW is an L2 attack: use norm='L2', or method='fab' for Linf")
    rule = predict or argmax
    dev = get_device(device)
    was = model.training
    model.eval()
    dist, clean = [], []
    total = math.ceil(len(data) / batch_size)
    try:
        for xb, yb in progress_bar(data.batches(batch_size, device=dev), total, "distances", progress):
            with torch.no_grad():
                out = model(xb)
                ok = rule(out) == yb
            d = torch.zeros(len(yb), dtype=torch.float64)
            idx = ok.nonzero()[:, 0]
            if len(idx):
                if method == "fab":
                    kw = dict(kwargs)
                    kw.setdefault("eps", 1.0 if norm == "Linf" else math.sqrt(xb[0].numel()))
                    kw.setdefault("n_classes", out.shape[1])
                    atk = torchattacks.FAB(model, norm=norm, steps=steps, **kw)
                else:
                    atk = torchattacks.CW(model, steps=steps, **kwargs)
                x, y = xb[idx], yb[idx]
                adv = atk(x, y).detach()
                model.eval()
                with torch.no_grad():
                    fooled = (rule(model(adv)) != y).cpu()
                delta = (adv - x).flatten(1)
                size = (delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)).double().cpu()
                d[idx.cpu()] = torch.where(fooled, size, torch.full_like(size, math.inf))
            dist.append(d)
            clean.append(ok.cpu())
    finally:
        model.train(was)
    dist_all = torch.cat(dist).numpy()
    ok_all = torch.cat(clean).numpy()
    mine = dist_all[ok_all]
    q = (lambda p: float(np.quantile(mine, p, method="lower" if np.isinf(mine).any() else "linear"))
         if len(mine) else NAN)
    return {"protocol": EVAL_PROTOCOL, "norm": norm, "method": method, "steps": steps,
            "predict": _rule_name(predict), "n": int(len(dist_all)), "clean_correct": int(ok_all.sum()),
            "clean_outcome": encode_outcomes(ok_all), "distances": [float(v) for v in dist_all],
            "found": int(np.isfinite(mine).sum()), "median": q(0.5), "q1": q(0.25), "q3": q(0.75)}


def distance_values(distances: dict) -> np.ndarray:
    """The per-image distances of a :func:`min_norm_distances` result as floats, also from a stored result,
    where JSON kept an infinite distance (the attack found no adversarial example) as null: null is ``inf``."""
    return np.array([math.inf if v is None else float(v) for v in distances["distances"]], dtype=float)


def robust_acc_at(distances: dict, eps: float) -> float:
    """Robust accuracy at budget ``eps`` implied by :func:`min_norm_distances` (or a stored one): the fraction
    of all images correct clean whose smallest perturbation found is larger than ``eps`` (an upper bound)."""
    d = distance_values(distances)
    ok = decode_outcomes(distances["clean_outcome"], distances["n"])
    return float((ok & (d > eps)).sum() / max(len(d), 1))


# --------------------------------------------------------------------------- sanity checks


class Transfer(_TAAttack):
    """A transfer attack: adversarial images made by ``source`` (an attack on a surrogate model), shown to
    ``model``. ``Transfer(model, torchattacks.PGD(surrogate, eps=0.1))``; composes with ``MultiAttack``."""

    def __init__(self, model: nn.Module, source: Attack):
        super().__init__("Transfer", model)
        self.source = source

    def forward(self, images, labels=None):
        return self.source(images, labels).detach()


SANITY_ROLES = {"single_step": "fgsm", "iterative": "pgd", "iterative_double": "pgd_2x",
                "black_box": "square", "transfer": "transfer"}


def sanity(report: Mapping) -> list[dict]:
    """The gradient-masking checks of Carlini et al. (2019, "On evaluating adversarial robustness", Sec. 5).

    The report (JSON-able; :func:`run_sanity` builds one)::

        {"evaluation": evaluate() result on one image set with some of the attacks named
                       "fgsm" (single step), "pgd" (iterative, n steps), "pgd_2x" (2n steps),
                       "square" (black box), "transfer" (PGD on an undefended surrogate),
         "roles": {...},            # optional: other names, e.g. {"iterative": "apgd-ce"}
         "curve": robustness_curve() result reaching a large epsilon,        # optional
         "level": 0.95,             # optional: tests at 1 - level
         "zero_tolerance": 0.01}    # optional: "about 0" for the large-epsilon check

    "A is stronger than B" means A leaves fewer images robust and an exact McNemar test of the paired
    per-image outcomes has p < 1 - level (so attack noise is not flagged). The checks:

    1. ``iterative-vs-single-step``: PGD no weaker than FGSM.
    2. ``more-iterations``: PGD with 2n steps does not change the robust images beyond the noise.
    3. ``large-epsilon``: at the curve's largest epsilon the worst-case robust accuracy is about 0 (the
       lower end of its exact interval is at most ``zero_tolerance``).
    4. ``black-box-vs-white-box``: Square no stronger than the worst case of the white-box attacks run.
    5. ``transfer-vs-white-box``: the transfer attack no stronger than the white-box worst case.

    Returns one ``{"name", "passed", "detail"}`` per check; ``passed`` is ``None`` (skipped) where the
    report lacks what the check needs. A failed check's detail says it is a sign of gradient masking.
    """
    level = float(report.get("level", 0.95))
    alpha = 1 - level
    tol = float(report.get("zero_tolerance", 0.01))
    roles = {**SANITY_ROLES, **report.get("roles", {})}
    ev = report.get("evaluation")
    entries = ev["attacks"] if ev else {}
    n = ev["n"] if ev else 0
    have = lambda role: roles[role] in entries  # noqa: E731
    outc = lambda role: decode_outcomes(entries[roles[role]]["outcome"], n)  # noqa: E731
    checks = []

    def stronger(weak: np.ndarray, strong: np.ndarray) -> tuple[bool, dict]:
        """Whether ``strong`` leaves significantly fewer images robust than ``weak``."""
        t = mcnemar(weak, strong)  # b: robust under `weak`, broken by `strong`; c: the reverse
        return t["b"] > t["c"] and t["p"] < alpha, t

    # 1
    if have("single_step") and have("iterative"):
        fail, t = stronger(outc("iterative"), outc("single_step"))
        ri, rs = int(outc("iterative").sum()), int(outc("single_step").sum())
        detail = (f"{roles['iterative']} leaves {ri} robust, {roles['single_step']} {rs} of {n} "
                  f"(McNemar b={t['b']}, c={t['c']}, p={t['p']:.3g})")
        checks.append(_check("iterative-vs-single-step", fail, "the single-step attack is stronger than the "
                             "iterative one", detail))
    else:
        checks.append(_skip("iterative-vs-single-step", roles, ("single_step", "iterative")))
    # 2
    if have("iterative") and have("iterative_double"):
        t = mcnemar(outc("iterative"), outc("iterative_double"))
        fail = t["p"] < alpha
        detail = (f"{roles['iterative']} {int(outc('iterative').sum())} robust, {roles['iterative_double']} "
                  f"{int(outc('iterative_double').sum())} of {n} (McNemar b={t['b']}, c={t['c']}, p={t['p']:.3g})")
        checks.append(_check("more-iterations", fail, "twice the iterations changes robust accuracy beyond the "
                             "noise, the attack has not converged", detail))
    else:
        checks.append(_skip("more-iterations", roles, ("iterative", "iterative_double")))
    # 3
    curve = report.get("curve")
    if curve:
        k, cn, eps = curve["robust"]["worst_case"][-1], curve["n"], curve["eps"][-1]
        lo, hi = proportion_interval(k, cn, level, "exact")
        fail = lo > tol
        detail = (f"at eps={eps:g} the worst case leaves {k} of {cn} robust "
                  f"({k / max(cn, 1):.1%}, exact interval {lo:.3f}-{hi:.3f})")
        checks.append(_check("large-epsilon", fail, "accuracy does not reach about 0 at a large epsilon", detail))
    else:
        checks.append({"name": "large-epsilon", "passed": None, "detail": "skipped: the report has no curve"})
    # 4, 5
    white = [r for r in ("single_step", "iterative", "iterative_double") if have(r)]
    for name, role, what in (("black-box-vs-white-box", "black_box", "black-box"),
                             ("transfer-vs-white-box", "transfer", "transfer")):
        if not (have(role) and white):
            checks.append(_skip(name, roles, (role, "a white-box attack")))
            continue
        wb = worst_case([outc(r) for r in white])
        fail, t = stronger(wb, outc(role))
        detail = (f"{roles[role]} leaves {int(outc(role).sum())} robust, the white-box worst case "
                  f"({', '.join(roles[r] for r in white)}) {int(wb.sum())} of {n} "
                  f"(McNemar b={t['b']}, c={t['c']}, p={t['p']:.3g})")
        checks.append(_check(name, fail, f"the {what} attack is stronger than the white-box attacks", detail))
    return checks


_MASKING = "a sign of gradient masking (Carlini et al. 2019)"


def _check(name: str, fail: bool, why: str, detail: str) -> dict:
    """One check's entry; a failure says what failed and that it is a sign of gradient masking."""
    return {"name": name, "passed": not fail,
            "detail": (f"{name} failed: {why}, {_MASKING}: " if fail else "") + detail}


def _skip(name: str, roles: Mapping[str, str], needs: Sequence[str]) -> dict:
    what = ", ".join(f"{roles.get(r, r)!r}" for r in needs)
    return {"name": name, "passed": None, "detail": f"skipped: the report lacks {what}"}


def run_sanity(
    model: nn.Module,
    data: ImageData,
    eps: float,
    surrogate: nn.Module | None = None,
    seed: int = 0,
    steps: int = 10,
    square_queries: int = 1000,
    curve_eps: Sequence[float] | None = None,
    predict: Predict | None = None,
    level: float = 0.95,
    batch_size: int = 250,
    device=None,
    progress: bool | None = None,
) -> dict:
    """Build a :func:`sanity` report for ``model`` at L-infinity budget ``eps`` and run the checks.

    Attacks (torchattacks): ``fgsm``; ``pgd`` (``steps``, step eps/4, random start) and ``pgd_2x``
    (2 ``steps``); ``square`` (``square_queries`` queries, ``seed``); with a ``surrogate`` (an undefended
    network on the same task) ``transfer``, PGD on the surrogate shown to ``model``. The curve is PGD
    (``steps``) over ``curve_eps`` (default eps, 4 eps and 1.0), stopping at 0. The global torch seed is
    set to ``seed`` first (and torchattacks' Square sets it to its own seed again). Returns ``{"report": the report, "checks": sanity(report)}``.
    """
    torch.manual_seed(seed)
    pgd = lambda m, e, k: torchattacks.PGD(m, eps=e, alpha=e / 4, steps=k, random_start=True)  # noqa: E731
    atks = {"fgsm": torchattacks.FGSM(model, eps=eps), "pgd": pgd(model, eps, steps),
            "pgd_2x": pgd(model, eps, 2 * steps),
            "square": torchattacks.Square(model, eps=eps, n_queries=square_queries, seed=seed)}
    if surrogate is not None:
        surrogate.eval()
        atks["transfer"] = Transfer(model, pgd(surrogate, eps, steps))
    kw = dict(predict=predict, batch_size=batch_size, device=device, progress=progress)
    ev = evaluate(model, data, atks, **kw)
    grid = curve_eps if curve_eps is not None else sorted({eps, min(1.0, 4 * eps), 1.0})
    curve = robustness_curve(model, data, lambda m, e: {"pgd": pgd(m, e, steps)}, grid, level=level, **kw)
    report = {"evaluation": ev, "curve": curve, "level": level}
    return {"report": report, "checks": sanity(report)}


# --------------------------------------------------------------------------- the verdict


WORDS = ("reproduced", "reproduced in sign only", "not reproduced", "inconclusive", "better", "worse",
         "no detectable difference", "not run at a converged protocol")


@dataclass(frozen=True)
class Verdict:
    """What :func:`verdict` decided, and the numbers it decided on."""

    word: str
    effect: float
    interval: tuple[float, float]
    p: float
    n: int
    design: str
    mde: float | None
    note: str

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{self.word} (effect {self.effect:+.4g}, interval {lo:+.4g} to {hi:+.4g}, p = {self.p:.3g}, n = {self.n})"


def _values(x, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence of per-seed values, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} holds NaN or infinite values: expected finite per-seed metric values")
    return arr


def _t_design(a, b, paired: bool, level: float):
    """effect, (lo, hi), p, se, df, n, design for the seed designs."""
    if b is None:
        d = _values(a, "a (the per-seed differences A - B)")
        k, design = len(d), f"paired over {len(d)} seeds (per-seed differences given): t-interval"
    else:
        a_, b_ = _values(a, "a (arm A's per-seed values)"), _values(b, "b (arm B's per-seed values)")
        if paired:
            if len(a_) != len(b_):
                raise ValueError(f"paired arms share seeds, so a and b need equal lengths, got {len(a_)} and "
                                 f"{len(b_)} (pass paired=False for independent seeds)")
            d, k = a_ - b_, len(a_)
            design = f"paired over {k} seeds (the arms share seeds): t-interval of the per-seed differences"
        else:
            k = min(len(a_), len(b_))
            design = f"unpaired, {len(a_)} and {len(b_)} seeds: Welch t-interval"
            effect = float(a_.mean() - b_.mean())
            if len(a_) < 2 or len(b_) < 2:
                return effect, (NAN, NAN), NAN, NAN, NAN, k, design
            va, vb = a_.var(ddof=1) / len(a_), b_.var(ddof=1) / len(b_)
            se = math.sqrt(va + vb)
            df = (va + vb) ** 2 / (va**2 / (len(a_) - 1) + vb**2 / (len(b_) - 1)) if se > 0 else len(a_) + len(b_) - 2
            return (effect, *_t_interval(effect, se, df, level), se, df, k, design)
    effect = float(d.mean())
    if len(d) < 2:
        return effect, (NAN, NAN), NAN, NAN, NAN, k, design
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    return (effect, *_t_interval(effect, se, len(d) - 1, level), se, len(d) - 1, k, design)


def _t_interval(effect: float, se: float, df: float, level: float):
    if se == 0:
        return (effect, effect), (1.0 if effect == 0 else 0.0)
    q = float(stats.t.ppf(0.5 + level / 2, df))
    p = float(2 * stats.t.sf(abs(effect / se), df))
    return (effect - q * se, effect + q * se), p


def _paired_proportions(a, b, level: float):
    """Newcombe's (1998) hybrid score interval for a difference of paired proportions (his method 10),
    built from the Wilson intervals of the two proportions and the phi correlation of the pairs."""
    a, b = _as_outcome(a), _as_outcome(b)
    if len(a) == 0:
        raise ValueError("per-image outcomes must not be empty")
    if len(a) != len(b):
        raise ValueError(f"per-image outcomes of the two arms must be on the same images: {len(a)} vs {len(b)}")
    n = len(a)
    e, f, g, h = (int(v) for v in ((a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()))
    p1, p2 = (e + f) / n, (e + g) / n
    l1, u1 = proportion_interval(e + f, n, level)
    l2, u2 = proportion_interval(e + g, n, level)
    den = (e + f) * (g + h) * (e + g) * (f + h)
    phi = (e * h - f * g) / math.sqrt(den) if den else 0.0
    d = p1 - p2
    lo = d - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    hi = d + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    p = mcnemar(a, b)["p"]
    return d, (max(lo, -1.0), min(hi, 1.0)), p, n


def verdict(a, b=None, *, converged: bool, published: float | None = None, margin: float | None = None,
            paired: bool = True, images: bool = False, level: float = 0.95, min_seeds: int = 3,
            higher_is_better: bool = True, power: float = 0.8) -> Verdict:
    """The book's one verdict rule.

    The effect is A - B (``b=None``: ``a`` holds the per-seed differences A - B). Its interval:

    * seeds, paired (the arms share seeds; the default): the ``level`` t-interval of the per-seed differences;
    * seeds, ``paired=False``: Welch's t-interval of the difference of means;
    * ``images=True``: ``a`` and ``b`` are per-image outcomes (correct or not) of ONE network per arm on the
      same images; the effect is the difference of the two accuracies, its interval Newcombe's hybrid score
      interval for paired proportions (1998, method 10), ``p`` the exact McNemar test. The images are the
      sample, not the training: it says nothing about another training run.

    The word, in this order:

    1. ``converged=False`` (smoke or quick profiles, unconverged training): "not run at a converged
       protocol", whatever the numbers.
    2. Fewer than ``min_seeds`` seeds in an arm (seed designs): "inconclusive" (underpowered).
    3. Against a published effect (``published``, the paper's A - B, same sign convention):
       "reproduced" when the interval lies on the paper's side of 0 and contains the published effect;
       "reproduced in sign only" when it lies on the paper's side of 0 but excludes the published effect;
       "not reproduced" when it excludes the published effect and is not entirely on the paper's side of 0;
       otherwise (it contains both 0 and the published effect) "inconclusive".
    4. Against a claim of no difference, with a ``margin`` stated before the run: "reproduced" when the
       interval lies inside (-margin, margin); "not reproduced" when it excludes 0; else "inconclusive".
    5. Otherwise (two arms, no published effect): "better" or "worse" for A when the interval excludes 0
       (with ``higher_is_better``, a positive effect is better; else a negative one), else
       "no detectable difference".

    The word follows the interval; ``p`` is reported beside it (for images the McNemar p and the Newcombe
    interval can disagree at the edge). The margin test uses the same ``level`` interval, so a 95 % interval
    inside (-margin, margin) is two one-sided tests at 2.5 % each (conservative).

    ``mde``, the smallest effect this design could detect, is (q(1 - (1 - level)/2) + q(power)) x SE with
    q the t quantile on the seeds' degrees of freedom (normal for images; SE = interval half-width / z),
    i.e. about 2.8 standard errors for a 95 % interval and 80 % power; ``None`` where no SE exists.

    Raises ValueError for ``published`` and ``margin`` together, a published effect of 0 (use a margin),
    a margin <= 0, empty inputs, NaN, or unequal lengths of paired arms.
    """
    if published is not None and margin is not None:
        raise ValueError("give either published (an effect to reproduce) or margin (a claim of no difference), "
                         "not both")
    if published is not None and (not math.isfinite(published) or published == 0):
        raise ValueError(f"published must be a finite, non-zero effect, got {published} (for a claim of no "
                         "difference pass margin=)")
    if margin is not None and not (margin > 0 and math.isfinite(margin)):
        raise ValueError(f"margin must be a finite number > 0, got {margin}")
    if not 0 < level < 1 or not 0 < power < 1:
        raise ValueError(f"level and power must be in (0, 1), got {level} and {power}")
    if images:
        if b is None:
            raise ValueError("images=True needs both arms' per-image outcomes, a and b")
        effect, (lo, hi), p, n = _paired_proportions(a, b, level)
        z = float(stats.norm.ppf(0.5 + level / 2))
        se = (hi - lo) / (2 * z)
        mde = (z + float(stats.norm.ppf(power))) * se
        design = (f"one network per arm: the images are the sample, not the training ({n} images, paired: "
                  "Newcombe interval, exact McNemar test)")
        k = None
    else:
        if b is None and not paired:
            raise ValueError("b=None means a holds paired per-seed differences; paired=False needs both arms")
        effect, (lo, hi), p, se, df, k, design = _t_design(a, b, paired, level)
        n = k
        mde = (float(stats.t.ppf(0.5 + level / 2, df)) + float(stats.t.ppf(power, df))) * se \
            if math.isfinite(se) else None
    interval = (float(lo), float(hi))

    def out(word: str, note: str) -> Verdict:
        return Verdict(word, float(effect), interval, float(p), int(n), design, mde, note)

    if not converged:
        return out("not run at a converged protocol",
                   "a smoke or quick profile, or training that did not converge: the numbers are shown, no verdict")
    if k is not None and (k < min_seeds or not math.isfinite(lo)):
        return out("inconclusive", f"underpowered: {k} seeds per arm, a verdict needs at least {max(min_seeds, 2)}")
    excludes0 = lo > 0 or hi < 0
    if published is not None:
        side = lo > 0 if published > 0 else hi < 0
        contains = lo <= published <= hi
        if side and contains:
            return out("reproduced", f"the interval is on the paper's side of 0 and contains its {published:+.4g}")
        if side:
            return out("reproduced in sign only", f"the paper's sign, but the interval excludes its {published:+.4g}")
        if not contains:
            return out("not reproduced", f"the interval excludes the paper's {published:+.4g} and is not on its "
                                         "side of 0")
        return out("inconclusive", f"the interval contains both 0 and the paper's {published:+.4g}; the design "
                                   f"could detect about {mde:.3g}" if mde is not None else "")
    if margin is not None:
        if -margin < lo and hi < margin:
            return out("reproduced", f"the interval lies inside the margin (-{margin:g}, {margin:g})")
        if excludes0:
            return out("not reproduced", "the interval excludes 0: a difference")
        return out("inconclusive", f"the interval contains 0 but reaches beyond the margin {margin:g}")
    if excludes0:
        good = (lo > 0) == higher_is_better
        return out("better" if good else "worse",
                   f"A {'better' if good else 'worse'} than B ({'higher' if higher_is_better else 'lower'} is better)")
    return out("no detectable difference",
               f"the interval contains 0; the design could detect about {mde:.3g}" if mde is not None else
               "the interval contains 0")
