"""symact.zoo: networks saved as safetensors come back as the same network, or fail loudly."""
import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from symact import zoo
from symact.results import _fingerprint, config_hash


@pytest.fixture(autouse=True)
def _zoo_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMACT_ZOO", str(tmp_path / "zoo"))
    return tmp_path / "zoo"


@dataclass(frozen=True)
class TinyConfig:
    epochs: int = 1
    lr: float = 0.05
    seed: int = 0


class Tied(nn.Module):
    """A user-defined network with a tied weight, a transposed (non-contiguous) parameter and a float64 buffer."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.a = nn.Linear(width, width)
        self.b = nn.Linear(width, width)
        self.b.weight = self.a.weight  # shared: safetensors refuses it unless copied
        self.t = nn.Parameter(torch.randn(width, 3).t())  # non-contiguous
        self.register_buffer("scale", torch.full((width,), 0.5, dtype=torch.float64))
        self.register_buffer("steps", torch.tensor(7))

    def forward(self, x):
        return self.b(torch.relu(self.a(x))) * self.scale.float() + (self.t.sum())


def tiny_net(width: int = 8) -> nn.Module:
    """A module-level builder (imported back as ``test_zoo:tiny_net``)."""
    return Tied(width)


def _lenet_pdome():
    torch.manual_seed(0)
    return zoo.build("LeNet5", "pdome", variant="mnist", num_classes=10)


LENET_SPEC = {"model": "LeNet5", "activation": "pdome", "variant": "mnist", "num_classes": 10}


def test_round_trip_same_fingerprint_outputs_and_accuracy(needs_data):
    from symact import data

    x, y = data.load("mnist", train=False).head(64).tensors()
    model = _lenet_pdome()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):  # a few steps, so that the weights are not the initial ones
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    cfg = TinyConfig()
    path = zoo.save("dome/table2-lenet-mnist-pdome", model, key="seed0", config=cfg,
                    history={"loss": [2.3, 1.9, float("nan")]}, builder_kwargs=LENET_SPEC,
                    retrain="python -m symact run dome/table2 --profile paper")
    assert path.name == "seed0.json" and path.with_suffix(".safetensors").exists()

    state = torch.random.get_rng_state()
    loaded = zoo.load("dome/table2-lenet-mnist-pdome", seed=0)
    assert torch.equal(state, torch.random.get_rng_state()), "loading must not consume the global random stream"
    assert not loaded.training
    assert zoo.fingerprint(loaded) == zoo.fingerprint(model) == _fingerprint(model)
    with torch.no_grad():
        out, back = model(x), loaded(x)
    assert torch.equal(out, back)
    assert (out.argmax(1) == y).float().mean() == (back.argmax(1) == y).float().mean()

    e = zoo.entry("dome/table2-lenet-mnist-pdome", seed=0)
    assert e["fingerprint"] == zoo.fingerprint(model) and e["config_hash"] == config_hash(cfg)
    assert e["config"] == {"epochs": 1, "lr": 0.05, "seed": 0}
    assert e["history"] == {"loss": [2.3, 1.9, None]}
    assert e["builder"] == "symact.zoo:build" and e["builder_kwargs"] == LENET_SPEC
    assert e["weights"] == "seed0.safetensors" and e["retrain"].startswith("python -m symact run")
    assert e["size_bytes"] == sum(v.numel() * 4 for v in model.state_dict().values())
    assert {"commit", "date", "symact_version", "torch_version"} <= set(e)
    assert zoo.exists("dome/table2-lenet-mnist-pdome", seed=0)
    assert zoo.exists("dome/table2-lenet-mnist-pdome", "seed0", config_hash=config_hash(cfg))
    assert not zoo.exists("dome/table2-lenet-mnist-pdome", "seed0", config_hash="0" * 16)
    assert not zoo.exists("dome/table2-lenet-mnist-pdome", seed=1)
    with pytest.raises(zoo.ZooError, match="stale"):
        zoo.load("dome/table2-lenet-mnist-pdome", seed=0, config_hash="0" * 16)
    listed = zoo.entries()
    assert [(d["name"], d["key"]) for d in listed] == [("dome/table2-lenet-mnist-pdome", "seed0")]
    assert "history" not in listed[0] and zoo.entries("sapl") == []
    assert zoo.total_size() == path.with_suffix(".safetensors").stat().st_size == e["file_bytes"]
    tensors = zoo.load_state_dict("dome/table2-lenet-mnist-pdome", "seed0")
    assert zoo.fingerprint(tensors) == e["fingerprint"]


def test_fingerprint_is_the_results_fingerprint():
    model = _lenet_pdome()
    assert zoo.fingerprint(model) == _fingerprint(model) == zoo.fingerprint(model.state_dict())
    torch.manual_seed(1)
    assert zoo.fingerprint(zoo.build("LeNet5", "pdome", variant="mnist")) != zoo.fingerprint(model)


def test_oversize_network_keeps_its_entry_without_weights(_zoo_root):
    model = _lenet_pdome()
    how = "python -m symact run sapl/table1 --profile paper on the GPU machine"
    zoo.save("sapl/table1-resnet18", model, key="relu-seed0", builder_kwargs=LENET_SPEC, retrain=how, max_mb=0.5)
    folder = _zoo_root / "sapl" / "table1-resnet18"
    assert (folder / "relu-seed0.json").exists() and not (folder / "relu-seed0.safetensors").exists()
    e = zoo.entry("sapl/table1-resnet18", "relu-seed0")
    assert e["weights"] is None and e["file_bytes"] is None and e["size_bytes"] > 0.5e6
    assert e["fingerprint"] == zoo.fingerprint(model)
    assert not zoo.exists("sapl/table1-resnet18", "relu-seed0")
    with pytest.raises(zoo.NoWeights, match="retrain it: python -m symact run sapl/table1"):
        zoo.load("sapl/table1-resnet18", "relu-seed0")
    assert zoo.total_size() == 0
    # saved again under the limit, then over it: the stale weights file goes
    zoo.save("sapl/table1-resnet18", model, key="relu-seed0", builder_kwargs=LENET_SPEC)
    assert zoo.exists("sapl/table1-resnet18", "relu-seed0")
    zoo.save("sapl/table1-resnet18", model, key="relu-seed0", builder_kwargs=LENET_SPEC, max_mb=0.5)
    assert not (folder / "relu-seed0.safetensors").exists()


def test_tampered_weights_are_refused(_zoo_root):
    from safetensors import safe_open
    from safetensors.torch import save_file

    zoo.save("dome/tamper", _lenet_pdome(), builder_kwargs=LENET_SPEC)
    path = _zoo_root / "dome" / "tamper" / "seed0.safetensors"
    with safe_open(path, framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tensors["classifier.bias"] = tensors["classifier.bias"] + 1e-3
    save_file(tensors, path, metadata=meta)  # the header still claims the old fingerprint
    with pytest.raises(zoo.FingerprintMismatch, match="fingerprint"):
        zoo.load("dome/tamper")
    with pytest.raises(zoo.FingerprintMismatch):
        zoo.load_state_dict("dome/tamper")
    assert not zoo.exists("dome/tamper")
    assert zoo.exists("dome/tamper", verify=False)  # the header alone cannot tell


def test_unknown_entry_lists_the_stored_keys():
    model = _lenet_pdome()
    for key in ("relu-seed0", "relu-seed1"):
        zoo.save("sapl/robustness", model, key=key, builder_kwargs=LENET_SPEC)
    with pytest.raises(zoo.EntryNotFound, match="relu-seed0, relu-seed1"):
        zoo.load("sapl/robustness", seed=3)
    with pytest.raises(LookupError, match="nothing is stored under sapl/other"):
        zoo.entry("sapl/other")
    assert not zoo.exists("sapl/other")
    for bad in ("sapl", "a/b/c", "sapl/../x", "sapl/.hidden"):
        with pytest.raises(ValueError, match="chapter"):
            zoo.entry(bad)
    with pytest.raises(ValueError, match="key"):
        zoo.save("sapl/robustness", model, key="a/b")
    with pytest.raises(ValueError, match="not both"):
        zoo.load("sapl/robustness", "relu-seed0", seed=1)


def test_batchnorm_buffers_round_trip():
    torch.manual_seed(0)
    spec = {"model": "LeNet5", "activation": {"name": "sapl", "channels": False}, "variant": "cifar",
            "batchnorm": "all", "num_classes": 10}
    model = zoo.build(**spec)
    model.train()
    with torch.no_grad():
        for _ in range(2):  # running statistics and num_batches_tracked move
            model(torch.rand(8, 3, 32, 32))
    model.eval()
    zoo.save("sapl/section6-lenet", model, key="sapl-seed0", builder_kwargs=spec)
    tensors = zoo.load_state_dict("sapl/section6-lenet", "sapl-seed0")
    nbt = [k for k in tensors if k.endswith("num_batches_tracked")]
    assert nbt and all(tensors[k].dtype == torch.int64 and tensors[k].item() == 2 for k in nbt)
    loaded = zoo.load("sapl/section6-lenet", "sapl-seed0")
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert zoo.fingerprint(loaded) == zoo.fingerprint(model)


def test_user_defined_builder_shared_noncontiguous_and_float64():
    torch.manual_seed(0)
    model = Tied(8)
    zoo.save("fundamentals/tied", model, key="w8", builder=tiny_net, builder_kwargs={"width": 8})
    e = zoo.entry("fundamentals/tied", "w8")
    assert e["builder"] == f"{__name__}:tiny_net"
    assert e["converted"] == {"scale": "float64"}
    loaded = zoo.load("fundamentals/tied", "w8")
    assert isinstance(loaded, Tied) and loaded.steps.item() == 7
    assert loaded.scale.dtype == torch.float64  # the builder's dtype; the stored values were float32
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))

    # no builder: loads into a given network, and says so when none is given
    zoo.save("fundamentals/tied", model, key="nobuilder")
    assert zoo.entry("fundamentals/tied", "nobuilder")["builder"] is None
    with pytest.raises(zoo.ZooError, match="no builder"):
        zoo.load("fundamentals/tied", "nobuilder")
    into = zoo.load("fundamentals/tied", "nobuilder", model=Tied(8))
    assert torch.equal(into.a.weight, model.a.weight)

    # a builder that cannot be imported back, or that builds another architecture, is refused at once
    with pytest.raises(ValueError, match="cannot be imported back"):
        zoo.save("fundamentals/tied", model, key="bad", builder=lambda: Tied(8))
    with pytest.raises(ValueError, match="config must be JSON-able"):
        zoo.save("fundamentals/tied", model, key="bad", config={"make": tiny_net})
    with pytest.raises(zoo.ZooError, match="does not rebuild"):
        zoo.save("fundamentals/tied", model, key="bad", builder=tiny_net, builder_kwargs={"width": 4})
    assert not zoo.exists("fundamentals/tied", "bad")

    # an entry whose builder has gone away
    path = zoo.save("fundamentals/tied", model, key="gone", builder=f"{__name__}:tiny_net",
                    builder_kwargs={"width": 8})
    e = json.loads(path.read_text())
    e["builder"] = "symact.models:NoSuchNet"
    path.write_text(json.dumps(e))
    with pytest.raises(zoo.ZooError, match="cannot be imported"):
        zoo.load("fundamentals/tied", "gone")


def test_build_activation_specs():
    from symact.activations import PDOME, SAPL, Maxout

    net = zoo.build("LeNet5", "pdome", variant="mnist")
    assert sum(isinstance(m, PDOME) for m in net.modules()) == 3
    shared = zoo.build("LeNet5", {"name": "apl", "channels": False}, variant="cifar")
    per_channel = zoo.build("LeNet5", "apl", variant="cifar")
    assert sum(p.numel() for p in shared.parameters()) < sum(p.numel() for p in per_channel.parameters())
    sapl = zoo.build("LeNet5", {"name": "sapl", "per_channel": True}, variant="cifar")  # kwargs reach create
    assert sum(p.numel() for p in sapl.parameters()) > sum(p.numel() for p in shared.parameters())
    assert any(isinstance(m, SAPL) for m in sapl.modules())
    maxout = zoo.build("MLP", act={"name": "maxout", "k": 3, "keep_channels": False}, hidden=[16])
    assert isinstance(maxout.net[3], Maxout) and maxout.net[2].out_features == 48
    saf = zoo.build("LeNet5", "mrelu", fc_act="relu", out_act="symact.experiments.saf:LogRBF", variant="mnist")
    assert type(saf.out_act).__name__ == "LogRBF"
    plain = zoo.build("LeNet5", None, fc_act="relu", variant="mnist")  # None: no activation after convolutions
    assert isinstance(plain.features[2], nn.Identity)
    state = torch.random.get_rng_state()
    zoo.build("ResNet18", "relu", width=4)
    assert torch.equal(state, torch.random.get_rng_state())
    with pytest.raises(ValueError, match="unknown model 'NoNet'"):
        zoo.build("NoNet")
    with pytest.raises(KeyError, match="unknown activation"):
        zoo.build("LeNet5", "nope")


def test_a_stored_zoo_network_reloads_to_its_fingerprint_and_accuracy(monkeypatch, needs_data):
    """The repository's zoo: a network of the Fundamentals chapter's FAT reproduction reloads (its fingerprint
    checked by load) and classifies the stored result's test images exactly as the stored result says."""

    from symact import data
    from symact.attacks import accuracy
    from symact.results import REPO_ROOT

    monkeypatch.setenv("SYMACT_ZOO", str(REPO_ROOT / "zoo"))
    stored = json.loads((REPO_ROOT / "results/fundamentals/fat-mnist-wong.quick.json").read_text())
    run = next(r for r in stored["result"]["runs"] if (r["start"], r["seed"]) == ("unclamped", 0))
    net = zoo.load("fundamentals/fat-mnist-wong", key="unclamped-seed0")
    assert zoo.fingerprint(net) == zoo.entry("fundamentals/fat-mnist-wong", key="unclamped-seed0")["fingerprint"]
    test = data.load("mnist", train=False).head(stored["result"]["n_test"])
    assert accuracy(net, test) == pytest.approx(run["clean_acc"], abs=1e-6)  # one image is 1e-3


def test_fast_adversarial_training_by_wong_et_al_recipe_keeps_pgd_accuracy_far_above_half(monkeypatch, needs_data):
    """Wong et al.'s MNIST recipe with their unclamped random start (the zoo's network of seed 0, trained by
    ``fundamentals/fat-mnist-wong``) keeps PGD-20 accuracy at eps 0.3 far above 50 % on 200 test images, where
    a catastrophically overfitted network (the clamped start's seed 2 in the stored result) falls near 0:
    the test fails if the reproduction's network is not robust."""
    import torchattacks

    from symact import data
    from symact.results import REPO_ROOT

    monkeypatch.setenv("SYMACT_ZOO", str(REPO_ROOT / "zoo"))
    x, y = data.load("mnist", train=False).head(200).tensors("cpu")
    torch.manual_seed(0)
    robust = {}
    for key in ("unclamped-seed0", "clamped-seed2"):
        net = zoo.load("fundamentals/fat-mnist-wong", key=key)
        adv = torchattacks.PGD(net, eps=0.3, alpha=0.03, steps=20, random_start=True)(x, y)
        with torch.no_grad():
            robust[key] = (net(adv).argmax(1) == y).float().mean().item()
    assert robust["unclamped-seed0"] > 0.7
    assert robust["clamped-seed2"] < 0.1  # the contrast: the same recipe with the clamped start collapsed
