"""Device choice, mixed precision and seeding.

The device is chosen in the order cuda > mps > cpu, unless the environment
variable ``SYMACT_DEVICE`` names one (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
Mixed precision (bfloat16 autocast) is used on CUDA only; CPU runs stay in
float32 and are bit-for-bit repeatable given their seed on one machine (another
processor may pick kernels whose last bits differ).
"""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

__all__ = ["get_device", "device_name", "autocast", "seed_everything"]


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to run on.

    ``device`` (an argument) wins, then ``SYMACT_DEVICE``, then the first
    available of cuda, mps, cpu. Asking for a device that is not available
    raises a ``RuntimeError`` naming it; there is no silent fallback.
    """
    choice = device if device is not None else os.environ.get("SYMACT_DEVICE") or None
    if choice is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(choice)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"SYMACT_DEVICE / device={choice!r} is not a device; expected 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {choice!r} was requested but CUDA is not available on this machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError(f"device {choice!r} was requested but MPS is not available on this machine")
    return dev


def device_name(device: torch.device | None = None) -> str:
    """A human-readable name of ``device`` for provenance records."""
    dev = get_device(device)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return dev.type


def autocast(device: torch.device, enabled: bool = True):
    """bfloat16 autocast on CUDA, a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same.

    On CPU the same seed gives bit-for-bit the same run (same thread count).
    On CUDA cuDNN's autotuner is switched off and deterministic algorithms are
    preferred, but some kernels remain non-deterministic.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return torch.Generator().manual_seed(seed)
