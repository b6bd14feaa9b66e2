"""The model zoo: trained networks kept as safetensors files, loaded by name with one call.

Its one job: store a trained network once, with what identifies it and how to rebuild it, and give it back
unchanged, so that a new attack or measurement never needs a retrain.

Layout (root: ``$SYMACT_ZOO``, else ``zoo/`` at the repository root)::

    zoo/<chapter>/<experiment>/<key>.safetensors   float32 weights (metadata: fingerprint, config hash)
    zoo/<chapter>/<experiment>/<key>.json          the entry: fingerprint, config and its hash, training
                                                   history, builder, provenance, how to retrain it

``name`` is ``"<chapter>/<experiment>"``; ``key`` tells the networks of one experiment apart (``"seed0"``,
or a unit key such as ``"relu-seed0"``: letters, digits and ``_.=+-``, not first). A network larger than
``max_mb`` (default 10 MB, e.g. a ResNet-18) keeps its entry with ``"weights": null`` and no weights file;
it is retrained by the device script its entry's ``retrain`` names.

Example:
    >>> import symact.zoo
    >>> model = symact.zoo.load("dome/table2-lenet-mnist-pdome", seed=0)        # doctest: +SKIP
    >>> symact.zoo.save("dome/table2-lenet-mnist-pdome", model, key="seed0",   # doctest: +SKIP
    ...                 builder="symact.zoo:build",
    ...                 builder_kwargs={"model": "LeNet5", "variant": "mnist", "act": "pdome"},
    ...                 retrain="python -m symact run dome/table2 --profile paper")

The fingerprint (:func:`fingerprint`) is the hash :mod:`symact.results` stores with parts computed on a
network, so a stored result and a zoo entry can be matched.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

import symact
from symact.results import REPO_ROOT, _git_commit, _jsonable
from symact.results import config_hash as _config_hash

__all__ = [
    "MAX_MB",
    "MAX_TOTAL_MB",
    "EntryNotFound",
    "FingerprintMismatch",
    "NoWeights",
    "ZooError",
    "build",
    "entries",
    "entry",
    "exists",
    "fingerprint",
    "load",
    "load_state_dict",
    "root",
    "save",
    "total_size",
]

MAX_MB = 10.0         # the largest network whose weights git keeps (MB = 10**6 bytes of float32 weights)
MAX_TOTAL_MB = 300.0  # the weights git keeps in all; save() warns beyond it
FORMAT = 1

_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]*")
_FLOATS = (torch.float64, torch.float16, torch.bfloat16)


class ZooError(Exception):
    """A zoo entry cannot be saved, found, rebuilt or trusted."""


class EntryNotFound(ZooError, LookupError):
    """No entry under this name and key; the message lists the keys stored for the name."""


class NoWeights(ZooError):
    """The entry exists but keeps no weights (a network over the size limit); the message says how to retrain it."""


class FingerprintMismatch(ZooError, ValueError):
    """The stored weights are not the network the entry describes."""


# ----------------------------------------------------------------------------------------------- paths


def root() -> Path:
    """The zoo's root: ``$SYMACT_ZOO``, else ``zoo/`` at the repository root."""
    env = os.environ.get("SYMACT_ZOO")
    return Path(env) if env else REPO_ROOT / "zoo"


def _check_name(name: str) -> tuple[str, str]:
    parts = name.split("/") if isinstance(name, str) else []
    if len(parts) != 2 or not all(_NAME_PART.fullmatch(p) for p in parts):
        raise ValueError(f"a zoo name is '<chapter>/<experiment>' (letters, digits and '_.=+-', not first), "
                         f"got {name!r}")
    return parts[0], parts[1]


def _key(key: str | None, seed: int | None) -> str:
    if seed is not None:
        if key not in (None, "seed0", f"seed{seed}"):
            raise ValueError(f"give either key ({key!r}) or seed ({seed}), not both")
        key = f"seed{int(seed)}"
    if key is None:
        key = "seed0"
    if not isinstance(key, str) or not _NAME_PART.fullmatch(key):
        raise ValueError(f"a zoo key is letters, digits and '_.=+-' (not first), got {key!r}")
    return key


def _paths(name: str, key: str) -> tuple[Path, Path]:
    chapter, exp = _check_name(name)
    folder = root() / chapter / exp
    return folder / f"{key}.json", folder / f"{key}.safetensors"


# ----------------------------------------------------------------------------------------------- fingerprint


def fingerprint(module_or_state_dict: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """sha256 (first 16 hex digits) of a state dict's names, dtypes and values, in sorted name order.

    The same hash as ``symact.results._fingerprint``, so fingerprints stored in results stay comparable.
    Accepts a module (its ``state_dict()``) or a mapping of names to tensors.
    """
    from symact.store.provenance import fingerprint as store_fingerprint  # one hash for the store and the zoo

    return store_fingerprint(module_or_state_dict)


# ----------------------------------------------------------------------------------------------- builders


def _import(path: str) -> Any:
    """The object at ``"module:qualified.name"``."""
    if not isinstance(path, str) or path.count(":") != 1:
        raise ValueError(f"expected 'module:callable', got {path!r}")
    mod, _, qual = path.partition(":")
    obj = importlib.import_module(mod)
    for attr in qual.split("."):
        obj = getattr(obj, attr)
    return obj


def _builder_path(builder: str | Callable) -> str:
    if isinstance(builder, str):
        _import(builder)  # fail now, not when someone loads it
        return builder
    mod, qual = getattr(builder, "__module__", None), getattr(builder, "__qualname__", "")
    if not mod or not qual or "<" in qual or mod == "__main__":
        raise ValueError(f"builder {builder!r} cannot be imported back by name (a lambda, a local function or "
                         "one in __main__): give a module-level callable or its 'module:callable' path")
    path = f"{mod}:{qual}"
    if _import(path) is not builder:
        raise ValueError(f"builder {builder!r} is not importable as {path!r}")
    return path


def _activation(spec: Any) -> Any:
    """An activation spec made into what :mod:`symact.models` takes (see :func:`build`)."""
    if spec is None or isinstance(spec, str) and ":" not in spec:
        return spec  # None, "same", or a registry name (models make it a per-channel factory)
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise ValueError(f"an activation spec is None, a name, 'module:callable', or a dict with 'name' and "
                         f"keyword arguments; got {spec!r}")
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "channels")}
    name = spec["name"]
    if ":" in name:
        fn, channels = _import(name), spec.get("channels", False)
        return lambda c: fn(channels=c, **kwargs) if channels else fn(**kwargs)
    from symact.activations import create, factory

    if spec.get("channels", True):
        return factory(name, **kwargs)
    create(name, **kwargs)  # fail now, not deep inside a model
    return lambda c: create(name, **kwargs)


_UNSET = object()


def build(model: str, activation: Any = _UNSET, **kwargs) -> nn.Module:
    """A network from a JSON-able spec: ``symact.models.<model>(**kwargs)`` (or ``model`` = ``"module:callable"``).

    The builder zoo entries name by default (``"symact.zoo:build"``, with ``builder_kwargs`` as its keyword
    arguments). ``activation`` is passed as ``act``; ``act`` and every keyword ending in ``_act`` (``fc_act``,
    ``out_act``, ``embed_act``) are activation specs:

    - ``None``, ``"same"``, or a registry name (``"relu"``, ``"pdome"``; per-channel ones get one parameter set
      per channel, as :func:`symact.activations.factory` gives);
    - ``{"name": "sapl", **kwargs}``: ``create(name, channels=c, **kwargs)``; with ``"channels": false``
      one parameter set for the layer, ``create(name, **kwargs)``;
    - ``"module:callable"`` or ``{"name": "module:callable", **kwargs}``: ``callable(**kwargs)`` (with
      ``"channels": true``, ``callable(channels=c, **kwargs)``), e.g. ``"symact.experiments.saf:LogRBF"``.

    Lists stand for tuples (JSON has no tuples). The global random state is not changed.

    Example:
        >>> net = build("LeNet5", "pdome", variant="mnist", num_classes=10)
        >>> sapl = build("LeNet5", {"name": "sapl", "channels": False}, variant="cifar", batchnorm="all")
    """
    if activation is not _UNSET:  # None too: no activation (the SAF paper's plain network)
        if "act" in kwargs:
            raise TypeError("give the activation as activation= or act=, not both")
        kwargs["act"] = activation
    kwargs = {k: _activation(v) if (k == "act" or k.endswith("_act")) else v for k, v in kwargs.items()}
    if ":" in model:
        cls = _import(model)
    else:
        from symact import models

        cls = getattr(models, model, None)
        if not isinstance(cls, type) or not issubclass(cls, nn.Module):
            raise ValueError(f"unknown model {model!r}; symact.models has {', '.join(models.__all__)} "
                             "(or give 'module:callable')")
    with torch.random.fork_rng(devices=[]):
        return cls(**kwargs)


def _rebuild(e: dict) -> nn.Module:
    where = f"zoo entry {e['name']}/{e['key']}"
    if not e.get("builder"):
        raise ZooError(f"{where} names no builder: pass load(..., model=...) with a network of its architecture")
    try:
        fn = _import(e["builder"])
    except (ImportError, AttributeError, ValueError) as err:
        raise ZooError(f"{where}: its builder {e['builder']!r} cannot be imported ({err}); pass "
                       "load(..., model=...) with a network of its architecture") from err
    with torch.random.fork_rng(devices=[]):  # loading a network leaves the caller's random stream alone
        model = fn(**(e.get("builder_kwargs") or {}))
    if not isinstance(model, nn.Module):
        raise ZooError(f"{where}: its builder {e['builder']!r} returned {type(model).__name__}, not an nn.Module")
    return model


# ----------------------------------------------------------------------------------------------- save


def _weights(model: nn.Module | Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict as stored: CPU, contiguous, unshared copies; float64/float16/bfloat16 made float32
    (the originals' dtypes returned by name); float32 and non-float tensors (integer buffers such as
    BatchNorm's ``num_batches_tracked``, bool masks) kept as they are."""
    sd = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    out, converted = {}, {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise ZooError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor: safetensors keeps "
                           "tensors only")
        v = v.detach().to("cpu")
        if v.dtype in _FLOATS:
            converted[k] = str(v.dtype).removeprefix("torch.")
            v = v.to(torch.float32)
        # a copy of its own: safetensors refuses tensors that share memory (tied weights) or are not contiguous
        out[k] = v.clone(memory_format=torch.contiguous_format)
    return out, converted


def _nbytes(tensors: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(
    name: str,
    model: nn.Module | Mapping[str, torch.Tensor],
    *,
    key: str = "seed0",
    config: Any = None,
    config_hash: str | None = None,
    history: Any = None,
    builder: str | Callable | None = None,
    builder_kwargs: Mapping | None = None,
    retrain: str | None = None,
    profile: str | None = None,
    max_mb: float = MAX_MB,
) -> Path:
    """Keep ``model`` (a module or a state dict) in the zoo as ``<name>/<key>``; returns the entry's JSON path.

    Weights: float32 (float64, float16 and bfloat16 tensors are converted, and the entry lists them under
    ``converted``; non-float tensors, such as BatchNorm's ``num_batches_tracked``, are kept as they are),
    written with safetensors through a temporary file, then the JSON entry the same way (a JSON file marks
    a complete entry). A network whose weights exceed ``max_mb`` (MB = 10**6 bytes) keeps its entry with
    ``"weights": null`` and no weights file.

    Args:
        config: the training config (a dataclass or anything JSON-able); ``config_hash`` defaults to
            :func:`symact.results.config_hash` of it.
        history: the training history (per-epoch losses and accuracies), made JSON-able.
        builder: ``"module:callable"`` (or a module-level callable) that, called with ``builder_kwargs``,
            rebuilds the architecture; defaults to ``"symact.zoo:build"`` when ``builder_kwargs`` is given.
            It is tried now: a network whose state-dict names and shapes differ raises before anything is
            written.
        retrain: how to train it again, e.g. ``"python -m symact run sapl/robustness --profile paper"``.
        profile: the profile of the experiment that trained it (``"quick"``, ``"paper"``), if any.

    The entry also holds the fingerprint (of the weights as they load back), their size in bytes, the
    symact and torch versions, the date and the git commit.
    """
    key = _key(key, None)
    json_path, st_path = _paths(name, key)
    tensors, converted = _weights(model)
    if builder is None and builder_kwargs is not None:
        builder = "symact.zoo:build"
    builder_path = _builder_path(builder) if builder is not None else None
    kwargs = _jsonable(dict(builder_kwargs or {}))
    config_json, history_json = _jsonable(config), _jsonable(history)
    for what, value in (("builder_kwargs", kwargs), ("config", config_json), ("history", history_json)):
        try:  # before anything is written
            same = json.loads(json.dumps(value)) == value
        except (TypeError, ValueError):
            same = False
        if not same:
            raise ValueError(f"{what} must be JSON-able (str keys, numbers, strings, lists, dicts; a config may be "
                             f"a dataclass of those), got {value!r}")
    if builder_path is not None:
        rebuilt = _rebuild({"name": name, "key": key, "builder": builder_path, "builder_kwargs": kwargs})
        want = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
        have = {k: tuple(v.shape) for k, v in tensors.items()}
        if want != have:
            diff = sorted(set(want.items()) ^ set(have.items()))[:6]
            raise ZooError(f"builder {builder_path}(**{kwargs}) does not rebuild this network: state dicts "
                           f"differ in names or shapes, e.g. {diff}")
    fp = fingerprint(tensors)
    size = _nbytes(tensors)
    keep = size <= max_mb * 1e6
    if keep:
        from safetensors.torch import load_file, save_file

        meta = {"fingerprint": fp, "config_hash": str(config_hash or ""), "name": name, "key": key,
                "format": str(FORMAT)}
        _atomic_write(st_path, lambda tmp: save_file(tensors, tmp, metadata=meta))
        back = fingerprint(load_file(st_path))
        if back != fp:  # never expected: safetensors stores bytes as they are
            raise FingerprintMismatch(f"{st_path} reads back as {back}, not {fp}")
        total = total_size()
        if total > MAX_TOTAL_MB * 1e6:
            warnings.warn(f"the zoo's weights now take {total / 1e6:.0f} MB, over the {MAX_TOTAL_MB:.0f} MB git "
                          "keeps in all (zoo/README.md)", stacklevel=2)
    else:
        st_path.unlink(missing_ok=True)
    if config_hash is None and config is not None:
        config_hash = _config_hash(config)
    e = {
        "format": FORMAT,
        "name": name,
        "key": key,
        "fingerprint": fp,
        "config_hash": config_hash,
        "config": config_json,
        "history": history_json,
        "builder": builder_path,
        "builder_kwargs": kwargs,
        "weights": st_path.name if keep else None,
        "size_bytes": size,
        "file_bytes": st_path.stat().st_size if keep else None,
        "max_mb": max_mb,
        "converted": converted,
        "retrain": retrain,
        "profile": profile,
        "symact_version": symact.__version__,
        "torch_version": torch.__version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
    }
    text = json.dumps(e, indent=1, sort_keys=True) + "\n"
    _atomic_write(json_path, lambda tmp: Path(tmp).write_text(text))
    return json_path


# ----------------------------------------------------------------------------------------------- read


def _keys(name: str) -> list[str]:
    chapter, exp = _check_name(name)
    return sorted(p.stem for p in (root() / chapter / exp).glob("*.json"))


def entry(name: str, key: str = "seed0", *, seed: int | None = None) -> dict:
    """The JSON entry of ``<name>/<key>`` (``seed=k`` is ``key=f"seed{k}"``).

    Raises:
        EntryNotFound: no such entry; the message lists the keys stored for ``name``.
    """
    key = _key(key, seed)
    json_path, _ = _paths(name, key)
    try:
        e = json.loads(json_path.read_text())
    except FileNotFoundError:
        keys = _keys(name)
        have = f"keys stored for {name}: {', '.join(keys)}" if keys else f"nothing is stored under {name}"
        raise EntryNotFound(f"no zoo entry {name}/{key} in {root()}; {have}") from None
    except json.JSONDecodeError as err:
        raise ZooError(f"zoo entry {json_path} is not valid JSON ({err})") from err
    e["name"], e["key"] = name, key  # where it lies, should the folder have been moved
    return e


def _read_weights(e: dict) -> dict[str, torch.Tensor]:
    if not e.get("weights"):
        how = e.get("retrain") or "its entry does not say how; train it again with the experiment it comes from"
        raise NoWeights(f"zoo entry {e['name']}/{e['key']} keeps no weights (a network of "
                        f"{e['size_bytes'] / 1e6:.1f} MB, over the {e.get('max_mb', MAX_MB):g} MB git keeps): "
                        f"retrain it: {how}")
    from safetensors.torch import load_file

    _, st_path = _paths(e["name"], e["key"])
    if not st_path.exists():
        raise NoWeights(f"zoo entry {e['name']}/{e['key']} names weights {st_path}, which are missing; retrain "
                        f"it: {e.get('retrain') or 'see the experiment it comes from'}")
    tensors = load_file(st_path)
    found = fingerprint(tensors)
    if found != e["fingerprint"]:
        raise FingerprintMismatch(f"{st_path} holds a network with fingerprint {found}, but its entry says "
                                  f"{e['fingerprint']}: the weights were changed or replaced; save it again or "
                                  "retrain it")
    return tensors


def load_state_dict(name: str, key: str = "seed0", *, seed: int | None = None) -> dict[str, torch.Tensor]:
    """The stored tensors of ``<name>/<key>`` (on the CPU), their fingerprint checked against the entry."""
    return _read_weights(entry(name, key, seed=seed))


def load(
    name: str,
    key: str = "seed0",
    *,
    seed: int | None = None,
    device: str | torch.device | None = None,
    model: nn.Module | None = None,
    config_hash: str | None = None,
) -> nn.Module:
    """The network stored as ``<name>/<key>``, in eval mode, on ``device`` (default: the CPU).

    ``seed=k`` is shorthand for ``key=f"seed{k}"``. The network is rebuilt with the entry's builder (the
    global random state is left as it was), or ``model`` is loaded into (in place) when given; the weights
    are loaded strictly, after their fingerprint is checked against the entry. With ``config_hash``, an
    entry trained under another config is refused.

    Raises:
        EntryNotFound: no such entry (the message lists the stored keys).
        NoWeights: the entry keeps no weights (the message says how to retrain it).
        FingerprintMismatch: the weights are not those the entry describes.
        ZooError: no builder, or one that cannot be imported, and no ``model``; a stale config.
    """
    e = entry(name, key, seed=seed)
    if config_hash is not None and e.get("config_hash") != config_hash:
        raise ZooError(f"zoo entry {e['name']}/{e['key']} was trained under config {e.get('config_hash')}, not "
                       f"{config_hash}: it is stale; retrain it: {e.get('retrain') or 'see its experiment'}")
    tensors = _read_weights(e)
    net = model if model is not None else _rebuild(e)
    net.load_state_dict(tensors, strict=True)
    if device is not None:
        from symact.device import get_device

        net = net.to(get_device(device))
    return net.eval()


def exists(name: str, key: str = "seed0", *, seed: int | None = None, config_hash: str | None = None,
           verify: bool = True) -> bool:
    """Whether ``<name>/<key>`` has an entry with its weights present and matching its fingerprint.

    ``verify=False`` checks the fingerprint in the weights file's header, not the tensors themselves
    (cheaper, blind to a changed value). With ``config_hash``, an entry of another config does not count.
    """
    try:
        e = entry(name, key, seed=seed)
    except EntryNotFound:
        return False
    if not e.get("weights") or (config_hash is not None and e.get("config_hash") != config_hash):
        return False
    if verify:
        try:
            _read_weights(e)
        except ZooError:
            return False
        return True
    from safetensors import safe_open

    _, st_path = _paths(e["name"], e["key"])
    try:
        with safe_open(st_path, framework="pt") as f:
            return (f.metadata() or {}).get("fingerprint") == e["fingerprint"]
    except Exception:  # a missing or unreadable file
        return False


def entries(chapter: str | None = None) -> list[dict]:
    """Every entry in the zoo (or in ``chapter``), sorted by name and key: the JSON entries, each with
    ``name`` and ``key``, without ``history`` and ``config`` (read those with :func:`entry`)."""
    base = root()
    if chapter is not None:
        if not _NAME_PART.fullmatch(chapter):
            raise ValueError(f"a chapter is letters, digits and '_.=+-', got {chapter!r}")
        folders = [base / chapter]
    else:
        folders = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    out = []
    for folder in folders:
        for path in sorted(folder.glob("*/*.json")):
            try:
                e = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            e = {k: v for k, v in e.items() if k not in ("history", "config")}
            e["name"], e["key"] = f"{folder.name}/{path.parent.name}", path.stem
            out.append(e)
    return sorted(out, key=lambda e: (e["name"], e["key"]))


def total_size(chapter: str | None = None) -> int:
    """Bytes of the weights files in the zoo (or in ``chapter``)."""
    base = root() if chapter is None else root() / chapter
    return sum(p.stat().st_size for p in base.glob("*/*/*.safetensors" if chapter is None else "*/*.safetensors"))
