"""Activation functions, created by name from one registry.

Every activation is an ``nn.Module``; :func:`create` builds one by name, and
:func:`factory` returns a callable ``channels -> nn.Module`` that models use to
place an activation after each layer (``channels`` is the number of channels,
dim 1, of the tensor it will see; element-wise activations ignore it,
per-channel ones such as PReLU size their parameters with it).

This module holds the torch.nn baselines; the activations of the source papers
(DOME, SAF, S-APL, KAF, ...) register themselves here with :func:`register`.

Example:
    >>> act = create("leaky_relu", negative_slope=0.1)
    >>> make = factory("prelu")
    >>> make(16).weight.shape
    torch.Size([16])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from torch import nn

__all__ = [
    "ActivationFactory", "as_factory", "create", "factory", "is_activation", "names", "register",
    # the source papers' activations and further baselines (modules; functional forms live in the submodules)
    "APL", "DOME", "DOME1", "DOME2", "GroupSort", "KAF", "KAF2D", "KAFFree", "KWTA", "MDOME", "MReLU", "MaxMin", "Maxout", "PDOME",
    "PSSiLU", "RBF", "ReLUSoftplusGrad", "SAPL", "Swish",
]

ActivationFactory = Callable[[int], nn.Module]


@dataclass(frozen=True)
class _Entry:
    build: Callable[..., nn.Module]
    per_channel: bool
    cls: type


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, cls: type, build: Callable[..., nn.Module] | None = None, per_channel: bool = False) -> None:
    """Register ``cls`` under ``name``.

    ``build(channels=..., **kwargs)`` constructs it when ``per_channel``, else
    ``build(**kwargs)``; ``build`` defaults to ``cls``.
    """
    if name in _REGISTRY:
        raise ValueError(f"activation {name!r} is already registered")
    _REGISTRY[name] = _Entry(build or cls, per_channel, cls)


def names() -> list[str]:
    """Names of every registered activation, sorted."""
    return sorted(_REGISTRY)


def create(name: str, channels: int | None = None, **kwargs) -> nn.Module:
    """Create the activation registered as ``name``.

    Args:
        name: a name from :func:`names`.
        channels: channel count (dim 1) for per-channel activations; ``None``
            gives a single shared parameter set. Ignored by element-wise ones.
        **kwargs: hyper-parameters of the activation.

    Raises:
        KeyError: unknown name (the message lists the available names).
    """
    try:
        entry = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown activation {name!r}; available: {', '.join(names())}") from None
    if entry.per_channel:
        return entry.build(channels=channels, **kwargs)
    return entry.build(**kwargs)


def factory(name: str, **kwargs) -> ActivationFactory:
    """A callable ``channels -> module`` creating ``name`` with ``kwargs``."""
    create(name, channels=1, **kwargs)  # fail now, not deep inside a model

    def make(channels: int) -> nn.Module:
        return create(name, channels=channels, **kwargs)

    make.__name__ = make.__qualname__ = f"factory({name!r})"
    return make


def as_factory(spec: Union[str, ActivationFactory, None]) -> ActivationFactory:
    """Accept a registry name, a factory, or ``None`` (identity: no activation)."""
    if spec is None:
        return lambda channels: nn.Identity()
    if isinstance(spec, str):
        return factory(spec)
    if callable(spec):
        return spec
    raise TypeError(f"expected an activation name, a callable channels -> nn.Module, or None; got {spec!r}")


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is an instance of a registered activation class."""
    return isinstance(module, tuple(e.cls for e in _REGISTRY.values()))


def _prelu(channels: int | None = None, init: float = 0.25) -> nn.PReLU:
    return nn.PReLU(num_parameters=channels or 1, init=init)


register("relu", nn.ReLU)
register("leaky_relu", nn.LeakyReLU)
register("prelu", nn.PReLU, _prelu, per_channel=True)
register("elu", nn.ELU)
register("selu", nn.SELU)
register("gelu", nn.GELU)
register("silu", nn.SiLU)
register("tanh", nn.Tanh)
register("sigmoid", nn.Sigmoid)
register("softplus", nn.Softplus)

# The source papers' activations register themselves on import (functional
# forms stay in their submodules, e.g. symact.activations.dome.dome).
from symact.activations.dome import DOME, DOME1, DOME2, MDOME, PDOME  # noqa: E402
from symact.activations.saf import RBF, MReLU  # noqa: E402
from symact.activations.apl import APL, SAPL  # noqa: E402
from symact.activations.kaf import KAF, KAF2D, KAFFree  # noqa: E402
from symact.activations.baselines import KWTA, Maxout, ReLUSoftplusGrad, Swish  # noqa: E402
from symact.activations.pssilu import PSSiLU  # noqa: E402
from symact.activations.groupsort import GroupSort, MaxMin  # noqa: E402
