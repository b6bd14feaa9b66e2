"""Units of long runs (symact.store.units) with the real engine: in-process and a LocalCluster of two worker
processes on the loopback, failures, a killed worker, resumable training, stale and lost units."""
import dataclasses
import json
import os

import pytest
import torch

from symact import results
from symact.results import Unit, UnitsFailed, config_hash, experiment, run_units, stored_units, unit_counts
from symact.store import units as units_mod


@dataclasses.dataclass(frozen=True)
class Cfg:
    n: int = 2
    epochs: int = 3
    seed: int = 0


CALLS = []          # units run in this process (the in-process runner)
FAIL = set()        # unit keys that raise (in this process)
MARKERS = {}        # key -> a file: the unit stops (raises, or kills its process) the first time, when it is absent


def _toy_data(n: int = 96):
    from symact.data import ImageData

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = (torch.where(y[:, None, None, None] == 1, 170, 85) + torch.randint(-40, 41, (n, 1, 4, 4), generator=g))
    return ImageData(x.clamp(0, 255).to(torch.uint8), y, "toy", ("dark", "bright"), "toy task")


def _net():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def fit(cfg, stop_after=None, marker=None, checkpoint=None):
    """A training unit: a tiny network, ``cfg.epochs`` epochs, checkpointed in its folder; it raises after
    ``stop_after`` steps when ``marker`` does not exist yet (and creates it)."""
    from symact.train import TrainConfig, train

    CALLS.append("fit")
    torch.manual_seed(cfg.seed)
    model = _net()
    steps = [0]

    def hook(xb, yb, gen):
        steps[0] += 1
        if stop_after is not None and steps[0] > stop_after and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("stopped mid-training")
        return xb, yb

    hist = train(model, _toy_data(), TrainConfig(epochs=cfg.epochs, batch_size=32, lr=0.1, seed=cfg.seed,
                                                 early_stop=False),
                 batch_fn=hook, progress=False, checkpoint=None if checkpoint is None else checkpoint / "t.ckpt")
    return {"history": {k: hist[k] for k in ("train_loss",)}, "weights": model.state_dict(),
            "threads": torch.get_num_threads()}


def square(cfg, i, marker=None, kill=False):
    """A small unit: ``i * i * cfg.n``; with ``marker``, it fails (raises, or with ``kill`` kills its own
    process) the first time."""
    CALLS.append(i)
    if i in FAIL:
        raise ValueError(f"unit {i} fails")
    if marker is not None and not os.path.exists(marker):
        open(marker, "w").close()
        if kill:
            os._exit(1)
        raise RuntimeError("first try fails")
    return {"i": i, "sq": i * i * cfg.n, "x": (1.5, float("nan"))}


def measure(cfg, trained):
    """Needs ``fit``: the trained network's weight sum and its output on a fixed input."""
    CALLS.append("measure")
    model = _net()
    model.load_state_dict(trained["weights"])
    x = _toy_data(8).x.float() / 255
    return {"sum": float(sum(v.sum() for v in model.state_dict().values())),
            "out": model(x).detach().tolist(), "loss": trained["history"]["train_loss"]}


def _units(cfg, markers=None, kill=False, stop_after=None, fit_marker=None):
    markers = markers or {}
    return [Unit("fit", fit, (cfg,), {"stop_after": stop_after, "marker": fit_marker}, checkpoint=True, zoo=True),
            *[Unit(f"sq{i}", square, (cfg, i), {"marker": markers.get(i), "kill": kill}) for i in range(3)],
            Unit("measure", measure, (cfg,), needs=("fit",))]


def _combine(cfg, outputs):
    return {"squares": [outputs[f"sq{i}"]["sq"] for i in range(3)], "x": outputs["sq0"]["x"],
            "measure": outputs["measure"], "loss": outputs["fit"]["history"]["train_loss"]}


def _make(name, **kw):
    return experiment("testunits", name, {"smoke": Cfg(1), "quick": Cfg(2), "paper": Cfg(3)},
                      units=lambda cfg: _units(cfg, **kw))(_combine)


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMACT_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setattr(units_mod, "_zoo_module", lambda: None)  # the zoo test below turns it on (in its own folder)
    yield
    for key in [k for k in results.REGISTRY if k[0] == "testunits"]:
        del results.REGISTRY[key]
    CALLS.clear()
    FAIL.clear()


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of two single-thread worker processes on the loopback for the module, as --workers 2."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(units_mod.worker_environment()), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=":0", resources={"GPU": 1}) as lc, Client(lc, set_as_default=False) as c:
        yield c


def _no_seconds(r):
    return json.loads(json.dumps(dict(r)))


def test_in_process_and_local_cluster_give_the_same_numbers(cluster):
    exp = _make("same")
    here = exp(profile="quick")
    assert CALLS == ["fit", 0, 1, 2, "measure"]  # in this process, in the declared order
    assert here["squares"] == [0, 2, 8] and here["x"] == [1.5, None]
    prov = here.provenance
    assert set(prov["units"]) == {"fit", "sq0", "sq1", "sq2", "measure"} and prov["units"]["fit"]["threads"] == 1
    assert not exp.units_dir("quick").exists()  # folded into the result's provenance
    there = exp.run(exp.configs["quick"], client=cluster)  # two worker processes; stores nothing
    assert CALLS == ["fit", 0, 1, 2, "measure"]  # nothing ran here
    assert _no_seconds(there) == _no_seconds(here)
    env = cluster.run(lambda: {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")})
    assert all(v == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"} for v in env.values()), env
    # a unit runs with its own thread count wherever it runs
    assert exp.run(exp.configs["quick"])["measure"] == here["measure"]


def test_a_failing_unit_is_reported_the_others_stored_and_the_rerun_finishes():
    exp = _make("fails")
    FAIL.add(1)
    with pytest.raises(UnitsFailed, match="sq1") as err:
        exp(profile="quick")
    assert set(err.value.failures) == {"sq1"} and "ValueError: unit 1 fails" in err.value.failures["sq1"]
    assert set(stored_units(exp, "quick")) == {"fit", "sq0", "sq2", "measure"}
    assert unit_counts(exp, "quick") == (4, 5)
    assert (exp.units_dir("quick") / "fit.safetensors").is_file()
    stored = json.loads((exp.units_dir("quick") / "sq2.json").read_text())["provenance"]
    assert stored["unit"] == "sq2" and stored["config_hash"] == config_hash(Cfg(2)) and stored["threads"] == 1
    for field in ("commit", "device", "wall_seconds", "date"):
        assert field in stored
    FAIL.clear()
    CALLS.clear()
    r = exp(profile="quick")
    assert CALLS == [1] and r["squares"] == [0, 2, 8]  # only the missing unit ran
    assert r.provenance["units"]["fit"]["loaded"] and "loaded" not in r.provenance["units"]["sq1"]
    assert r.provenance["wall_seconds"] >= sum(u["wall_seconds"] for u in r.provenance["units"].values()) - 0.02
    assert exp(profile="quick") == r and CALLS == [1]


def test_a_unit_whose_need_fails_is_not_run(monkeypatch):
    import symact.train as train_mod

    def broken(*a, **k):
        raise RuntimeError("training broke")

    monkeypatch.setattr(train_mod, "train", broken)
    exp = _make("needs-fail")
    with pytest.raises(UnitsFailed) as err:
        exp(profile="quick")
    assert set(err.value.failures) == {"fit", "measure"} and "needs failed unit(s) fit" in err.value.failures["measure"]
    assert set(stored_units(exp, "quick")) == {"sq0", "sq1", "sq2"}


def test_a_killed_worker_loses_nothing_stored(cluster, tmp_path):
    """A unit that kills its own worker process the first time: Dask runs it again on a worker, the run
    completes with the numbers of an undisturbed run."""
    exp = _make("killed", markers={1: str(tmp_path / "killed-once")}, kill=True)
    r = exp(profile="quick", client=cluster)
    assert (tmp_path / "killed-once").exists() and r["squares"] == [0, 2, 8]
    assert exp(profile="quick") == r  # stored


def test_training_resumes_from_its_checkpoint(tmp_path):
    whole = _make("whole")
    full = whole.run(whole.configs["quick"])
    exp = _make("resume", stop_after=5, fit_marker=str(tmp_path / "stopped"))  # 3 steps an epoch: in epoch 2
    with pytest.raises(UnitsFailed, match="stopped mid-training"):
        exp(profile="quick")
    ckpts = list((tmp_path / "checkpoints").rglob("t.ckpt"))
    assert len(ckpts) == 1 and "fit" in ckpts[0].parts  # the unit's own folder, outside results/
    r = exp(profile="quick")
    assert r.provenance["units"]["fit"]["resumed_from_checkpoint"]
    assert r["measure"] == full["measure"] and r["loss"] == full["loss"]  # as an uninterrupted run
    assert not list((tmp_path / "checkpoints").rglob("*.ckpt"))


def test_units_of_another_config_are_stale_and_recompute_clears_them():
    exp = _make("stale")
    FAIL.add(2)
    with pytest.raises(UnitsFailed):
        exp(profile="quick")
    path = exp.units_dir("quick") / "sq0.json"
    d = json.loads(path.read_text())
    d["provenance"]["config_hash"] = "0" * 16
    path.write_text(json.dumps(d))
    assert "sq0" not in stored_units(exp, "quick")
    FAIL.clear()
    CALLS.clear()
    exp(profile="quick")
    assert sorted(map(str, CALLS)) == ["0", "2"]
    CALLS.clear()
    exp(profile="quick", recompute=True)
    assert CALLS == ["fit", 0, 1, 2, "measure"]


def test_units_computed_on_lost_weights_are_computed_again_unless_the_same(monkeypatch):
    """Weights lost (a clone without the ignored files): the network is trained again; units computed on it are
    kept only if the new weights have the stored fingerprint; weights that are not the stored ones raise."""
    exp = _make("lost")
    FAIL.add(0)
    with pytest.raises(UnitsFailed):
        exp(profile="quick")
    folder = exp.units_dir("quick")
    prov = {k: json.loads((folder / f"{k}.json").read_text())["provenance"] for k in ("fit", "measure")}
    assert prov["measure"]["needs"] == {"fit": prov["fit"]["weights"]} and len(prov["fit"]["weights"]) == 16
    (folder / "fit.safetensors").unlink()
    FAIL.clear()
    CALLS.clear()
    exp(profile="quick")
    assert CALLS[:1] == ["fit"] and "measure" not in CALLS  # retrained to the same weights: measure kept

    FAIL.add(0)
    with pytest.raises(UnitsFailed):
        _make("lost2")(profile="quick")
    folder = folder.parent / "lost2.quick.units"
    d = json.loads((folder / "measure.json").read_text())
    d["provenance"]["needs"]["fit"] = "f" * 16  # computed on another network
    (folder / "measure.json").write_text(json.dumps(d))
    assert "measure" not in stored_units(_make("lost2"), "quick")
    FAIL.clear()
    CALLS.clear()
    _make("lost2")(profile="quick")
    assert CALLS == [0, "measure"]

    FAIL.add(0)
    with pytest.raises(UnitsFailed):
        _make("swapped")(profile="quick")
    from safetensors.torch import load_file, save_file

    wfile = folder.parent / "swapped.quick.units" / "fit.safetensors"
    save_file({k: torch.zeros_like(v) for k, v in load_file(str(wfile)).items()}, str(wfile))
    FAIL.clear()
    with pytest.raises(ValueError, match="does not hold the weights"):
        _make("swapped")(profile="quick")


def test_declarations_are_checked():
    for bad in ("", "../x", "a/b", ".hidden", 3):
        with pytest.raises(ValueError, match="unit key"):
            Unit(bad, square)
    with pytest.raises(ValueError, match="threads"):
        Unit("a", square, threads=0)
    twice = experiment("testunits", "twice", {p: Cfg() for p in results.PROFILES},
                       units=lambda cfg: [Unit("a", square, (cfg, 1)), Unit("a", square, (cfg, 2))])(_combine)
    with pytest.raises(ValueError, match="used twice"):
        twice(profile="quick")
    order = experiment("testunits", "order", {p: Cfg() for p in results.PROFILES},
                       units=lambda cfg: [Unit("b", measure, (cfg,), needs=("a",)), Unit("a", fit, (cfg,))])(_combine)
    with pytest.raises(ValueError, match="not listed before it"):
        order(profile="quick")


def test_overrides_run_the_units_and_store_nothing():
    exp = _make("over")
    r = exp(profile="quick", n=5)
    assert r["squares"] == [0, 5, 20] and not exp.units_dir("quick").exists() and not exp.path("quick").exists()


def test_zoo_units_at_the_paper_profile(monkeypatch):
    """A zoo=True unit's weights go to the zoo (the real one, in this test's folder) at the paper profile, and
    come back from it instead of training."""
    from symact import zoo

    monkeypatch.setattr(units_mod, "_zoo_module", lambda: zoo)
    exp = _make("zoo")
    exp(profile="quick")
    assert zoo.entries() == []  # only at the paper profile
    first = exp(profile="paper")
    (entry,) = zoo.entries()
    assert (entry["name"], entry["key"], entry["config_hash"]) == ("testunits/zoo", "fit", config_hash(Cfg(3)))
    assert zoo.exists("testunits/zoo", "fit", config_hash=config_hash(Cfg(3)))
    assert "--profile paper" in zoo.entry("testunits/zoo", "fit")["retrain"]
    CALLS.clear()
    again = exp(profile="paper", recompute=True)
    assert "fit" not in CALLS and again == first and again.provenance["units"]["fit"]["zoo"]


def test_command_line_lists_units_and_runs_them(capsys):
    from symact.__main__ import main
    from symact.results import run_status

    exp = _make("cli")
    FAIL.add(1)
    with pytest.raises(UnitsFailed):
        main(["run", "testunits/cli", "--profile", "paper"])
    main(["list", "testunits"])
    assert "testunits/cli: smoke missing, quick missing, paper missing (4/5 units)" in capsys.readouterr().out
    assert run_status(exp, "paper") == "missing (4/5 units)" and run_status(exp, "quick") == "missing"
    FAIL.clear()
    assert main(["run", "testunits/cli", "--profile", "paper", "--workers", "1"]) == 0
    assert run_status(exp, "paper") == "fresh"
    assert exp.stored("paper")["squares"] == [0, 3, 12]
    with pytest.raises(SystemExit, match="--workers must be at least 1"):
        main(["run", "testunits/cli", "--workers", "0"])
    with pytest.raises(SystemExit, match="exclude each other"):
        main(["run", "testunits/cli", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])


def test_run_units_returns_outputs_and_provenance():
    exp = _make("direct")
    run = run_units(exp, Cfg(2))
    assert run.outputs["sq2"]["sq"] == 8 and isinstance(run.outputs["fit"]["weights"]["1.weight"], torch.Tensor)
    assert run.provenance["fit"]["weights"] and run.compute_seconds > 0 and run.elapsed_seconds > 0


def test_the_worker_settings_file_matches_the_runners():
    """DASK_CONFIG=symact/store/dask (for `dask worker` started by hand) sets what the runner sets for its own
    LocalCluster: no MALLOC_TRIM_THRESHOLD_, one OpenMP thread, no statistical profiler."""
    import dask.config

    from symact.results import REPO_ROOT

    cfg = dask.config.collect([str(REPO_ROOT / "symact" / "store" / "dask")], env={})
    env = cfg["distributed"]["nanny"]["pre-spawn-environ"]
    want = units_mod.worker_environment()["distributed.nanny.pre-spawn-environ"]
    assert {k: (None if v is None else str(v)) for k, v in env.items()} == want
    assert cfg["distributed"]["worker"]["profile"]["enabled"] is False
    assert units_mod.worker_environment()["distributed.worker.profile.enabled"] is False
    with dask.config.set(cfg):  # the rarer background intervals, in both
        for key, value in units_mod.QUIET_INTERVALS.items():
            assert dask.config.get(key) == value == units_mod.worker_environment()[key]


def test_workers_two_starts_a_local_cluster_and_leaves_this_process_as_it_was(monkeypatch, capsys):
    """``workers=2`` (``--workers 2``): a LocalCluster of two processes, its dashboard address printed; its
    nannies' environment settings do not leak into this process."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    exp = _make("two")
    r = exp(profile="smoke", workers=2)
    assert r["squares"] == [0, 1, 4] and CALLS == []  # every unit ran in the workers
    assert "2 Dask workers, dashboard" in capsys.readouterr().err
    assert "OMP_NUM_THREADS" not in os.environ and "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_stage_keeps_its_value_and_the_random_state_after_it(tmp_path):
    import numpy as np

    from symact.store import checkpoints

    torch.manual_seed(0)
    first = checkpoints.stage(tmp_path, "s", lambda: {"x": torch.rand(3), "n": np.float64(2.5), "a": np.arange(3)})
    assert first["n"] == 2.5 and type(first["n"]) is float and first["a"] == [0, 1, 2]
    after = torch.rand(2)
    torch.manual_seed(7)
    calls = []
    again = checkpoints.stage(tmp_path, "s", lambda: calls.append(1))
    assert not calls and torch.equal(again["x"], first["x"]) and again["a"] == [0, 1, 2]
    assert torch.equal(torch.rand(2), after)  # the draws after the stage are those of the first run
    assert checkpoints.stage(None, "s", lambda: 5) == 5
