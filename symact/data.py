"""Image data sets: MNIST, Fashion-MNIST, CIFAR-10 (CIFAR-100 where present) and derived tasks.

Images are held as ``uint8`` tensors of shape ``(N, C, H, W)`` and handed out in
batches as ``float32`` in [0, 1]; normalisation is the model's first layer
(:class:`symact.models.Normalize`), so attacks work in pixel space.

Where the data live (the *root*): the ``root`` argument, else the environment
variable ``SYMACT_DATA``, else ``~/.cache/symact/data``. Under the root the
layout is torchvision's::

    MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
    FashionMNIST/raw/...                      (same names)
    cifar-10-batches-py/{data_batch_1..5,test_batch}     (official pickles)
    CIFAR10-jpeg/cifar10-jpeg.tar.gz  or  CIFAR10-jpeg/{train,test}/<class>/*.jpg
    cifar-100-python/{train,test}

When a set is missing and ``download`` is true, torchvision's download into the
root is tried; if that fails too (no network), :class:`DataNotFoundError` names
every path looked at and how to fix it. There is never a fallback to random data.

Two offline copies differ from the originals (see ``../shared/datasets/README.md``)
and :attr:`ImageData.description` says so wherever they are used:
Fashion-MNIST with a non-official train/test split, and CIFAR-10 re-encoded as
JPEG at quality 75. The JPEG copy is stored class by class; :func:`load` returns
it in one fixed shuffled order (seed 0), so that ``head(n)`` is a mix of classes
as in the original's batches.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

__all__ = [
    "DATASETS",
    "DataNotFoundError",
    "ImageData",
    "data_root",
    "load",
    "random_crop_flip",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGITS = tuple(str(i) for i in range(10))

# sha256 of the offline Fashion-MNIST copy's test labels (../shared/datasets): its split is not the official one.
_FASHION_OFFLINE_TEST_LABELS = "59df6c6ad638dc43879f10a8c5b516aabdcef4f924ba14410bf8aec5e518b1c4"

# Per-channel mean and standard deviation of the training sets, for the models' first layer.
STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class DataNotFoundError(FileNotFoundError):
    """A data set is neither on disk nor downloadable; the message lists where we looked."""


@dataclass(frozen=True)
class ImageData:
    """A labelled image set held in memory.

    Attributes:
        x: ``uint8`` images, shape ``(N, C, H, W)``.
        y: ``int64`` labels, shape ``(N,)``.
        name: the task name given to :func:`load` (``"mnist-evenodd"``, ...).
        classes: class names, index = label.
        description: how to report the data (names the offline copy and its caveats).
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    classes: tuple[str, ...]
    description: str

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one image."""
        return tuple(self.x.shape[1:])

    @property
    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) of the base data set's training images."""
        return STATS[self.name.split("-")[0] if self.name.startswith("mnist") else self.name]

    def head(self, n: int | None) -> "ImageData":
        """The first ``n`` samples (all when ``n`` is None or larger than the set)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"n must be a positive number of samples, got {n}")
        return replace(self, x=self.x[:n], y=self.y[:n])

    def sample(self, n: int, seed: int = 0) -> "ImageData":
        """``n`` samples drawn without replacement with ``seed``."""
        if not 1 <= n <= len(self):
            raise ValueError(f"n must be in [1, {len(self)}], got {n}")
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return replace(self, x=self.x[idx], y=self.y[idx])

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """All images as float32 in [0, 1] and the labels, on ``device``."""
        return self.x.to(device).float().div_(255), self.y.to(device)

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        augment: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images, labels)`` batches, images float32 in [0, 1] on ``device``.

        Indexing whole batches (no per-sample Python work) keeps one MNIST epoch
        of LeNet-5 close to a plain PyTorch loop. ``augment`` maps a float batch
        (on the CPU) and the generator to an augmented batch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else None
        for start in range(0, n, batch_size):
            if order is None:
                xb, yb = self.x[start : start + batch_size], self.y[start : start + batch_size]
            else:
                idx = order[start : start + batch_size]
                xb, yb = self.x[idx], self.y[idx]
            xb = xb.float().div_(255)
            if augment is not None:
                xb = augment(xb, generator)
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4) -> torch.Tensor:
    """The standard CIFAR augmentation, vectorised: random ``pad``-pixel crop and horizontal flip."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    chan = torch.arange(x.shape[1])[None, :, None, None]
    out = padded[batch, chan, rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


# --------------------------------------------------------------------------- roots


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root``, else ``$SYMACT_DATA``, else ``~/.cache/symact/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("SYMACT_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "symact" / "data"


def _cache_dir() -> Path:
    env = os.environ.get("SYMACT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "symact" / "cache"


def _not_found(name: str, looked: list[Path], download_error: BaseException | None) -> DataNotFoundError:
    lines = [f"{name} was not found. Looked for:"]
    lines += [f"  - {p}" for p in looked]
    if download_error is not None:
        lines.append(f"Downloading with torchvision failed too: {type(download_error).__name__}: {download_error}")
    else:
        lines.append("Download was not attempted (download=False).")
    lines.append(
        "Fix: point the data root at a folder that holds it, with load(..., root=PATH) or "
        "SYMACT_DATA=PATH (on the project's offline machines: SYMACT_DATA=../shared/datasets), "
        "or run once with network access so torchvision can download it into the root."
    )
    return DataNotFoundError("\n".join(lines))


# --------------------------------------------------------------------------- readers


def _sha256(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as a uint8 array of its stated shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: header says {dims}, found {arr.size} bytes")
    return arr.reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for p in (folder / stem, folder / f"{stem}.gz"):
        if p.is_file():
            return p
    return None


def _load_idx_set(root: Path, folder: str, train: bool, download: bool, tv_name: str):
    raw = root / folder / "raw"
    prefix = "train" if train else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    files = [_idx_file(raw, s) for s in stems]
    err = None
    if None in files and download:
        try:
            import torchvision

            getattr(torchvision.datasets, tv_name)(str(root), train=train, download=True)
        except Exception as e:  # no network, read-only root, ...: reported below
            err = e
        files = [_idx_file(raw, s) for s in stems]
    if None in files:
        raise _not_found(f"{tv_name} ({'train' if train else 'test'})", [raw / s for s in stems], err if download else None)
    images, labels = (_read_idx(p) for p in files)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)), files[1]


def _load_cifar_pickles(folder: Path, names: list[str], label_key: str):
    xs, ys = [], []
    for n in names:
        with open(folder / n, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d[label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _decode_jpeg_copy(source: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``split`` of the JPEG copy (a tar.gz or an unpacked ImageFolder) into uint8 tensors."""
    from PIL import Image

    entries: list[tuple[str, bytes]] = []
    if source.is_file():
        with tarfile.open(source, "r:gz") as tar:
            for m in tar:
                if m.isfile() and m.name.startswith(f"{split}/") and m.name.endswith(".jpg"):
                    entries.append((m.name, tar.extractfile(m).read()))
    else:
        for p in (source / split).rglob("*.jpg"):
            entries.append((p.relative_to(source).as_posix(), p.read_bytes()))
    entries.sort()
    x = np.empty((len(entries), 32, 32, 3), dtype=np.uint8)
    y = np.empty(len(entries), dtype=np.int64)
    for i, (name, blob) in enumerate(entries):
        cls = name.split("/")[1]
        y[i] = CIFAR10_CLASSES.index(cls)
        x[i] = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)


def _load_cifar10(root: Path, train: bool, download: bool):
    official = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    jpeg_dir = root / "CIFAR10-jpeg"
    tar = jpeg_dir / "cifar10-jpeg.tar.gz"
    split = "train" if train else "test"

    def official_present() -> bool:
        return all((official / n).is_file() for n in names)

    if official_present():
        return (*_load_cifar_pickles(official, names, "labels"), "CIFAR-10")
    jpeg_source = tar if tar.is_file() else jpeg_dir if (jpeg_dir / split).is_dir() else None
    if jpeg_source is not None:
        stat = jpeg_source.stat()
        key = hashlib.sha256(f"{jpeg_source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
        cache = _cache_dir() / f"cifar10-jpeg-{split}-{key}.pt"
        if cache.is_file():
            d = torch.load(cache, weights_only=True)
            x, y = d["x"], d["y"]
        else:
            x, y = _decode_jpeg_copy(jpeg_source, split)
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")  # two processes may decode at once
            torch.save({"x": x, "y": y}, tmp)
            tmp.replace(cache)
        # the copy is stored class by class; a fixed shuffle makes head(n) a mix of classes,
        # as in the original's batches (the order is the same on every machine)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        return x[order], y[order], "CIFAR-10 (JPEG q75 copy)"
    err = None
    if download:
        try:
            import torchvision

            torchvision.datasets.CIFAR10(str(root), train=train, download=True)
        except Exception as e:
            err = e
        if official_present():
            return (*_load_cifar_pickles(official, names, "labels"), "CIFAR-10")
    looked = [official / n for n in names] + [tar, jpeg_dir / split]
    raise _not_found(f"CIFAR-10 ({split})", looked, err)


def _load_cifar100(root: Path, train: bool, download: bool):
    folder = root / "cifar-100-python"
    name = "train" if train else "test"
    err = None
    if not (folder / name).is_file() and download:
        try:
            import torchvision

            torchvision.datasets.CIFAR100(str(root), train=train, download=True)
        except Exception as e:
            err = e
    if not (folder / name).is_file():
        raise _not_found(f"CIFAR-100 ({name})", [folder / name], err)
    x, y = _load_cifar_pickles(folder, [name], "fine_labels")
    with open(folder / "meta", "rb") as f:
        classes = tuple(pickle.load(f, encoding="latin1")["fine_label_names"])
    return x, y, classes


# --------------------------------------------------------------------------- public


DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "mnist-evenodd", "mnist-mod3")


def load(name: str, train: bool = True, root: str | os.PathLike | None = None, download: bool = True) -> ImageData:
    """Load a data set or derived task into memory.

    Args:
        name: one of :data:`DATASETS`. ``mnist-evenodd`` relabels MNIST digits
            as even (0) / odd (1); ``mnist-mod3`` as digit mod 3 (three classes).
        train: training split if true, else test split.
        root: data root (see the module docstring).
        download: try torchvision's download into the root when the files are missing.

    Raises:
        DataNotFoundError: the files are missing and could not be downloaded.
        ValueError: unknown ``name``.

    Example:
        >>> test = load("mnist", train=False)            # doctest: +SKIP
        >>> test.x.shape, test.description                 # doctest: +SKIP
        (torch.Size([10000, 1, 28, 28]), 'MNIST')
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    r = data_root(root)
    if name.startswith("mnist"):
        x, y, _ = _load_idx_set(r, "MNIST", train, download, "MNIST")
        if name == "mnist":
            return ImageData(x, y, name, DIGITS, "MNIST")
        if name == "mnist-evenodd":
            return ImageData(x, y % 2, name, ("even", "odd"), "MNIST even vs odd (label = digit mod 2)")
        return ImageData(x, y % 3, name, ("0 mod 3", "1 mod 3", "2 mod 3"), "MNIST digit mod 3")
    if name == "fashion-mnist":
        x, y, _ = _load_idx_set(r, "FashionMNIST", train, download, "FashionMNIST")
        test_labels = _idx_file(r / "FashionMNIST" / "raw", "t10k-labels-idx1-ubyte")
        offline = test_labels is not None and _sha256(test_labels) == _FASHION_OFFLINE_TEST_LABELS
        desc = (
            "Fashion-MNIST (offline copy; non-official split: first 1,000 images per class as test set)"
            if offline
            else "Fashion-MNIST"
        )
        return ImageData(x, y, name, FASHION_CLASSES, desc)
    if name == "cifar10":
        x, y, desc = _load_cifar10(r, train, download)
        return ImageData(x, y, name, CIFAR10_CLASSES, desc)
    x, y, classes = _load_cifar100(r, train, download)
    return ImageData(x, y, name, classes, "CIFAR-100")
