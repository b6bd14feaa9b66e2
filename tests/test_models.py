import pytest
import torch
from torch import nn

from symact import activations
from symact.models import MLP, LeNet5, Normalize, ResNet18, swap_activations


@pytest.mark.parametrize(
    "variant,shape", [("mnist", (2, 1, 28, 28)), ("cifar", (2, 3, 32, 32))]
)
def test_lenet_shapes(variant, shape):
    m = LeNet5(variant, num_classes=10)
    assert m(torch.rand(shape)).shape == (2, 10)
    e = LeNet5(variant, num_classes=3, embed_dim=2)
    assert e.embed(torch.rand(shape)).shape == (2, 2) and e(torch.rand(shape)).shape == (2, 3)


def test_lenet_mnist_is_the_saf_table1_shape():
    m = LeNet5("mnist")
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(20, (5, 5)), (50, (5, 5))]
    fcs = [c for c in m.modules() if isinstance(c, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(800, 500), (500, 10)]


def test_plain_saf_network_has_no_conv_activation():
    m = LeNet5("mnist", act=None, fc_act="relu")
    assert sum(isinstance(x, nn.ReLU) for x in m.modules()) == 1


def test_mlp_and_resnet():
    assert MLP((1, 28, 28), (64, 32), 10, batch_norm=True)(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    r = ResNet18(num_classes=10, width=8)
    assert r(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert ResNet18(in_channels=1, width=8)(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in ResNet18().parameters()) == pytest.approx(11.17e6, rel=0.01)


def test_swap_activations_uses_channel_counts():
    m = LeNet5("mnist", act="relu")
    swap_activations(m, "prelu")
    prelus = [x for x in m.modules() if isinstance(x, nn.PReLU)]
    assert [p.num_parameters for p in prelus] == [20, 50, 500]
    assert not any(isinstance(x, nn.ReLU) for x in m.modules())
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    r = swap_activations(ResNet18(width=8), activations.factory("elu"))
    assert not any(isinstance(x, nn.ReLU) for x in r.modules())


def test_swap_activations_skip_and_error():
    m = LeNet5("mnist", out_act="sigmoid")
    swap_activations(m, "tanh", skip=("out_act",))
    assert isinstance(m.out_act, nn.Sigmoid)
    with pytest.raises(ValueError, match="no registered activation"):
        swap_activations(nn.Sequential(nn.Linear(2, 2)), "relu")


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, H, W\)"):
        LeNet5("mnist")(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="variant"):
        LeNet5("imagenet")
    with pytest.raises(ValueError):
        Normalize((0.5,), (0.0,))
    with pytest.raises(KeyError, match="available"):
        LeNet5(act="no_such_activation")
    with pytest.raises(TypeError):
        LeNet5(act=3)


def test_maxout_networks_keep_their_units():
    """Maxout with k pieces (keep_channels=False) widens the layer before it k times; the next layer sees the units."""
    from symact.activations import Maxout

    def mx(c):
        return Maxout(3, keep_channels=False)

    m = LeNet5("mnist", act=mx, batchnorm="all")
    convs = [x for x in m.features if isinstance(x, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [60, 150] and [c.in_channels for c in convs] == [1, 20]
    assert m.hidden[0].out_features == 1500 and isinstance(m.hidden[1], torch.nn.BatchNorm1d)
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert LeNet5("cifar", act=mx)(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    mlp = MLP((1, 28, 28), (8, 4), 10, act=mx, batch_norm=True)
    assert [x.out_features for x in mlp.net if isinstance(x, torch.nn.Linear)] == [24, 12, 10]
    assert mlp(torch.rand(5, 1, 28, 28)).shape == (5, 10)
    with pytest.raises(ValueError, match="batchnorm must be"):
        LeNet5(batchnorm="fc")


def test_maxout_resnet_widens_convolutions_and_adds_the_shortcut_to_each_unit():
    from symact.activations import Maxout
    from symact.activations.baselines import maxout

    r = ResNet18(width=4, act=lambda c: Maxout(3, keep_channels=False)).eval()
    assert r.stem[1].out_channels == 12 and r.stem[2].num_features == 12
    block = r.layers[2]  # the first block of stage 2: stride 2, a projection shortcut
    assert (block.conv1.out_channels, block.conv2.in_channels, block.conv2.out_channels) == (24, 8, 24)
    x = torch.rand(2, 4, 16, 16)
    with torch.no_grad():
        inner = block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))
        torch.testing.assert_close(block(x), maxout(inner, 3) + block.shortcut(x))
    assert r(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    plain = sum(p.numel() for p in ResNet18(width=4).parameters())
    assert sum(p.numel() for p in r.parameters()) > 2.5 * plain


def _with_running_stats(model: nn.Module) -> nn.Module:
    """``model`` with random BN running statistics and affine parameters, in eval mode."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return model.eval()


@pytest.mark.parametrize("make,shape", [
    (lambda: LeNet5("cifar", act="sapl", batchnorm="all"), (5, 3, 32, 32)),
    (lambda: LeNet5("mnist", act="relu", batchnorm="all"), (5, 1, 28, 28)),
    (lambda: MLP((1, 28, 28), (32, 16), 10, act="tanh", batch_norm=True), (5, 1, 28, 28)),
    (lambda: ResNet18(width=8, act="sapl"), (5, 3, 32, 32)),
])
def test_inference_copy_is_the_same_function_and_leaves_the_model_alone(make, shape):
    from symact.models import inference_copy
    model = _with_running_stats(make())
    bns = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    model.train()
    fast = inference_copy(model)
    assert model.training and not fast.training  # the copy is in eval mode, the model as it was
    assert sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()) == bns
    left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fast.modules())
    if isinstance(model, ResNet18):
        assert 0 < left < bns  # the blocks' BNs are not in a Sequential after their convolution: kept
    else:
        assert left == 0
    x = torch.rand(shape)
    with torch.no_grad():
        want = model.eval()(x)
        torch.testing.assert_close(fast(x), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)) if x.ndim == 4 else fast(x),
                                   want, rtol=1e-5, atol=1e-5)

    def last_conv(m):  # one whose weight is not both layouts at once (more than one input channel, k > 1)
        return [c for c in m.modules() if isinstance(c, nn.Conv2d) and c.in_channels > 1 and c.kernel_size[0] > 1][-1]
    if isinstance(model, (LeNet5, ResNet18)):  # CPU convolutions: channels-last weights, unless asked not to
        assert last_conv(fast).weight.is_contiguous(memory_format=torch.channels_last)
        plain = last_conv(inference_copy(model, channels_last=False)).weight
        assert not plain.is_contiguous(memory_format=torch.channels_last)


class _ViewNet(nn.Module):
    """A user's network as people write them: convolutions, then a flatten by ``view`` (which a channels-last
    tensor does not allow), and no ``supports_channels_last`` marker."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 4, stride=2, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.view(x.size(0), -1))


def test_channels_last_only_for_models_that_declare_it():
    from symact.models import channels_last_default

    assert channels_last_default(LeNet5("mnist")) and channels_last_default(ResNet18(width=8))
    assert not channels_last_default(MLP())  # declares it, but has no convolution for the layout to speed up
    assert not channels_last_default(_ViewNet())
    assert not channels_last_default(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()))
    marked = _ViewNet()
    marked.supports_channels_last = True  # a user may declare it, for a class or one instance
    assert channels_last_default(marked)


def test_inference_copy_of_a_user_network_keeps_its_layout_and_runs():
    from symact.models import inference_copy

    torch.manual_seed(0)
    model = _ViewNet().eval()
    x = torch.rand(3, 1, 28, 28)
    fast = inference_copy(model)
    assert not fast.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=0, atol=0)
    forced = inference_copy(model, channels_last=True)  # asked for: the layout changes, and view then fails
    assert forced.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="view"):
        forced(x)


# --------------------------------------------------------------------------- VGG-inspired and CIFAR ResNets


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_vgg_inspired_is_the_thesis_network():
    """kaf-thesis-results.md: three blocks of two 3x3 convolutions (32, 64, 128), BN before each non-linearity,
    max-pooling and dropout after each block, dense 128 with dropout, dense 10."""
    from symact.models import VGGInspired

    m = VGGInspired()
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (3, 32, (3, 3), (1, 1)), (32, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1)), (64, 64, (3, 3), (1, 1)),
        (64, 128, (3, 3), (1, 1)), (128, 128, (3, 3), (1, 1))]
    assert [(f.in_features, f.out_features) for f in m.modules() if isinstance(f, nn.Linear)] == [(2048, 128),
                                                                                                 (128, 10)]
    assert [d.p for d in m.modules() if isinstance(d, nn.Dropout)] == [0.2, 0.25, 0.3, 0.4]
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.modules()) == 3
    seq = list(m.features) + list(m.hidden)
    for i, x in enumerate(seq):  # every ReLU right after a batch normalisation
        if isinstance(x, nn.ReLU):
            assert isinstance(seq[i - 1], (nn.BatchNorm2d, nn.BatchNorm1d))
    assert sum(isinstance(x, nn.ReLU) for x in seq) == 7
    # convolutions: 9*(3*32 + 32*32 + 32*64 + 64*64 + 64*128 + 128*128) + biases (32+32+64+64+128+128)
    conv = 9 * (3 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128) + 448
    dense = 2048 * 128 + 128 + 128 * 10 + 10
    bn = 2 * (448 + 128)
    assert _params(m) == conv + dense + bn == 551_722
    assert m(torch.rand(3, 3, 32, 32)).shape == (3, 10)
    assert m.embed(torch.rand(3, 3, 32, 32)).shape == (3, 128)


def test_vgg_inspired_he_uniform_initialisation():
    from symact.models import VGGInspired

    torch.manual_seed(0)
    m = VGGInspired()
    for layer in m.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            fan_in = layer.weight[0].numel()
            bound = (6 / fan_in) ** 0.5
            assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
            assert torch.all(layer.bias == 0)


@pytest.mark.parametrize("depth,params", [(20, 0.27e6), (32, 0.46e6), (44, 0.66e6), (56, 0.85e6)])
def test_cifar_resnet_has_he_et_al_sizes(depth, params):
    """He et al. (2016) Table 6: 0.27 M, 0.46 M, 0.66 M, 0.85 M parameters with option A shortcuts."""
    from symact.models import CifarResNet

    m = CifarResNet(depth)
    assert _params(m) == pytest.approx(params, rel=0.01)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert len(convs) + 1 == depth  # 6n + 1 convolutions and the dense layer, no projection convolutions
    assert {c.out_channels for c in convs} == {16, 32, 64}
    b = CifarResNet(depth, shortcut="B")
    assert _params(b) - _params(m) == 16 * 32 + 32 * 64 + 2 * (32 + 64)  # two 1x1 projections with BN
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_cifar_resnet_option_a_shortcut_pads_with_zero_channels():
    from symact.models import CifarResNet

    m = CifarResNet(20).eval()
    block = m.layers[3]  # the first block of stage 2: stride 2, 16 -> 32 channels
    x = torch.rand(2, 16, 8, 8)
    s = block.shortcut(x)
    assert s.shape == (2, 32, 4, 4)
    torch.testing.assert_close(s[:, 8:24], x[:, :, ::2, ::2])
    assert torch.all(s[:, :8] == 0) and torch.all(s[:, 24:] == 0)


@pytest.mark.parametrize("name", activations.names())
def test_every_registered_activation_plugs_into_the_cifar_networks(name):
    from symact.models import CifarResNet, VGGInspired

    torch.manual_seed(0)
    # MDOME is an output layer (it needs the number of classes): it plugs in as out_act
    kw = {"out_act": activations.factory(name, n=10)} if name == "mdome" else {"act": name}
    cls = activations.create(name, channels=4, **({"n": 10} if name == "mdome" else {})).__class__
    for m in (VGGInspired(**kw), CifarResNet(20, width=4, **kw)):
        out = m.eval()(torch.rand(2, 3, 32, 32))
        assert out.shape[0] == 2 and torch.isfinite(out).all()
        assert any(isinstance(x, cls) for x in m.modules())


def test_cifar_networks_channels_last_and_swap():
    from symact.models import CifarResNet, VGGInspired, channels_last_default

    for m in (VGGInspired(), CifarResNet(20)):
        assert channels_last_default(m)
        m.eval()
        x = torch.rand(2, 3, 32, 32)
        torch.testing.assert_close(m(x), m.to(memory_format=torch.channels_last)(x.contiguous(
            memory_format=torch.channels_last)))
        swap_activations(m, "kaf")
        assert not any(isinstance(x, nn.ReLU) for x in m.modules())
        assert m(x).shape == (2, 10)


def test_cifar_networks_bad_input():
    from symact.models import CifarResNet, VGGInspired

    for depth in (18, 21, 2, "20"):
        with pytest.raises(ValueError, match="6n"):
            CifarResNet(depth)
    with pytest.raises(ValueError, match="shortcut"):
        CifarResNet(20, shortcut="C")
    with pytest.raises(ValueError, match="dropout"):
        VGGInspired(dropout=(0.2, 0.3))
    with pytest.raises(ValueError, match="dropout rates"):
        VGGInspired(fc_dropout=1.0)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, H, W\)"):
        VGGInspired()(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, H, W\)"):
        CifarResNet(20)(torch.rand(2, 32, 32))
    with pytest.raises(KeyError, match="available"):
        VGGInspired(act="no_such_activation")


def test_zoo_build_rebuilds_the_cifar_networks():
    from symact import zoo

    v = zoo.build("VGGInspired", "kaf")
    r = zoo.build("CifarResNet", "pdome", depth=20)
    assert _params(r) > 0 and v(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert r.depth == 20 and r.shortcut_type == "A"
