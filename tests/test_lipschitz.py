"""symact.lipschitz: operator norms against exact SVDs, the network bound against measured gradients, MaxMin's
gradient-norm preservation, KAF constants against symact.theory_kaf, the certified radius, the penalty, bad input;
and the kaf-lipschitz experiment's tables on a constructed result."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from symact import lipschitz as L
from symact.activations import create
from symact.evaluation import encode_outcomes
from symact.models import Normalize
from symact.theory_kaf import kaf_lipschitz, lipschitz as kaf_module_lipschitz


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _matrix(layer, shape):
    """The exact matrix of an affine layer's linear part, by torch.func.jacrev, in float64."""
    lay = layer.double().eval()
    n = int(np.prod(shape))
    f = lambda v: (lay(v.reshape(1, *shape)) - lay(torch.zeros(1, *shape, dtype=torch.float64))).flatten()  # noqa
    return torch.func.jacrev(f)(torch.zeros(n, dtype=torch.float64)).detach()


@pytest.mark.parametrize("conv,shape", [
    (lambda: nn.Conv2d(3, 4, 3, padding=1), (3, 6, 6)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1, stride=2), (2, 7, 5)),
    (lambda: nn.Conv2d(2, 2, 5, padding=0), (2, 8, 8)),
])
def test_operator_norm_matches_exact_svd_and_fft_bounds_it(conv, shape):
    torch.manual_seed(0)
    c = conv()
    exact = float(torch.linalg.matrix_norm(_matrix(c, shape), ord=2))
    assert L.operator_norm(c, shape) == pytest.approx(exact, rel=1e-6)            # Lanczos
    p = L.operator_norm(c, shape, method="power", iters=3000, tol=1e-12)
    assert p <= exact * (1 + 1e-9) and p == pytest.approx(exact, rel=1e-3)         # from below
    assert L.conv_norm_bound(c, shape) >= exact * (1 - 1e-9)                      # from above
    warm, method = L.layer_lipschitz(c, shape, iters=200)
    assert method == "operator" and warm <= exact * (1 + 1e-9) and warm == pytest.approx(exact, rel=2e-3)
    # the reshaped kernel's norm (what spectral_norm divides by) is not the operator norm
    reshaped = float(torch.linalg.matrix_norm(c.weight.detach().double().reshape(c.out_channels, -1), ord=2))
    assert abs(reshaped - exact) > 1e-3 * exact


def test_operator_norm_of_pooling_and_dense():
    assert L.operator_norm(nn.AdaptiveAvgPool2d(1), (4, 8, 8)) == pytest.approx(1 / 8, rel=1e-9)
    assert L.operator_norm(nn.AvgPool2d(2), (2, 4, 4)) == pytest.approx(1 / 2, rel=1e-9)
    lin = nn.Linear(7, 5)
    exact = float(torch.linalg.matrix_norm(lin.weight.detach().double(), ord=2))
    assert L.layer_lipschitz(lin, (7,)) == (pytest.approx(exact), "svd")
    assert L.operator_norm(lin, (7,)) == pytest.approx(exact, rel=1e-8)


def test_diagonal_layers_and_pooling_constants():
    bn = nn.BatchNorm2d(3).eval()
    with torch.no_grad():
        bn.running_var.copy_(torch.tensor([0.25, 4.0, 1.0]))
        bn.weight.copy_(torch.tensor([1.0, -3.0, 0.5]))
    assert L.layer_lipschitz(bn, (3, 4, 4))[0] == pytest.approx(max(1 / math.sqrt(0.25 + 1e-5), 3 / math.sqrt(4 + 1e-5)))
    assert L.layer_lipschitz(Normalize((0.5,) * 3, (0.2, 0.25, 0.5)), (3, 4, 4))[0] == pytest.approx(5.0)
    assert L.layer_lipschitz(nn.MaxPool2d(2), (1, 4, 4)) == (1.0, "pool")
    assert L.layer_lipschitz(nn.MaxPool2d(3, stride=1), (1, 6, 6))[0] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="training mode"):
        L.layer_lipschitz(nn.BatchNorm2d(3).train(), (3, 4, 4))


def test_activation_constants_and_kaf_against_theory():
    assert L.activation_lipschitz(nn.ReLU()) == 1.0
    assert L.activation_lipschitz(nn.LeakyReLU(3.0)) == 3.0
    assert L.activation_lipschitz(nn.ELU(alpha=2.0)) == 2.0 and L.activation_lipschitz(nn.ELU()) == 1.0
    assert L.activation_lipschitz(nn.Tanh()) == 1.0 and L.activation_lipschitz(nn.Sigmoid()) == 0.25
    assert L.activation_lipschitz(create("maxmin")) == 1.0
    torch.manual_seed(0)
    k = create("kaf", channels=6, bandwidth="thesis")
    per = kaf_module_lipschitz(k).per_channel
    assert L.activation_lipschitz(k) == pytest.approx(per.max())
    # the slope sampled on a dense grid never exceeds the exact constant, and reaches it
    s = torch.linspace(-8, 8, 20001, requires_grad=True)
    slope = torch.autograd.grad(k(s[None, :].expand(6, -1).T.contiguous()).sum(), s)[0].abs()
    assert slope.max() <= per.sum() + 1e-6  # s feeds every channel: the sum of the channels' slopes bounds it
    x = torch.linspace(-8, 8, 20001, dtype=torch.float64)
    for c in range(6):
        a = k.alpha.detach()[c].double()
        d = torch.linspace(-3, 3, 20, dtype=torch.float64)
        fp = (-2 * k.gamma * a * (x[:, None] - d) * torch.exp(-k.gamma * (x[:, None] - d) ** 2)).sum(1).abs()
        assert fp.max() <= per[c] * (1 + 1e-9) and fp.max() == pytest.approx(per[c], rel=1e-4)
    with pytest.raises(TypeError, match="no exact Lipschitz constant.*GELU"):
        L.activation_lipschitz(nn.GELU())


def _random_net(act):
    torch.manual_seed(1)
    return nn.Sequential(Normalize((0.5, 0.5), (0.3, 0.4)), nn.Conv2d(2, 4, 3, padding=1), act(4), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, padding=1, stride=2), nn.BatchNorm2d(4), act(4), nn.Flatten(),
                         nn.Linear(4 * 2 * 2, 8), act(8), nn.Linear(8, 3)).eval()


@pytest.mark.parametrize("act", [lambda c: nn.ReLU(), lambda c: create("kaf", channels=c, bandwidth="thesis"),
                                 lambda c: create("maxmin"), lambda c: nn.ELU(alpha=1.5)])
def test_bound_is_above_every_measured_gradient_norm(act):
    net = _random_net(act)
    with torch.no_grad():  # BatchNorm with non-trivial statistics
        net[5].running_var.uniform_(0.2, 3.0)
        net[5].running_mean.uniform_(-1, 1)
    b = L.lipschitz_bound(net, (2, 8, 8))
    bf = L.lipschitz_bound(net, (2, 8, 8), conv="fft")
    assert bf.bound >= b.bound * (1 - 1e-9)
    assert b.bound == pytest.approx(np.prod([c.constant for c in b.layers]))
    assert len(b.table()) == len(net)
    # the Jacobian's spectral norm at random inputs (its sup is the network's Lipschitz constant)
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for _ in range(20):
        x = torch.rand(2, 8, 8, generator=g)
        J = torch.autograd.functional.jacobian(lambda v: net(v[None])[0], x).reshape(3, -1)
        worst = max(worst, float(torch.linalg.matrix_norm(J, ord=2)))
    assert worst <= b.bound
    assert worst > 0


def test_maxmin_preserves_gradient_norm_and_relu_does_not():
    torch.manual_seed(0)
    x = torch.randn(16, 8, 5, 5, requires_grad=True)
    v = torch.randn(16, 8, 5, 5)
    (g,) = torch.autograd.grad(create("maxmin")(x), x, v)
    assert torch.allclose(g.norm(), v.norm())
    (g,) = torch.autograd.grad(torch.relu(x), x, v)
    assert g.norm() < 0.9 * v.norm()


def test_bound_checks_the_layers_compose_to_the_model():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            return x + self.a(x)

    m = Residual()
    with pytest.raises(TypeError, match="not an nn.Sequential"):
        L.lipschitz_bound(m, (4,))
    with pytest.raises(ValueError, match="not the model's forward"):
        L.lipschitz_bound(m, (4,), layers=[m.a])
    with pytest.raises(TypeError, match="no Lipschitz constant for the layer Residual"):
        L.lipschitz_bound(nn.Sequential(m), (4,))
    with pytest.raises(TypeError, match="affine layer"):
        L.operator_norm(nn.ReLU(), (4,))
    with pytest.raises(ValueError, match="input_shape"):
        L.lipschitz_bound(nn.Sequential(nn.Linear(4, 2)), (0,))
    with pytest.raises(ValueError, match="cannot take inputs"):
        L.operator_norm(nn.Linear(4, 2), (5,))
    with pytest.raises(ValueError, match="conv must be"):
        L.layer_lipschitz(nn.Linear(4, 2), (4,), conv="svd")
    with pytest.raises(ValueError, match="groups 1"):
        L.conv_norm_bound(nn.Conv2d(2, 2, 3, groups=2), (2, 5, 5))


def test_certified_radius_formula_and_accuracy():
    z = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 2.5], [1.0, 1.0, 0.0]])
    y = torch.tensor([0, 1, 0])
    r = L.certified_radius(z, y, 2.0)
    assert torch.allclose(r, torch.tensor([2.0, -0.5, 0.0], dtype=torch.float64) / (math.sqrt(2) * 2.0))
    assert L.certified_accuracy(r, 0.0) == pytest.approx(1 / 3)
    assert L.certified_accuracy(r, 1.0) == 0.0
    # the certificate holds: no perturbation below the radius changes a linear model's prediction
    torch.manual_seed(0)
    lin = nn.Linear(5, 4)
    lip = float(torch.linalg.matrix_norm(lin.weight.detach(), ord=2))
    x, yy = torch.randn(200, 5), torch.randint(0, 4, (200,))
    with torch.no_grad():
        rad = L.certified_radius(lin(x), yy, lip)
        for _ in range(50):
            d = torch.randn_like(x)
            d = d / d.norm(dim=1, keepdim=True) * rad.clamp_min(0).float()[:, None] * 0.999
            ok = rad > 0
            assert (lin(x + d).argmax(1)[ok] == yy[ok]).all()
    with pytest.raises(ValueError, match="lipschitz"):
        L.certified_radius(z, y, 0.0)
    with pytest.raises(ValueError, match="logits"):
        L.certified_radius(z[0], y, 1.0)
    with pytest.raises(ValueError, match="labels"):
        L.certified_radius(z, torch.tensor([0, 1, 3]), 1.0)
    with pytest.raises(ValueError, match="eps"):
        L.certified_accuracy(r, -0.1)


def test_kaf_penalty_surrogate_bounds_the_exact_constant_and_is_differentiable():
    from symact.activations.kaf import dictionary

    torch.manual_seed(0)
    k = create("kaf", channels=5, bandwidth="thesis")
    d, g = dictionary(k.D, k.boundary, k.bandwidth)
    exact = kaf_lipschitz(k.alpha.detach().double().numpy(), d, g).max()
    s = L.kaf_layer_surrogate(k)
    n = 5 * len(np.arange(d.min() - 4 / math.sqrt(g), d.max() + 4 / math.sqrt(g) + 0.05 / math.sqrt(g),
                          0.05 / math.sqrt(g)))
    assert exact * (1 - 1e-3) <= float(s) <= exact * (1 + math.log(n) / 50 + 1e-3)
    net = nn.Sequential(nn.Linear(3, 5), k, nn.Linear(5, 2))
    p = L.kaf_lipschitz_penalty(net, target=0.5)
    p.backward()
    assert float(p) == pytest.approx(math.log(float(s) / 0.5), rel=1e-5)
    assert k.alpha.grad is not None and k.alpha.grad.abs().sum() > 0
    assert float(L.kaf_lipschitz_penalty(net, target=1e6)) == 0.0
    assert float(L.kaf_lipschitz_penalty(nn.Sequential(nn.Linear(2, 2)))) == 0.0
    with pytest.raises(TypeError, match="KAF"):
        L.kaf_layer_surrogate(nn.ReLU())
    with pytest.raises(ValueError, match="target"):
        L.kaf_lipschitz_penalty(net, target=0)


def test_spectral_normalise_keeps_reshaped_norm_one_not_the_operator_norm():
    torch.manual_seed(0)
    m = L.spectral_normalise(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                           nn.Linear(8 * 16, 4)))
    m.train()
    for _ in range(30):
        m(torch.rand(2, 3, 4, 4))
    m.eval()
    w = m[0].weight.detach()
    assert float(torch.linalg.matrix_norm(w.reshape(8, -1), ord=2)) == pytest.approx(1.0, rel=1e-2)
    assert L.layer_lipschitz(m[0], (3, 4, 4))[0] > 1.05
    with pytest.raises(ValueError, match="no Conv or Linear"):
        L.spectral_normalise(nn.Sequential(nn.ReLU()))


# ------------------------------------------------------------------------------------------- the experiment


def _constructed_result(cert_broken=False):
    rng = np.random.default_rng(0)
    nets = {}
    for training in ("standard", "lipschitz"):
        for act in ("relu", "kaf", "maxmin"):
            r = rng.normal(0.1, 0.2, 40)
            cert = r > 36 / 255
            robust = cert | (rng.random(40) < 0.3) & (r > 0)
            if cert_broken and act == "kaf" and training == "lipschitz":
                robust = robust & ~cert
            net = {"act": act, "training": training, "seed": 0, "history": {},
                   "certificate": {"radius": r.tolist(), "certified": encode_outcomes(cert), "n": 40,
                                   "certified_acc": float(cert.mean()), "bound": 5.0, "bound_fft": 5.1,
                                   "activation_product": 1.0, "linear_product": 5.0,
                                   "layers": [{"index": 0, "layer": "Linear", "constant": 5.0, "method": "svd",
                                               "fft": 5.0}]}}
            if training == "lipschitz":
                net["evaluation"] = {"n": 40, "attacks": {"autoattack": {"robust_acc": float(robust.mean()),
                                                                          "outcome": encode_outcomes(robust)}}}
            nets[f"{training}-{act}-seed0"] = net
    return {"networks": dict(sorted(nets.items())), "eps": 36 / 255}


def test_experiment_tables_on_constructed_result():
    from symact.experiments import kaf_lipschitz as kl

    res = _constructed_result()
    s = kl.summary_table(res)
    assert list(s["network"])[:3] == ["standard-relu-seed0", "standard-kaf-seed0", "standard-maxmin-seed0"]
    assert s["autoattack"].isna().sum() == 3
    c = kl.curve_table(res, radii=[0.0, 0.1])
    assert len(c) == 12 and (c.groupby("network")["certified"].diff().dropna() <= 0).all()
    ok = kl.sanity_table(res)
    assert len(ok) == 3 and ok["ok"].all() and (ok["certified"] <= ok["autoattack"]).all()
    bad = kl.sanity_table(_constructed_result(cert_broken=True))
    assert not bad.set_index("act").loc["kaf", "ok"]
    assert list(kl.bound_table(res, "lipschitz-kaf-seed0")["method"]) == ["svd"]
    with pytest.raises(KeyError):
        kl.bound_table(res, "nope")
    with pytest.raises(ValueError, match="kaf_lipschitz"):
        kl.summary_table({"x": 1})


def test_experiment_config_and_builder_bad_input():
    from symact.experiments import kaf_lipschitz as kl

    with pytest.raises(ValueError, match="unknown"):
        kl._check_config(kl.LipschitzConfig(acts=("gelu",)))
    with pytest.raises(ValueError, match="aa_steps"):
        kl._check_config(kl.LipschitzConfig(aa_steps=0))
    with pytest.raises(ValueError, match="training"):
        kl.lipschitz_small_cnn("relu", training="other")
    m = kl.lipschitz_small_cnn("maxmin", training="lipschitz")
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    b = L.lipschitz_bound(m.eval(), (3, 32, 32), layers=kl.model_layers(m), conv="fft")
    assert b.product("activation") == 1.0


def test_claim_is_registered_and_reads_only_stored_results():
    import symact.experiments  # noqa: F401
    from symact.claims import CLAIMS

    c = CLAIMS["kaf/lipschitz-certified"]
    assert c.chapter == "kaf" and c.section == "kaf-lipschitz"
    assert c.judge("paper") is None and c.judge("quick") is None  # nothing stored in the test's results folder
