"""The S-APL chapter's experiments (symact.experiments.sapl)."""
import dataclasses

import pytest
import torch

from symact.activations import create
from symact.experiments import sapl
from symact.models import MLP
from symact.results import UnitsFailed, stored_units


@pytest.fixture(autouse=True)
def _checkpoints(monkeypatch, tmp_path):
    """Units that checkpoint do it under the test's folder."""
    monkeypatch.setenv("SYMACT_CHECKPOINTS", str(tmp_path / "checkpoints"))


def test_negative_side_mean():
    act = create("sapl")
    assert sapl.negative_side_mean(act) == 0.0  # the ReLU initialisation
    with torch.no_grad():
        act.a_neg.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))  # h(x) = |x| for x < 0
    assert sapl.negative_side_mean(act) == pytest.approx((2 / torch.pi) ** 0.5, rel=1e-4)  # E|X| = sqrt(2/pi)
    with torch.no_grad():
        act.a_neg.mul_(-1)
    assert sapl.negative_side_mean(act) < 0


def test_dynamics_records_snapshots():
    cfg = dataclasses.replace(sapl.dynamics.configs["smoke"], n_train=64, snapshots=3)
    res = sapl.dynamics.run(cfg)
    steps = res["variants"]["sapl"]["steps"]
    shots = res["variants"]["sapl"]["snapshots"]
    assert [s["step"] for s in shots] == [0, steps // 2, steps]  # the last mark is taken after the last step
    assert len(shots[0]["negative_mean"]) == 2 and shots[0]["negative_mean"] == [0.0, 0.0]  # ReLU at step 0
    assert res["variants"]["relu"]["snapshots"] == []


def test_bad_input():
    with pytest.raises(ValueError, match="unknown variants"):
        sapl.dynamics.run(dataclasses.replace(sapl.dynamics.configs["smoke"], variants=("relu", "swishy")))
    with pytest.raises(ValueError, match="dropout"):
        MLP(dropout=1.0)


def test_hinges_counts_parameters_like_the_paper():
    """Table 5 counts 2S slopes per layer (shared) or per neuron: 12 and 1408 for S = 2 on the 256-64-32 MLP."""
    cfg = dataclasses.replace(sapl.hinges.configs["smoke"], S=(2,), n_train=64)
    rows = sapl.hinges.run(cfg)["rows"]
    assert rows["S=2 shared"]["added_parameters"] == sapl.PAPER_TABLE5[4][2] == 12
    assert rows["S=2 per-neuron"]["added_parameters"] == sapl.PAPER_TABLE5[4][3] == 1408
    assert rows["tanh"]["added_parameters"] == 0
    with pytest.raises(ValueError, match="S must be integers"):
        sapl.hinges.run(dataclasses.replace(cfg, S=(7,)))


def test_table1_rows_and_ttest():
    exp = sapl.TABLE1[("lenet", "mnist", False)]
    cfg = dataclasses.replace(exp.configs["smoke"], n_train=64, n_test=100)
    res = exp.run(cfg)
    assert list(res["rows"]) == ["relu", "maxout", "sapl"]
    # every network is seeded on its own: the order of the runs changes no number
    alone = exp.run(dataclasses.replace(cfg, activations=("maxout",), seeds=1))["rows"]["maxout"]["errors"]
    assert alone == res["rows"]["maxout"]["errors"][:1]  # run fifth above, first here
    for row in res["rows"].values():
        assert len(row["errors"]) == 2 and 0 <= row["mean"] <= 1 and row["std"] >= 0
    assert res["ttest"]["best_baseline"] in ("relu", "maxout")
    assert res["ttest"]["p"] is None or 0 <= res["ttest"]["p"] <= 1
    assert set(sapl.TABLE1) == set(sapl.PAPER_TABLE1)
    with pytest.raises(ValueError, match="unknown activations"):
        exp.run(dataclasses.replace(cfg, activations=("relu", "softsign")))


def test_table1_resnet18_rows_and_their_config():
    """The ResNet-18 rows (a GPU job) run at the smoke profile's narrow width, maxout included; a ResNet-18
    row needs the config that carries its width and schedule."""
    exp = sapl.TABLE1_EXTRA[("resnet18", "cifar10", False)]
    # width 8, not less: on our CPUs torch 2.14's channels-last backward of a ResNet-18 of width 4 hangs
    cfg = dataclasses.replace(exp.configs["smoke"], activations=("relu", "maxout"), seeds=1, n_train=64, n_test=50)
    rows = exp.run(cfg)["rows"]
    assert list(rows) == ["relu", "maxout"] and all(0 <= r["mean"] <= 1 for r in rows.values())
    paper = exp.configs["paper"]
    assert (paper.network, paper.width, paper.schedule, paper.seeds) == ("resnet18", 64, "cosine", 5)
    assert set(sapl.TABLE1_EXTRA) == set(sapl.PAPER_TABLE1_EXTRA) and not set(sapl.TABLE1) & set(sapl.TABLE1_EXTRA)
    with pytest.raises(ValueError, match="Table1ResNetConfig"):
        sapl.table1_run(sapl.Table1Config(network="resnet18", dataset="cifar10"))
    with pytest.raises(ValueError, match="dataset in"):
        sapl.table1_run(sapl.Table1Config(dataset="svhn"))


def test_table1_summary_ttest_and_progress(monkeypatch, tmp_path):
    from scipy.stats import ttest_ind

    runs = {"relu": [{"error": e, "seconds": 1.0} for e in (0.10, 0.12, 0.11)],
            "tanh": [{"error": e, "seconds": 1.0} for e in (0.20, 0.22, 0.21)],
            "sapl": [{"error": e, "seconds": 2.0} for e in (0.09, 0.10, 0.08)]}
    out = sapl.table1_summary(runs)
    assert out["rows"]["relu"]["mean"] == pytest.approx(0.11) and out["rows"]["relu"]["std"] == pytest.approx(0.01)
    assert out["ttest"]["best_baseline"] == "relu"
    assert out["ttest"]["p"] == pytest.approx(ttest_ind([0.09, 0.10, 0.08], [0.10, 0.12, 0.11], equal_var=False).pvalue)
    assert sapl.table1_summary({"sapl": runs["sapl"][:1], "relu": runs["relu"]})["ttest"]["p"] is None  # one seed

    # an interrupted paper run: its finished networks are shown, never a whole table
    monkeypatch.setenv("SYMACT_RESULTS", str(tmp_path))
    key = ("mlp", "mnist", False)
    exp = sapl.TABLE1[key]
    assert sapl.table1_progress(key) is None
    calls = []

    def one(cfg, name, seed, train_set, test_set, checkpoint=None):
        if len(calls) == 3:
            raise RuntimeError("stopped")
        calls.append((name, seed))
        return {"error": 0.1 + seed / 100, "seconds": 5.0}

    monkeypatch.setattr(sapl.table1, "_table1_one", one)
    with pytest.raises(UnitsFailed) as err:
        exp(profile="paper")
    assert len(err.value.failures) == 42  # every other network was tried, and is reported
    prog = sapl.table1_progress(key)
    assert calls == [("sapl", 0), ("relu", 0), ("leaky_relu", 0)] and (prog["done"], prog["total"]) == (3, 45)
    assert list(prog["rows"]) == ["relu", "leaky_relu", "sapl"] and prog["rows"]["sapl"]["errors"] == [0.1]
    assert prog["ttest"] == {"best_baseline": "relu", "p": None}  # one seed each: no p-value


def _rows(s):
    """Every attack row of one image set of a robustness result, by a readable name."""
    rows = {f"{k}-pixel": v for k, v in s["onepixel"].items()}
    rows.update({f"fgsm {e}": v for e, v in s["fgsm"].items()})
    rows.update({k: s[k] for k in ("cw", "pgd", "autoattack")})
    return rows


def test_robustness_smoke_keys_rates_and_intervals():
    exp = sapl.ROBUSTNESS["sapl"]
    cfg = exp.configs["smoke"]
    res = exp.run(cfg)
    assert res["activation"] == "sapl" and 0 <= res["test_acc"] <= 1 and len(res["train_loss"]) == cfg.epochs
    assert set(res["sets"]) == {str(cfg.n_images)}
    s = res["sets"][str(cfg.n_images)]
    assert set(s["onepixel"]) == {"1", "3", "5"} and set(s["fgsm"]) == {str(e) for e in cfg.fgsm_eps}
    assert s["n"] == cfg.n_images and s["n_strong"] == cfg.n_strong and s["pgd"]["n"] == cfg.n_strong
    for name, row in _rows(s).items():
        lo, hi = row["interval"]
        assert 0 <= lo <= row["success_rate"] <= hi <= 1, name
        assert row["correct"] == round(row["clean_acc"] * row["n"]), name
    for row in s["onepixel"].values():
        assert len(row["rates"]) == cfg.de_repeats and row["success_rate"] == pytest.approx(sum(row["rates"]) / cfg.de_repeats)


def test_robustness_activations_and_large_set(monkeypatch):
    """APL has S = 5 hinges at 0, +-1, +-2 and Swish beta 0.2 (symmetric-apl.txt Appendix 8.2); a large set
    is drawn with the same seed, so the paper's 100 images are among its 1,000."""
    import inspect

    from symact.data import ImageData

    part_images = sapl.DE_PART_IMAGES

    apl = create("apl", channels=3, **sapl.ROBUSTNESS_ACTS["apl"])
    assert apl.b.shape == (3, 5) and sorted(apl.b[0].tolist()) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert float(create("swish", **sapl.ROBUSTNESS_ACTS["swish"]).beta) == pytest.approx(0.2)
    imgs = ImageData(torch.zeros(50, 1, 2, 2, dtype=torch.uint8), torch.arange(50), "toy", tuple("ab"), "toy")
    assert torch.equal(imgs.sample(30, seed=3).y[:10], imgs.sample(10, seed=3).y)
    exp = sapl.ROBUSTNESS["relu"]
    cfg = dataclasses.replace(exp.configs["smoke"], n_images=4, n_large=6, pixels=(1,), fgsm_eps=(0.03,), de_repeats=1)
    res = exp.run(cfg)
    assert set(res["sets"]) == {"4", "6"} and res["sets"]["6"]["onepixel"]["1"]["rates"] == [
        res["sets"]["6"]["onepixel"]["1"]["success_rate"]]  # the large set is attacked once
    # differential evolution on a set larger than DE_PART_IMAGES runs as units of that many images, pooled
    monkeypatch.setattr(sapl.robustness, "DE_PART_IMAGES", 4)
    keys = [u.key for u in exp.units(cfg)]
    blocked = exp.run(cfg)["sets"]["6"]["onepixel"]["1"]
    assert {"6-de1-r0-0", "6-de1-r0-1", "4-de1-r0"} <= set(keys) and "6-de1-r0" not in keys
    assert blocked["n"] == 6 and blocked["correct"] == round(blocked["clean_acc"] * 6)
    # the blocks are evaluation.evaluate's own batches, so the pooled numbers are those of one unit
    assert inspect.signature(sapl.robustness.evaluate).parameters["batch_size"].default == part_images
    with pytest.raises(ValueError, match="unknown activation"):
        exp.run(dataclasses.replace(cfg, activation="tanh"))
    with pytest.raises(ValueError, match="n_images"):
        exp.run(dataclasses.replace(cfg, pixels=()))


def test_robustness_registry_and_config_hashes():
    from symact.results import REGISTRY, config_hash

    assert set(sapl.ROBUSTNESS) == {"relu", "apl", "swish", "sapl"}
    assert {a for _, a in sapl.PAPER_TABLE2 if _ == "lenet"} == set(sapl.ROBUSTNESS)
    hashes = set()
    for act, exp in sapl.ROBUSTNESS.items():
        assert REGISTRY[("sapl", f"robustness-lenet-cifar10-{act}")] is exp
        paper = exp.configs["paper"]
        assert (paper.de_steps, paper.de_popsize, paper.de_repeats, paper.n_images) == (40, 400, 5, 100)
        assert paper.n_large >= 1000 and paper.fgsm_eps == (0.02, 0.04, 0.06, 0.08) and paper.pgd_steps == 50
        for prof, cfg in exp.configs.items():
            h = config_hash(cfg)
            assert h == config_hash(dataclasses.replace(cfg)) == config_hash(sapl.RobustnessConfig(**{
                f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}))
            hashes.add(h)
    assert len(hashes) == 12  # every activation and profile has its own hash


def test_dynamics_lenet_records_every_layer():
    """Fig. 2: LeNet-5 (two convolutions, one hidden fully connected layer) has three S-APL layers."""
    exp = sapl.dynamics_lenet
    cfg = exp.configs["smoke"]
    res = exp.run(cfg)
    assert res["data"] == "MNIST" and set(res["variants"]) == set(cfg.variants)
    run = res["variants"]["sapl"]
    assert run["steps"] == cfg.epochs * -(-cfg.n_train // cfg.batch_size)
    assert [s["step"] for s in run["snapshots"]] == [0, run["steps"] // 2, run["steps"]]
    for shot in run["snapshots"]:
        assert len(shot["shape"]) == len(shot["negative_mean"]) == 3
        assert all(len(s) == len(run["x"]) == 121 for s in shot["shape"])
    assert run["snapshots"][0]["negative_mean"] == [0.0, 0.0, 0.0]  # the ReLU initialisation
    for r in res["variants"].values():
        assert len(r["train_loss"]) == cfg.epochs and 0 <= r["test_acc"] <= 1
    assert res["variants"]["relu"]["snapshots"] == []
    with pytest.raises(ValueError, match="snapshots"):
        exp.run(dataclasses.replace(cfg, snapshots=1))
    with pytest.raises(ValueError, match="unknown variants"):
        exp.run(dataclasses.replace(cfg, variants=("prelu",)))


def test_knn_accuracy():
    import numpy as np

    two = np.r_[np.zeros((5, 2)), np.ones((5, 2)) * 10] + np.arange(10)[:, None] * 1e-3
    assert sapl.knn_accuracy(two, np.r_[[0] * 5, [1] * 5], k=3) == 1.0
    line = np.arange(10.0)[:, None]
    # alternating labels, k = 2: inner points see two of the other label; the end points tie, and ties go to
    # label 0, right for the point at 0 (label 0), wrong for the point at 9 (label 1)
    assert sapl.knn_accuracy(line, np.arange(10) % 2, k=2) == pytest.approx(0.1)
    assert sapl.knn_accuracy(line[1:-1], (np.arange(1, 9) % 2), k=1) == 0.0  # every neighbour has the other label
    with pytest.raises(ValueError, match="1 <= k < N"):
        sapl.knn_accuracy(line, np.arange(10) % 2, k=10)


def test_tsne_smoke_points_labels_and_separation():
    exp = sapl.tsne
    cfg = exp.configs["smoke"]
    res = exp.run(cfg)
    assert res["classes"] == ["frog", "ship"] and res["data"] in ("CIFAR-10", "CIFAR-10 (JPEG q75 copy)")
    assert set(res["activations"]) == {"relu", "sapl"}
    for r in res["activations"].values():
        n = cfg.n_per_class * len(cfg.classes)
        assert len(r["points"]) == len(r["labels"]) == n and all(len(p) == 2 for p in r["points"])
        assert all(round(v, 4) == v for p in r["points"] for v in p)
        assert sorted(set(r["labels"])) == [0, 1] and r["labels"].count(0) == cfg.n_per_class
        assert r["logits_all"]["n"] == 2000  # 1,000 frog and 1,000 ship test images
        assert len(r["draws"]) == cfg.draws and 0 <= r["test_acc"] <= 1 and r["n_test"] == cfg.n_test
        for score in [r["logits_all"]] + [d[space] for d in r["draws"] for space in ("tsne", "logits")]:
            assert -1 <= score["silhouette"] <= 1 and 0 <= score["knn"] <= 1
    for bad, match in (({"classes": ("frog", "dragon")}, "classes"), ({"activations": ("tanh",)}, "unknown"),
                       ({"perplexity": 60.0}, "perplexity"), ({"n_per_class": 1001}, "exceeds")):
        with pytest.raises(ValueError, match=match):
            exp.run(dataclasses.replace(cfg, **bad))


def test_new_experiments_registry_and_config_hashes():
    """Fig. 2 and Fig. 4 at the paper profile follow the paper (t-SNE learning rate 30, perplexity 40, frog and
    ship); every profile hashes stably and differently; the stored results of the older experiments stay fresh
    (their configs were not changed by the shared LeNet-5 helper)."""
    from symact.results import REGISTRY, config_hash, stored_status

    assert REGISTRY[("sapl", "dynamics-lenet")] is sapl.dynamics_lenet
    assert REGISTRY[("sapl", "tsne-lenet-cifar10")] is sapl.tsne
    paper = sapl.tsne.configs["paper"]
    assert (paper.tsne_lr, paper.perplexity, paper.classes, paper.n_per_class) == (30.0, 40.0, ("frog", "ship"), 100)
    assert sapl.dynamics_lenet.configs["paper"].variants == tuple(sapl.VARIANTS)
    for exp in (sapl.dynamics_lenet, sapl.tsne):
        hashes = set()
        for cfg in exp.configs.values():
            h = config_hash(cfg)
            assert h == config_hash(type(cfg)(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}))
            hashes.add(h)
        assert len(hashes) == 3
    for exp in [sapl.dynamics, sapl.hinges, *sapl.ROBUSTNESS.values()]:
        assert stored_status(exp, "quick") in ("fresh", "missing"), exp.name


def test_hinges_cifar10_rows_and_counts():
    """Tables 5 and 6, CIFAR-10: our LeNet-5 has four activation layers (convolutions of 32, 32 and 64 channels,
    a hidden layer of 64 units), so a shared S-APL adds 4 * 2S slopes (the paper's 16 for S = 2) and one set per
    channel (32 + 32 + 64 + 64) * 2S; per neuron it would be 2S per unit of every feature map."""
    exp = sapl.hinges_cifar10
    cfg = exp.configs["smoke"]
    res = exp.run(cfg)
    rows = res["rows"]
    assert res["data"] in ("CIFAR-10", "CIFAR-10 (JPEG q75 copy)")
    assert set(rows) == {"tanh", "maxout"} | {f"S={S} {k}" for S in cfg.S for k in ("shared", "per-channel")}
    for name, row in rows.items():
        assert 0 <= row["test_error"] <= 1 and row["epoch_seconds"] > 0, name
    assert cfg.S == (2, 3)
    assert rows["S=2 shared"]["added_parameters"] == 4 * 2 * 2 == sapl.PAPER_TABLE5_CIFAR10[4][2] == 16
    assert rows["S=3 shared"]["added_parameters"] == 4 * 2 * 3 == sapl.PAPER_TABLE5_CIFAR10[6][2] == 24
    assert rows["S=2 per-channel"]["added_parameters"] == (32 + 32 + 64 + 64) * 2 * 2 == 768
    assert rows["S=3 per-channel"]["added_parameters"] == 1152
    assert rows["S=2 shared"]["parameters"] - rows["tanh"]["parameters"] == 16
    assert rows["tanh"]["added_parameters"] == rows["maxout"]["added_parameters"] == 0
    # tanh: conv 3->32, 32->32, 32->64 (5x5, bias), BN 2 per channel, fc 1024->64, BN, fc 64->10
    tanh = (3 * 25 * 32 + 32) + (32 * 25 * 32 + 32) + (32 * 25 * 64 + 64) + (1024 * 64 + 64) + 2 * 192 + 650
    # maxout with six pieces: every layer before an activation six times wider, the next one's input unchanged
    maxout = (3 * 25 * 192 + 192) + (32 * 25 * 192 + 192) + (32 * 25 * 384 + 384) + (1024 * 384 + 384) + 2 * 1152 + 650
    assert (rows["tanh"]["parameters"], rows["maxout"]["parameters"]) == (tanh, maxout) == (145962, 872522)
    assert res["activation_units"] == [32 * 32 * 32, 32 * 16 * 16, 64 * 8 * 8, 64]
    for bad, match in (({"S": (7,)}, "S must be integers"), ({"S": ()}, "S must be integers"),
                       ({"maxout_pieces": 1}, "maxout_pieces")):
        with pytest.raises(ValueError, match=match):
            exp.run(dataclasses.replace(cfg, **bad))


def test_hinges_cifar10_configs_and_paper_constants():
    """The paper profile is Table 1's LeNet-5 recipe with S = 2..6 and six maxout pieces; every profile hashes
    stably and differently; the MNIST ``hinges`` results stay fresh (its config was not changed)."""
    import json

    from symact.results import REGISTRY, REPO_ROOT, config_hash

    exp = sapl.hinges_cifar10
    assert REGISTRY[("sapl", "hinges-cifar10")] is exp
    paper, t1 = exp.configs["paper"], sapl.TABLE1[("lenet", "cifar10", False)].configs["paper"]
    assert paper.S == (2, 3, 4, 5, 6) and paper.maxout_pieces == 6 and paper.n_train is None and paper.n_test is None
    assert (paper.epochs, paper.batch_size, paper.lr, paper.weight_decay) == (t1.epochs, t1.batch_size, t1.lr,
                                                                               t1.weight_decay)
    hashes = {config_hash(cfg) for cfg in exp.configs.values()}
    assert len(hashes) == 3
    for cfg in exp.configs.values():
        assert config_hash(cfg) == config_hash(sapl.HingesLeNetConfig(**dataclasses.asdict(cfg)))
    # the quick result committed in the repository (the tests store theirs elsewhere; smoke results are not kept)
    stored = json.loads((REPO_ROOT / "results" / "sapl" / "hinges.quick.json").read_text())
    assert stored["provenance"]["config_hash"] == config_hash(sapl.hinges.configs["quick"])
    assert set(sapl.PAPER_TABLE5_CIFAR10) == set(sapl.PAPER_TABLE5) == {4, 6, 8, 10, 12}
    assert sapl.PAPER_TABLE5_CIFAR10[12] == (28.92, 28.03, 48, ">225k", 30)
    assert sapl.PAPER_TABLE6_CIFAR10 == {"tanh": 21, "maxout": 31}


def test_robustness_resumes_on_the_stored_network(monkeypatch):
    """An interrupted run resumes on the network it trained (its weights stored with the unit) and gives what
    an uninterrupted run gives, training time aside."""
    from symact.results import _jsonable

    exp = sapl.ROBUSTNESS["relu"]
    whole = _jsonable(exp.run(exp.configs["smoke"]))  # not stored
    make = sapl.attacks.make_attack

    def stop_at_cw(name, *args, **kwargs):
        if name == "cw":
            raise RuntimeError("stopped")
        return make(name, *args, **kwargs)

    monkeypatch.setattr(sapl.attacks, "make_attack", stop_at_cw)
    n = exp.configs["smoke"].n_images
    with pytest.raises(UnitsFailed, match=f"{n}-cw"):
        exp(profile="smoke")
    stored = set(stored_units(exp, "smoke"))
    assert {"train", "test", f"{n}-de5-r1", f"{n}-fgsm0.08", f"{n}-pgd"} <= stored and f"{n}-cw" not in stored
    assert (exp.units_dir("smoke") / "train.safetensors").is_file()
    monkeypatch.setattr(sapl.attacks, "make_attack", make)
    monkeypatch.setattr(sapl.robustness, "train", lambda *a, **k: pytest.fail("the stored network was trained again"))
    resumed = dict(exp(profile="smoke"))
    assert resumed.pop("train_seconds") > 0 and whole.pop("train_seconds") > 0
    assert resumed == whole


def test_robustness_progress_shows_the_finished_image_sets(monkeypatch):
    """An interrupted run's progress counts its units and gives every image set whose attacks are all stored,
    as the finished run gives it."""
    from symact.results import _jsonable

    exp = sapl.ROBUSTNESS["swish"]
    cfg = dataclasses.replace(exp.configs["smoke"], n_large=14, pixels=(1, 3), fgsm_eps=(0.03,))
    monkeypatch.setitem(exp.configs, "smoke", cfg)
    monkeypatch.setattr(sapl.robustness, "DE_PART_IMAGES", 12)  # the 14-image set runs in two units per attack, the 12 in one
    whole = _jsonable(exp.run(cfg))  # not stored
    assert sapl.robustness_progress("swish", "smoke") is None
    make, calls = sapl.attacks.make_attack, []

    def stop_at_the_last(name, *args, **kwargs):
        calls.append(name)
        if name == "autoattack" and calls.count("autoattack") == 2:
            raise RuntimeError("stopped")
        return make(name, *args, **kwargs)

    monkeypatch.setattr(sapl.attacks, "make_attack", stop_at_the_last)
    with pytest.raises(UnitsFailed, match="14-autoattack"):
        exp(profile="smoke")
    prog = sapl.robustness_progress("swish", "smoke")
    # train, test; per set 2 pixel counts x repeats x blocks, 1 FGSM, CW, PGD, AutoAttack: 2 + (2*2 + 4) + (2*2 + 4)
    assert (prog["done"], prog["total"]) == (len(stored_units(exp, "smoke")), 18) and prog["done"] == prog["total"] - 1
    assert prog["train_seconds"] > 0 and list(prog["sets"]) == ["12"]
    assert _jsonable(prog["sets"])["12"] == whole["sets"]["12"]
    monkeypatch.setattr(sapl.attacks, "make_attack", make)
    assert _jsonable(dict(exp(profile="smoke"))["sets"]) == whole["sets"]  # resumed: the same numbers
    done = sapl.robustness_progress("swish", "smoke")  # finished: the stored result, every unit counted
    assert (done["done"], done["total"]) == (18, 18) and _jsonable(done["sets"]) == whole["sets"]


def test_table7_counts_every_p_value():
    """symmetric-apl.txt Table 7 has 22 p-values, 0.012 to 0.073, 10 of them above 0.05 (0.050 is not above)."""
    df = sapl.table7()
    assert df.attrs == {"n": 22, "min": 0.012, "max": 0.073, "above": 10, "alpha": 0.05}
    assert all(sapl.PAPER_TABLE7[k][1] == sapl.PAPER_TABLE1[k][3] for k in sapl.PAPER_TABLE1)
    assert all(sapl.PAPER_TABLE7[k][1] == sapl.PAPER_TABLE1_EXTRA[k][3] for k in sapl.PAPER_TABLE1_EXTRA)
    with pytest.raises(ValueError, match="alpha"):
        sapl.table7(alpha=1.5)


def test_robustness_overview_flags_underfit_and_saturation():
    def res(loss, sat):
        row = {"success_rate": 1.0 if sat else 0.5, "mean_l2": None if sat else 0.3, "mean_linf": 0.02, "correct": 7}
        return {"test_acc": 0.75, "train_loss": [1.0, loss],
                "sets": {"100": {"n": 10, "clean_acc": 0.7, "cw": row, "pgd": row, "autoattack": row}}}
    df = sapl.robustness_overview({"relu": res(0.1, True), "swish": res(0.64, True), "sapl": res(0.06, False)})
    assert df.loc["swish", "underfit"] and not df.loc["relu", "underfit"]
    assert df.loc["relu", "strong_saturated"] and not df.loc["sapl", "strong_saturated"]
    assert df.loc["relu", "test_error"] == pytest.approx(25.0)
    with pytest.raises(ValueError, match="at least one"):
        sapl.robustness_overview({})


def test_strong_units_and_smoke_run(monkeypatch, tmp_path):
    cfg = sapl.STRONG.configs["smoke"]
    keys = [u.key for u in sapl.robustness._strong_units(cfg)]
    assert keys[:2] == ["relu-s0-train", "sapl-s0-train"] and "sapl-s0-sanity" in keys and len(keys) == 10
    sanity = next(u for u in sapl.robustness._strong_units(cfg) if u.key == "sapl-s0-sanity")
    assert sanity.needs == ("sapl-s0-train", "relu-s0-train")  # the ReLU network of the seed is the surrogate
    assert sapl.STRONG.configs["paper"].seeds >= 3 and sapl.STRONG.configs["paper"].autoattack == "autoattack"
    with pytest.raises(ValueError, match="unknown activations"):
        sapl.robustness._strong_units(dataclasses.replace(cfg, activations=("gelu",)))
    with pytest.raises(ValueError, match="autoattack"):
        sapl.robustness._strong_units(dataclasses.replace(cfg, autoattack="aa"))
    res = sapl.STRONG.run(cfg)
    r = res["networks"]["sapl"]["0"]
    assert set(r) == {"train_loss", "test_acc", "curve", "cw", "fab", "sanity"}
    assert len(r["cw"]["distances"]) == cfg.n_images and r["curve"]["n"] == cfg.n_images
