"""Models: LeNet-5 (the SAF paper's MNIST and CIFAR-10 shapes), an MLP, a CIFAR ResNet-18, the finished KAF
thesis's VGG-inspired CIFAR-10 network and He et al.'s CIFAR ResNets (ResNet-20/32/44/56).

Every model takes images in [0, 1] and normalises them in its first layer
(:class:`Normalize`), so attack budgets are in pixel units. Activations are
given as factories ``channels -> nn.Module`` or registry names (see
:mod:`symact.activations`), and :func:`swap_activations` replaces them in an
existing model.

The library's models declare ``supports_channels_last = True``: they compute
the same function on channels-last tensors, so :func:`symact.train.train`,
:func:`symact.train.place` and :func:`inference_copy` run them in that layout
(see :func:`channels_last_default`). Any other network stays in PyTorch's
default layout unless asked otherwise.
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from symact.activations import ActivationFactory, Maxout, as_factory, is_activation

__all__ = ["CifarResNet", "LeNet5", "MLP", "Normalize", "ResNet18", "VGGInspired", "channels_last_default",
           "inference_copy", "swap_activations"]

Act = "str | ActivationFactory | None"


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, with mean and std as buffers (saved, never trained)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std must have equal length and std > 0; got {mean}, {std}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"expected images of shape (N, {self.mean.shape[1]}, H, W), got {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std


def _unit(layer, make: ActivationFactory, units: int) -> tuple[nn.Module, nn.Module]:
    """``layer(units)`` and the activation for its ``units`` units, in that order (the seeded initialisation
    of earlier models is unchanged); a ``Maxout`` with ``keep_channels=False`` reduces ``k`` pieces to one
    unit, so the layer is rebuilt ``k`` times wider."""
    lin = layer(units)
    act = make(units)
    if isinstance(act, Maxout) and not act.keep_channels and act.k > 1:
        lin = layer(units * act.k)
    return lin, act


class LeNet5(nn.Module):
    """LeNet-5 in the shapes of the SAF paper (saf.txt, Tables 1 and 3).

    ``variant="mnist"`` (Table 1, 1x28x28 input)::

        conv 5x5x20 - act - maxpool 2 - conv 5x5x50 - act - maxpool 2 - fc 800->500 - fc_act - [embed] - fc ->C - out_act

    ``variant="cifar"`` (Table 3, 3x32x32 input; 5x5 convolutions padded by 2, 2x2 pooling)::

        conv 5x5x32 - act - maxpool 2 - conv 5x5x32 - act - avgpool 2 - conv 5x5x64 - act - avgpool 2
        - fc 1024->64 - fc_act - [embed] - fc ->C - out_act

    Args:
        variant: ``"mnist"`` or ``"cifar"``.
        num_classes: outputs of the last layer.
        act: activation after each convolution (the SAF paper's plain network
            has none there: pass ``None``).
        fc_act: activation after the hidden fully connected layer (default: ``act``).
        out_act: optional activation on the output (e.g. DOME, RBF); ``None`` gives logits.
        embed_dim: if given, a linear bottleneck of this width before the
            last layer, e.g. 2 for embedding plots.
        embed_act: activation after the bottleneck (default: ``fc_act``;
            ``None`` keeps the embedding linear, which avoids dead 2-D ReLU units).
        mean, std: per-channel normalisation of the input.
        batchnorm: ``True`` or ``"conv"``: batch normalisation between each
            convolution and its activation (the SAF paper, Section 4.3, finds
            it necessary for its robust CNNs; it does not say where, so this is
            our placement); ``"all"``: also before the hidden fully connected
            layer's activation (the S-APL paper puts BN before every S-APL);
            ``False``: none.

    A :class:`~symact.activations.Maxout` with ``keep_channels=False`` as the
    activation (e.g. ``act=lambda c: Maxout(9, keep_channels=False)``) makes
    the layer before it ``k`` times wider, so each layer keeps its number of
    units: a true maxout network with ``k`` pieces per unit.
    """

    supports_channels_last = True  # see channels_last_default

    def __init__(
        self,
        variant: str = "mnist",
        num_classes: int = 10,
        act: Act = "relu",
        fc_act: Act = "same",
        out_act: Act = None,
        embed_dim: int | None = None,
        embed_act: Act = "same",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batchnorm: bool = False,
    ):
        super().__init__()
        if variant not in ("mnist", "cifar"):
            raise ValueError(f"variant must be 'mnist' or 'cifar', got {variant!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if batchnorm not in (False, True, "conv", "all"):
            raise ValueError(f"batchnorm must be False, True, 'conv' or 'all', got {batchnorm!r}")
        act_only = as_factory(act)
        hidden_act = act_only if fc_act == "same" else as_factory(fc_act)
        self.variant = variant

        def conv(cin: int, cout: int, **kw) -> list[nn.Module]:
            lin, a = _unit(lambda c: nn.Conv2d(cin, c, 5, **kw), act_only, cout)
            return [lin] + ([nn.BatchNorm2d(lin.out_channels)] if batchnorm else []) + [a]

        if variant == "mnist":
            mean, std = mean or (0.1307,), std or (0.3081,)
            self.features = nn.Sequential(
                Normalize(mean, std),
                *conv(1, 20), nn.MaxPool2d(2),
                *conv(20, 50), nn.MaxPool2d(2),
                nn.Flatten(),
            )
            flat, hidden = 50 * 4 * 4, 500
        else:
            mean, std = mean or (0.4914, 0.4822, 0.4465), std or (0.2470, 0.2435, 0.2616)
            self.features = nn.Sequential(
                Normalize(mean, std),
                *conv(3, 32, padding=2), nn.MaxPool2d(2),
                *conv(32, 32, padding=2), nn.AvgPool2d(2),
                *conv(32, 64, padding=2), nn.AvgPool2d(2),
                nn.Flatten(),
            )
            flat, hidden = 64 * 4 * 4, 64
        lin, a = _unit(lambda c: nn.Linear(flat, c), hidden_act, hidden)
        layers: list[nn.Module] = [lin] + ([nn.BatchNorm1d(lin.out_features)] if batchnorm == "all" else []) + [a]
        last_in = hidden
        if embed_dim is not None:
            embed_make = hidden_act if embed_act == "same" else as_factory(embed_act)
            layers += [nn.Linear(hidden, embed_dim), embed_make(embed_dim)]
            last_in = embed_dim
        self.hidden = nn.Sequential(*layers)
        self.classifier = nn.Linear(last_in, num_classes)
        self.out_act = as_factory(out_act)(num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate representation (the input of the last linear layer)."""
        return self.hidden(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.classifier(self.embed(x)))


class MLP(nn.Module):
    """A fully connected network on flattened images: ``in -> hidden... -> num_classes``.

    Each hidden layer is ``Linear`` then the activation (optionally with
    ``BatchNorm1d`` in between, as the S-APL paper places it), then
    ``Dropout(dropout)`` when ``dropout > 0`` (the S-APL paper's MLP uses 0.3,
    symmetric-apl.txt Appendix 8.2).
    """

    supports_channels_last = True  # see channels_last_default

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 28, 28),
        hidden: Sequence[int] = (300, 100),
        num_classes: int = 10,
        act: Act = "relu",
        batch_norm: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive widths, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        make = as_factory(act)
        c = in_shape[0]
        layers: list[nn.Module] = [Normalize(mean or (0.5,) * c, std or (0.5,) * c), nn.Flatten()]
        width = int(torch.tensor(in_shape).prod())
        for h in hidden:
            lin, a = _unit(lambda c: nn.Linear(width, c), make, h)
            layers.append(lin)
            if batch_norm:
                layers.append(nn.BatchNorm1d(lin.out_features))
            layers.append(a)
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _pieces(act: nn.Module) -> int:
    """How many times wider than its units the layer before ``act`` is: ``k`` for a channel-reducing Maxout."""
    return act.k if isinstance(act, Maxout) and not act.keep_channels else 1


class _ShortcutA(nn.Module):
    """He et al.'s (2016, Sec. 4.2) option A shortcut: the identity, subsampled by ``stride`` and padded with
    zero channels from ``cin`` to ``cout`` (half of the new channels before, half after); no parameters."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cout < cin:
            raise ValueError(f"an option A shortcut cannot reduce channels ({cin} -> {cout})")
        self.stride, self.before, self.after = stride, (cout - cin) // 2, cout - cin - (cout - cin) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after)) if self.before or self.after else x


class _BasicBlock(nn.Module):
    """The two-convolution residual block; with a channel-reducing maxout (:func:`_unit`) both convolutions
    are ``k`` times wider and the shortcut is added to each of a unit's ``k`` pieces, so that the block
    computes ``maxout(pieces) + shortcut``, as a ReLU block computes ``relu(out + shortcut)`` on its units.

    ``shortcut`` where the shape changes: ``"B"`` a 1x1 convolution and batch normalisation (ResNet-18's
    projection), ``"A"`` zero-padded identity (:class:`_ShortcutA`, He et al.'s CIFAR ResNets)."""

    def __init__(self, cin: int, cout: int, stride: int, make: ActivationFactory, shortcut: str = "B"):
        super().__init__()
        self.conv1, self.act1 = _unit(lambda c: nn.Conv2d(cin, c, 3, stride, 1, bias=False), make, cout)
        self.bn1 = nn.BatchNorm2d(self.conv1.out_channels)
        self.k = _pieces(self.act1)
        self.conv2 = nn.Conv2d(cout, cout * self.k, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout * self.k)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = (nn.Sequential(_ShortcutA(cin, cout, stride)) if shortcut == "A" else
                             nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
        self.act2 = make(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = self.shortcut(x)
        if self.k > 1:
            short = short.repeat_interleave(self.k, dim=1)
        return self.act2(out + short)


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs (3x3 stem, no max-pool; He et al. 2016), as used for CIFAR-10.

    ``width`` scales every stage (64 gives the standard 11.2 M parameters). A
    :class:`~symact.activations.Maxout` with ``keep_channels=False`` makes every
    convolution before an activation ``k`` times wider (see :class:`_BasicBlock`).
    """

    supports_channels_last = True  # see channels_last_default

    def __init__(
        self,
        num_classes: int = 10,
        act: Act = "relu",
        in_channels: int = 3,
        width: int = 64,
        out_act: Act = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        make = as_factory(act)
        mean = mean or ((0.4914, 0.4822, 0.4465) if in_channels == 3 else (0.5,) * in_channels)
        std = std or ((0.2470, 0.2435, 0.2616) if in_channels == 3 else (0.5,) * in_channels)
        conv, stem_act = _unit(lambda c: nn.Conv2d(in_channels, c, 3, 1, 1, bias=False), make, width)
        self.stem = nn.Sequential(Normalize(mean, std), conv, nn.BatchNorm2d(conv.out_channels), stem_act)
        blocks, cin = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            for j in range(2):
                blocks.append(_BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, make))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(cin, num_classes)
        self.out_act = as_factory(out_act)(num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.classifier(self.embed(x)))


def _cifar_stats(in_channels: int, mean, std) -> tuple:
    mean = mean or ((0.4914, 0.4822, 0.4465) if in_channels == 3 else (0.5,) * in_channels)
    std = std or ((0.2470, 0.2435, 0.2616) if in_channels == 3 else (0.5,) * in_channels)
    return mean, std


class VGGInspired(nn.Module):
    """The VGG-inspired CIFAR-10 network of the finished KAF thesis (kaf-thesis-results.md, "VGG-inspired
    network, fast adversarial training"; Peconi 2020)::

        [conv 3x3 x32 - BN - act] x2 - maxpool 2 - dropout 0.2
        [conv 3x3 x64 - BN - act] x2 - maxpool 2 - dropout 0.25
        [conv 3x3 x128 - BN - act] x2 - maxpool 2 - dropout 0.3
        flatten (128x4x4) - dense 128 - BN - act - dropout 0.4 - dense num_classes

    What the text states: three blocks of two 3x3 convolutions with 32, 64 and 128 filters, batch
    normalisation before each non-linearity, 2x2 max-pooling and dropout after each block, a dense layer of
    128 units with dropout, a dense output layer, He uniform initialisation. What it leaves open, and what we
    chose:

    - padding: "same" (padding 1), as in the Keras VGG-style CIFAR networks the thesis follows, so a 32x32
      image is 4x4 after three poolings;
    - the dropout rates ("0.2, 0.25, 0.3 ... up to 0.4"): 0.2, 0.25, 0.3 after the three blocks and 0.4
      after the dense layer (``dropout``, ``fc_dropout``);
    - the dense layer gets batch normalisation before its activation too ("before each non-linearity");
    - biases: kept in every convolution and dense layer (Keras's default ``use_bias=True``), zero at
      initialisation; He uniform (``U(-sqrt(6/fan_in), sqrt(6/fan_in))``, Keras's ``he_uniform``) on every
      convolution and dense kernel; activations keep their own initialisation.

    The thesis's L2 penalty of 0.0012 on the dense layers is part of its training recipe, not of the network
    (:class:`symact.train.TrainConfig`'s ``weight_decay`` applies to every parameter). With ReLU the network
    has 551,722 trainable parameters (the thesis reports no count). A
    :class:`~symact.activations.Maxout` with ``keep_channels=False`` makes each layer before it ``k`` times
    wider, as in :class:`LeNet5`.
    """

    supports_channels_last = True  # see channels_last_default

    def __init__(
        self,
        num_classes: int = 10,
        act: Act = "relu",
        in_channels: int = 3,
        widths: Sequence[int] = (32, 64, 128),
        dropout: Sequence[float] = (0.2, 0.25, 0.3),
        fc_width: int = 128,
        fc_dropout: float = 0.4,
        out_act: Act = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        image_size: int = 32,
    ):
        super().__init__()
        if num_classes < 1 or fc_width < 1 or in_channels < 1:
            raise ValueError(f"num_classes, fc_width and in_channels must be >= 1, got {num_classes}, {fc_width}, "
                             f"{in_channels}")
        if not widths or len(widths) != len(dropout) or any(w < 1 for w in widths):
            raise ValueError(f"widths (positive) and dropout need one entry per block, got {widths} and {dropout}")
        if not all(0.0 <= p < 1.0 for p in (*dropout, fc_dropout)):
            raise ValueError(f"dropout rates must be in [0, 1), got {dropout} and {fc_dropout}")
        if image_size % 2 ** len(widths):
            raise ValueError(f"image_size {image_size} is not divisible by 2**{len(widths)} (one pooling per block)")
        make = as_factory(act)
        mean, std = _cifar_stats(in_channels, mean, std)
        layers: list[nn.Module] = [Normalize(mean, std)]
        cin = in_channels
        for width, p in zip(widths, dropout):
            for _ in range(2):
                conv, a = _unit(lambda c, cin=cin: nn.Conv2d(cin, c, 3, padding=1), make, width)
                layers += [conv, nn.BatchNorm2d(conv.out_channels), a]
                cin = width
            layers += [nn.MaxPool2d(2), nn.Dropout(p)]
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        flat = cin * (image_size // 2 ** len(widths)) ** 2
        lin, a = _unit(lambda c: nn.Linear(flat, c), make, fc_width)
        self.hidden = nn.Sequential(lin, nn.BatchNorm1d(lin.out_features), a, nn.Dropout(fc_dropout))
        self.classifier = nn.Linear(fc_width, num_classes)
        self.out_act = as_factory(out_act)(num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=0.0, nonlinearity="relu")  # bound sqrt(6 / fan_in)
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate representation (the input of the last dense layer)."""
        return self.hidden(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.classifier(self.embed(x)))


class CifarResNet(nn.Module):
    """He et al.'s (2016, "Deep residual learning", Sec. 4.2) ResNets for CIFAR-10: ``depth = 6n + 2`` layers
    (ResNet-20, 32, 44, 56, 110)::

        conv 3x3 x16 - BN - act - [n basic blocks, 16] - [n blocks, 32, stride 2] - [n blocks, 64, stride 2]
        - global average pooling - dense num_classes

    as the finished KAF thesis describes them (kaf-thesis-results.md, "Exploding gradients in deep KAF
    ResNets"). A basic block is conv 3x3 - BN - act - conv 3x3 - BN, plus the shortcut, then act.
    ``shortcut="A"`` (the default, the paper's choice for CIFAR): identity shortcuts, zero-padded where the
    number of channels doubles, so the network has exactly the parameters of its plain counterpart
    (ResNet-20: 0.27 M, 56: 0.85 M, the paper's Table 6). ``"B"``: 1x1 projection convolutions with batch
    normalisation there. The thesis (Keras) does not say which it used. Convolutions get He et al.'s (2015)
    normal initialisation (fan-out mode, as torchvision's ResNets); the dense layer, batch normalisation and
    the activations keep PyTorch's defaults. ``width`` scales the stages (16 is the paper's).

    ``branch_scale`` (default None: PyTorch's BN initialisation, the network above): initialise the scale
    (``weight``) of every block's last batch normalisation to this number ``beta >= 0``, so that at
    initialisation each residual branch adds ``beta`` times a normalised signal to the shortcut (``0`` is the
    zero-init of Goyal et al. 2017). The architecture and the parameters are the same; only their starting
    values change. The KAF chapter's depth section derives ``beta = 1/sqrt(blocks)`` from the backward gain
    of a block (:func:`symact.experiments.kaf_depth.block_factor`). :attr:`blocks` is the number of basic
    blocks, ``3 (depth - 2)/6``.
    """

    supports_channels_last = True  # see channels_last_default

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        act: Act = "relu",
        shortcut: str = "A",
        in_channels: int = 3,
        width: int = 16,
        out_act: Act = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        branch_scale: float | None = None,
    ):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {depth!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero-padded identity) or 'B' (projection), got {shortcut!r}")
        if num_classes < 1 or width < 1:
            raise ValueError(f"num_classes and width must be >= 1, got {num_classes} and {width}")
        if branch_scale is not None and (isinstance(branch_scale, bool) or not isinstance(branch_scale, (int, float))
                                         or not math.isfinite(branch_scale) or branch_scale < 0):
            raise ValueError(f"branch_scale must be None or a finite number >= 0, got {branch_scale!r}")
        make = as_factory(act)
        self.depth, self.shortcut_type, self.branch_scale = depth, shortcut, branch_scale
        mean, std = _cifar_stats(in_channels, mean, std)
        conv, stem_act = _unit(lambda c: nn.Conv2d(in_channels, c, 3, 1, 1, bias=False), make, width)
        self.stem = nn.Sequential(Normalize(mean, std), conv, nn.BatchNorm2d(conv.out_channels), stem_act)
        blocks, cin = [], width
        for i, mult in enumerate((1, 2, 4)):
            for j in range((depth - 2) // 6):
                blocks.append(_BasicBlock(cin, width * mult, 2 if (i > 0 and j == 0) else 1, make, shortcut))
                cin = width * mult
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(cin, num_classes)
        self.out_act = as_factory(out_act)(num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if branch_scale is not None:
            for block in blocks:
                nn.init.constant_(block.bn2.weight, float(branch_scale))

    @property
    def blocks(self) -> int:
        """The number of basic blocks, ``3 (depth - 2)/6`` (27 for ResNet-56)."""
        return len(self.layers)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.classifier(self.embed(x)))


def _width(module: nn.Module) -> int | None:
    for attr in ("out_channels", "out_features", "num_features"):
        if hasattr(module, attr):
            return int(getattr(module, attr))
    return None


def swap_activations(model: nn.Module, factory: "str | ActivationFactory", skip: Sequence[str] = ()) -> nn.Module:
    """Replace every registered activation in ``model`` (in place) with ``factory(channels)``.

    ``channels`` is the output width of the nearest preceding convolution,
    linear or normalisation layer in registration order. Modules whose
    qualified name starts with an entry of ``skip`` (e.g. ``"out_act"``) are
    left alone. Returns ``model``.

    Raises:
        ValueError: no activation was found to replace.
    """
    make = as_factory(factory)
    width: int | None = None
    targets: list[tuple[str, int | None]] = []
    for name, module in model.named_modules():
        w = _width(module)
        if w is not None:
            width = w
        elif name and is_activation(module) and not any(name.startswith(s) for s in skip):
            targets.append((name, width))
    if not targets:
        raise ValueError("swap_activations found no registered activation in the model to replace")
    for name, w in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, make(w or 1))
    return model


def channels_last_default(model: nn.Module) -> bool:
    """Whether the library runs ``model`` channels-last unless told otherwise: it has a 2-D convolution (where
    the layout pays: about 1.5x faster on CPU, suited to tensor cores on GPU) and declares that it computes the
    same function in that layout by the attribute ``supports_channels_last = True``, as the library's own
    models do (:class:`LeNet5`, :class:`MLP`, :class:`ResNet18`, :class:`VGGInspired`,
    :class:`CifarResNet`).

    Any other network, a user's own, stays in PyTorch's default layout: its ``forward`` may flatten with
    ``x.view(x.size(0), -1)`` (Wong et al.'s MNIST network does), which fails on a channels-last tensor. Set
    the attribute on a class (or one instance) that works channels-last, or pass ``channels_last=True`` to
    :func:`symact.train.train`, :func:`symact.train.place` or :func:`inference_copy`.
    """
    return bool(getattr(model, "supports_channels_last", False)) and any(isinstance(m, nn.Conv2d) for m in model.modules())


def inference_copy(model: nn.Module, channels_last: bool | None = None) -> nn.Module:
    """A copy of ``model`` in eval mode that computes the same function faster, for attacks that only run it
    forward many times (:class:`symact.attacks.PixelDE`); ``model`` itself is left alone.

    Every batch normalisation that directly follows a convolution or linear layer in an ``nn.Sequential``
    is folded into that layer's weights and bias (``torch.nn.utils.fusion``; exact up to rounding, about
    1e-7 relative in float32); one elsewhere (a ResNet block's) stays. With ``channels_last`` (default: on
    a CPU model for which :func:`channels_last_default` holds, the library's own convolutional models) the
    copy's weights are channels-last, the layout oneDNN's convolutions and pooling run fastest in on a CPU;
    inputs may come in either layout. Another network's copy keeps the default layout, so a ``forward``
    that flattens with ``view`` still works.
    """
    fast = copy.deepcopy(model).eval()
    for seq in [m for m in fast.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            layer, bn = seq[i], seq[i + 1]
            if not (isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)) and bn.track_running_stats):
                continue
            if isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq[i], seq[i + 1] = fuse_conv_bn_eval(layer, bn), nn.Identity()
            elif isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
                seq[i], seq[i + 1] = fuse_linear_bn_eval(layer, bn), nn.Identity()
    if channels_last is None:
        convs = [m for m in fast.modules() if isinstance(m, nn.Conv2d)]
        channels_last = channels_last_default(model) and convs[0].weight.device.type == "cpu"
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    return fast
