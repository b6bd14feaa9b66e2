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
