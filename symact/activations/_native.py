"""Native CPU kernels for the fused activations (internal).

The block-by-block torch kernels of :mod:`._fused` keep only the input for
backward, but every torch op they run is one more pass over memory: DOME
needs about a dozen, KAF over a hundred. ``_native.cpp`` evaluates each
activation (and GroupSort, which sorts groups of channels: :func:`groupsort`) in
a single pass forward and a single pass backward (:func:`lanes` float32 lanes at
a time, split over ``torch.get_num_threads()`` threads), with the same formulas,
limits and NaN behaviour; the tests compare the two.

The C++ file is compiled on first use with the system's C++ compiler
(``$CXX``, else ``c++``; ``-O3 -march=native``) into
``$SYMACT_CACHE/native`` (default ``~/.cache/symact/cache/native``), under a
name that hashes the source, the compiler and the CPU's features, so a cache
shared between machines never runs code built for another CPU. It takes a few
seconds, once.

Used for CPU tensors of float32 and float64 (float16 and bfloat16 are computed
in float32) when the parameters are shared by the layer, or one set per
channel with at least :data:`MIN_ROW` contiguous elements per channel (the
channel-first layout of convolutions; a channels-last input with per-channel
parameters runs on a channel-first copy, its output and gradient copied back).
CUDA tensors run the Triton kernels of :mod:`._triton`; everything else
(per-neuron parameters of linear layers on the CPU) runs the torch kernels of
:mod:`._fused`. ``SYMACT_NATIVE=0`` turns the native kernels off.
Without a working compiler a warning says so once, and the torch kernels run:
the results are the same, only slower.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
from torch.autograd.function import once_differentiable

__all__ = ["MAX_GROUP", "MIN_ROW", "available", "compiler", "compute_dtype", "groupsort", "lanes", "layout", "library", "run"]

SOURCE = Path(__file__).with_name("_native.cpp")
FLAGS = ["-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-fopenmp"]
#: fewest contiguous elements per (sample, channel) for per-channel parameters to run natively
MIN_ROW = 16
#: largest KAF dictionary the native kernel takes (KAF::MAXD in _native.cpp)
MAX_KAF_D = 64
#: largest GroupSort group the native kernel takes (GS_MAXG in _native.cpp)
MAX_GROUP = 16
KERNELS = {"pdome": 0, "rbf": 1, "mrelu": 2, "hinge": 3, "kaf": 4, "swish": 5, "pssilu": 6}

_LIB: ctypes.CDLL | None | bool = False  # False: not tried yet


def _cache_dir() -> Path:
    root = os.environ.get("SYMACT_CACHE")
    return Path(root) / "native" if root else Path.home() / ".cache" / "symact" / "cache" / "native"


def _cpu_features() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def lanes() -> int:
    """float32 lanes of the kernels' vectors: the CPU's vector width (16 with AVX-512, 8 with AVX, else 4).

    Wider vectors than the hardware's are split by the compiler, and that costs: on an AVX2 processor 16 lanes
    made S-APL, APL and Swish 3 to 5 times slower than 8.
    """
    features = set(_cpu_features().replace(":", " ").split())
    return 16 if "avx512f" in features else 8 if features & {"avx", "avx2"} else 4


def compiler() -> str | None:
    """The C++ compiler the native kernels are built with: ``$CXX``, else the first of c++, g++, clang++ found."""
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def _compile() -> ctypes.CDLL:
    cxx = compiler()
    if not cxx:
        raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    flags = [*FLAGS, f"-DLANES={lanes()}"]
    key = hashlib.sha256("\n".join([SOURCE.read_text(), " ".join(flags), version, platform.machine(),
                                    _cpu_features()]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"symact_native_{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        done = subprocess.run([cxx, *flags, "-o", tmp, str(SOURCE)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            os.unlink(tmp)
            raise RuntimeError(f"{cxx} failed on {SOURCE.name}:\n{done.stderr[-2000:]}")
        os.replace(tmp, target)  # atomic: concurrent processes never load a half-written file
    lib = ctypes.CDLL(str(target))
    i64, ptr, dptr = ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)
    lib.symact_forward.argtypes = [ctypes.c_int, ctypes.c_int, ptr, ptr, i64, i64, i64, ptr, ctypes.c_int, dptr,
                                   ctypes.c_int]
    lib.symact_backward.argtypes = [ctypes.c_int, ctypes.c_int, ptr, ptr, ptr, ptr, i64, i64, i64, ptr, ctypes.c_int,
                                    dptr, ctypes.c_int]
    lib.symact_groupsort.argtypes = [ctypes.c_int, ctypes.c_int, ptr, ptr, ptr, i64, i64, i64, ctypes.c_int]
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or ``None`` when turned off (``SYMACT_NATIVE=0``) or when compiling failed."""
    global _LIB
    if os.environ.get("SYMACT_NATIVE", "1") == "0":
        return None
    if _LIB is False:
        try:
            _LIB = _compile()
        except (RuntimeError, OSError) as err:
            warnings.warn(f"symact: native CPU activation kernels unavailable, using the (slower) torch kernels: {err}",
                          RuntimeWarning, stacklevel=3)
            _LIB = None
    return _LIB


def available() -> bool:
    """Whether the native kernels are compiled and turned on."""
    return library() is not None


def _channels(p: torch.Tensor) -> int:
    return p.shape[-2] if p.dim() >= 2 else 1


def layout(x: torch.Tensor, params, per_channel: bool) -> tuple[int, int] | None:
    """``(C, P)`` for the native kernels (``C = 1``: shared parameters, any dense layout), or ``None``."""
    if x.device.type != "cpu" or library() is None:
        return None
    if not per_channel or all(_channels(p) == 1 for p in params):
        dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
        return (1, x.numel()) if dense else None
    C = x.shape[1]
    P = x.numel() // (x.shape[0] * C)
    return (C, P) if x.is_contiguous() and P >= MIN_ROW else None


def compute_dtype(x: torch.Tensor, params) -> torch.dtype:
    """float32, or float64 when the input or a parameter is float64 (float16/bfloat16 inputs compute in float32)."""
    dtype = torch.promote_types(x.dtype, torch.float32)
    for p in params:
        dtype = torch.promote_types(dtype, p.dtype)
    return dtype


def _pack(params, C: int, dtype: torch.dtype) -> torch.Tensor:
    """Parameters shaped ``(..., 1, C or 1, 1)`` as one ``(C, np)`` contiguous table."""
    cols = [p.detach().to(dtype).reshape(-1, _channels(p)).expand(-1, C) for p in params]
    if not cols:
        return torch.zeros(C, 0, dtype=dtype)
    return torch.cat(cols).t().contiguous()


def _unpack(grads: torch.Tensor, params, needs) -> list:
    out, start = [], 0
    for p, need in zip(params, needs):
        k = p.numel() // _channels(p)
        g = grads[:, start:start + k].t()
        start += k
        if _channels(p) == 1:
            g = g.sum(1, keepdim=True)
        out.append(g.reshape(p.shape).to(p.dtype) if need else None)
    return out


def _consts(values) -> ctypes.Array:
    return (ctypes.c_double * max(1, len(values)))(*values)


def _check(status: int, kernel: str) -> None:
    if status != 0:
        raise RuntimeError(f"native {kernel} kernel failed (status {status})")


class _Native(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, shape, x, *params):
        (name, consts), (C, P) = spec, shape
        ctx.spec, ctx.shape = spec, shape
        ctx.save_for_backward(x, *params)
        dtype = compute_dtype(x, params)
        xc = x.to(dtype)
        table = _pack(params, C, dtype)
        y = torch.empty_like(xc)
        _check(library().symact_forward(KERNELS[name], dtype == torch.float64, xc.data_ptr(), y.data_ptr(), xc.numel(),
                                        C, P, table.data_ptr(), table.shape[1], _consts(consts),
                                        torch.get_num_threads()), name)
        return y.to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (name, consts), (C, P) = ctx.spec, ctx.shape
        x, *params = ctx.saved_tensors
        needs = ctx.needs_input_grad[3:]
        dtype = compute_dtype(x, params)
        xc = x.to(dtype)
        gc = torch.empty_like(xc).copy_(g) if g.dtype != dtype or g.stride() != xc.stride() else g
        table = _pack(params, C, dtype)
        dx = torch.empty_like(xc) if ctx.needs_input_grad[2] else None
        grads = torch.zeros(C, table.shape[1], dtype=torch.float64) if any(needs) else None
        _check(library().symact_backward(KERNELS[name], dtype == torch.float64, xc.data_ptr(), gc.data_ptr(),
                                         dx.data_ptr() if dx is not None else None,
                                         grads.data_ptr() if grads is not None else None, xc.numel(), C, P,
                                         table.data_ptr(), table.shape[1], _consts(consts),
                                         torch.get_num_threads()), name)
        dparams = _unpack(grads, params, needs) if grads is not None else [None] * len(params)
        return (None, None, None if dx is None else dx.to(x.dtype), *dparams)


def run(spec, shape: tuple[int, int], x: torch.Tensor, params) -> torch.Tensor:
    """``spec = (kernel name, constants)`` on ``x`` laid out as ``shape = (C, P)`` (see :func:`layout`)."""
    return _Native.apply(spec, shape, x, *params)


def groupsort(x: torch.Tensor, grad: torch.Tensor | None, outer: int, group: int, inner: int) -> torch.Tensor:
    """GroupSort's native kernel on ``x`` viewed as ``(outer, group, inner)`` in memory order (float32 or float64,
    dense): the groups sorted ascending, or, given ``grad`` (laid out as ``x``), the gradient sent back to ``x``."""
    out = torch.empty_like(x)
    _check(library().symact_groupsort(x.dtype == torch.float64, grad is not None, x.data_ptr(),
                                      grad.data_ptr() if grad is not None else None, out.data_ptr(), outer, group,
                                      inner, torch.get_num_threads()), "groupsort")
    return out
