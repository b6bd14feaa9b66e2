import dataclasses
import json
from pathlib import Path

import pytest

from symact import results
from symact.results import REPO_ROOT, config_hash, experiment, load_or_run


@dataclasses.dataclass(frozen=True)
class Cfg:
    n: int = 1
    seed: int = 0


CALLS = []


def _make(name, quick=Cfg(2)):
    @experiment("testchapter", name, {"smoke": Cfg(1), "quick": quick, "paper": Cfg(3)})
    def exp(cfg):
        CALLS.append(cfg)
        return {"value": cfg.n * 10, "curve": [1.0, float("nan")]}

    return exp


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    for key in [k for k in results.REGISTRY if k[0] == "testchapter"]:
        del results.REGISTRY[key]
    CALLS.clear()


def test_run_then_load_with_provenance():
    exp = _make("a")
    r = exp(profile="quick")
    assert r["value"] == 20 and len(CALLS) == 1
    assert r["curve"][1] is None  # NaN stored as JSON null
    stored = json.loads(exp.path("quick").read_text())
    prov = stored["provenance"]
    for key in ("config", "config_hash", "commit", "symact_version", "torch_version", "device", "seed",
                "wall_seconds", "date", "profile"):
        assert key in prov, key
    assert prov["config_hash"] == config_hash(Cfg(2)) and prov["profile"] == "quick"
    again = exp(profile="quick")
    assert len(CALLS) == 1 and again == r  # loaded, not rerun
    assert "Profile quick" in again.caption()


def test_stale_result_is_reported_and_rerun():
    exp = _make("b")
    exp(profile="quick")
    del results.REGISTRY[("testchapter", "b")]
    changed = _make("b", quick=Cfg(5))
    assert results.stored_status(changed, "quick") == "stale"
    with pytest.warns(UserWarning, match="STALE"):
        r = changed(profile="quick")
    assert r["value"] == 50 and len(CALLS) == 2
    assert results.stored_status(changed, "quick") == "fresh"


def test_recompute_env(monkeypatch):
    exp = _make("c")
    exp(profile="smoke")
    monkeypatch.setenv("SYMACT_RECOMPUTE", "1")
    exp(profile="smoke")
    assert len(CALLS) == 2


def test_auto_prefers_fresh_paper_then_quick(monkeypatch):
    monkeypatch.delenv("SYMACT_PROFILE", raising=False)
    exp = _make("d")
    assert exp()["value"] == 20  # no paper result: quick is run
    exp(profile="paper")
    assert exp()["value"] == 30  # fresh paper result is shown
    assert exp().provenance["profile"] == "paper"


def test_overrides_are_not_stored():
    exp = _make("e")
    r = exp(profile="smoke", n=9)
    assert r["value"] == 90 and not exp.path("smoke").exists()


def test_profile_validation(monkeypatch):
    monkeypatch.setenv("SYMACT_PROFILE", "fast")
    with pytest.raises(ValueError, match="unknown profile"):
        results.active_profile()


def test_experiment_needs_every_profile():
    with pytest.raises(ValueError, match="paper"):
        experiment("testchapter", "f", {"smoke": Cfg(), "quick": Cfg()})


def test_committed_results_match_current_configs():
    """Every committed result file (parts of unfinished runs included) belongs to a registered experiment and
    matches its current config."""
    import symact.experiments  # noqa: F401  (registers every experiment)

    files = [p for p in (REPO_ROOT / "results").rglob("*.json") if ".smoke." not in p.name]
    stale = []
    for path in files:
        d = json.loads(path.read_text())
        prov = d.get("provenance", {})
        assert "commit" in prov and "profile" in prov, f"{path} records no provenance"
        if path.parent.name == "benchmarks":
            continue  # measurements, not experiments
        key = (prov["chapter"], prov["experiment"])
        assert key in results.REGISTRY, f"{path}: experiment {key} is not registered"
        exp = results.REGISTRY[key]
        if "part" in prov:  # a part of an unfinished run (results.part)
            assert path.parent.name == exp.parts_dir(prov["profile"]).name and path.stem == prov["part"], path
            assert not (path.parent.parent / exp.path(prov["profile"]).name).exists(), f"{path}: beside the result"
        else:
            assert path.name == f"{exp.name}.{prov['profile']}.json"
        if prov["config_hash"] != config_hash(exp.configs[prov["profile"]]):
            stale.append(str(path.relative_to(REPO_ROOT)))
    assert not stale, f"stored results whose config no longer matches the code (rerun them): {stale}"


def test_jsonable_handles_arrays_and_non_finite_numbers():
    import numpy as np
    import torch

    from symact.results import _jsonable

    out = _jsonable({"a": np.arange(3), "b": np.float32(0.5), "c": torch.tensor([1.0, float("inf")]), "d": (1, 2)})
    assert out == {"a": [0, 1, 2], "b": 0.5, "c": [1.0, None], "d": [1, 2]}


def test_stored_never_runs_and_symact_commit_overrides(monkeypatch, tmp_path):
    from symact import results

    calls = []

    @results.experiment("test", "stored-only", {p: {"v": 1} for p in results.PROFILES})
    def exp(cfg):
        calls.append(cfg)
        return {"v": cfg["v"]}

    try:
        assert exp.stored("quick") is None and calls == []
        monkeypatch.setenv("SYMACT_COMMIT", "abc123")
        first = exp(profile="quick")
        assert first.provenance["commit"] == "abc123"
        assert exp.stored("quick") == {"v": 1} and len(calls) == 1
    finally:
        results.REGISTRY.pop(("test", "stored-only"), None)


def test_commit_is_recorded_before_the_run(monkeypatch):
    """A long run stores the commit it started from, not the HEAD of the moment it ends."""
    monkeypatch.setenv("SYMACT_COMMIT", "start")

    @experiment("testchapter", "commit-timing", {p: Cfg(1) for p in results.PROFILES})
    def exp(cfg):
        monkeypatch.setenv("SYMACT_COMMIT", "end")
        return {"v": 1}

    assert exp(profile="quick").provenance["commit"] == "start"


def test_caption_keeps_the_dirty_flag(monkeypatch):
    monkeypatch.setenv("SYMACT_COMMIT", "0123456789abcdef+dirty")
    exp = _make("dirty")
    assert "commit 0123456789+dirty," in exp(profile="quick").caption()


def _make_parted(name, stop_after=None):
    """An experiment of three parts that raises after ``stop_after`` of them (an interrupted run)."""
    @experiment("testchapter", name, {"smoke": Cfg(1), "quick": Cfg(2), "paper": Cfg(3)})
    def exp(cfg):
        values = []
        for i in range(3):
            if stop_after is not None and i == stop_after:
                raise KeyboardInterrupt
            values.append(results.part(f"seed={i}", lambda i=i: CALLS.append(i) or {"v": cfg.n * i, "x": (1.5,)}))
        return {"values": values}

    return exp


def test_interrupted_run_resumes_from_its_parts():
    with pytest.raises(KeyboardInterrupt):
        _make_parted("p", stop_after=2)(profile="quick")
    assert CALLS == [0, 1]
    exp = _make_parted("p")
    assert exp.parts("quick") == {"seed=0": {"v": 0, "x": [1.5]}, "seed=1": {"v": 2, "x": [1.5]}}
    stored = json.loads((exp.parts_dir("quick") / "seed=1.json").read_text())["provenance"]
    assert stored["part"] == "seed=1" and stored["profile"] == "quick" and stored["config_hash"] == config_hash(Cfg(2))
    r = exp(profile="quick")
    assert CALLS == [0, 1, 2]  # only the missing part ran
    assert r["values"] == [{"v": 0, "x": [1.5]}, {"v": 2, "x": [1.5]}, {"v": 4, "x": [1.5]}]
    assert sorted(r.provenance["parts"]) == ["seed=0", "seed=1", "seed=2"]
    assert r.provenance["wall_seconds"] >= sum(p["wall_seconds"] for p in r.provenance["parts"].values()) - 0.02
    assert not exp.parts_dir("quick").exists() and exp.parts("quick") == {}
    assert exp(profile="quick") == r and CALLS == [0, 1, 2]  # the whole result is stored


def test_parts_of_another_config_recompute_and_recompute_clears_them():
    with pytest.raises(KeyboardInterrupt):
        _make_parted("q", stop_after=1)(profile="quick")
    path = _make_parted("q").parts_dir("quick") / "seed=0.json"
    d = json.loads(path.read_text())
    d["provenance"]["config_hash"] = "0" * 16
    path.write_text(json.dumps(d))
    exp = _make_parted("q")
    assert exp.parts("quick") == {}  # a part of another config is not fresh
    CALLS.clear()
    exp(profile="quick")
    assert CALLS == [0, 1, 2]
    with pytest.raises(KeyboardInterrupt):
        _make_parted("q", stop_after=1)(profile="quick", recompute=True)
    CALLS.clear()
    _make_parted("q")(profile="quick", recompute=True)
    assert CALLS == [0, 1, 2]  # recompute ignores (and removes) stored parts


def test_parts_outside_stored_runs_and_bad_keys():
    assert results.part("a", lambda: (1, 2.0)) == [1, 2.0]  # no experiment: just the value, JSON-ready
    exp = _make_parted("r")
    r = exp(profile="quick", n=5)  # overrides: nothing stored, parts included
    assert r["values"][2]["v"] == 10 and not exp.parts_dir("quick").exists() and "parts" not in r.provenance
    for bad in ("", "../x", "a/b", ".hidden", 3):
        with pytest.raises(ValueError, match="part key"):
            results.part(bad, lambda: 1)

    @experiment("testchapter", "twice", {"smoke": Cfg(1), "quick": Cfg(2), "paper": Cfg(3)})
    def twice(cfg):
        return [results.part("k", lambda: 1), results.part("k", lambda: 2)]

    with pytest.raises(ValueError, match="used twice"):
        twice(profile="quick")


def _make_trained(name, stop=False):
    """An experiment whose first part 'trains' a network (sets its weights from the config) and whose second
    part measures it; ``stop`` interrupts it between the two."""
    import torch

    @experiment("testchapter", name, {"smoke": Cfg(1), "quick": Cfg(2), "paper": Cfg(3)})
    def exp(cfg):
        net = torch.nn.Linear(2, 1)
        torch.nn.init.zeros_(net.weight)

        def fit():
            CALLS.append("fit")
            with torch.no_grad():
                net.weight.fill_(cfg.n + 0.25)
            return {"loss": [0.5]}

        hist = results.part("train", fit, module=net)
        if stop:
            raise KeyboardInterrupt
        return {"hist": hist, "w": results.part("measure", lambda: net.weight.sum().item())}

    return exp


def test_a_part_that_trains_a_network_stores_its_weights():
    with pytest.raises(KeyboardInterrupt):
        _make_trained("t", stop=True)(profile="quick")
    exp = _make_trained("t")
    assert (exp.parts_dir("quick") / "train.pt").is_file() and CALLS == ["fit"]
    r = exp(profile="quick")
    assert CALLS == ["fit"] and r == {"hist": {"loss": [0.5]}, "w": 4.5}  # weights loaded, not trained again
    assert not exp.parts_dir("quick").exists()
    with pytest.raises(KeyboardInterrupt):
        _make_trained("u", stop=True)(profile="quick")
    (exp.parts_dir("quick").parent / "u.quick.parts" / "train.pt").unlink()  # weights lost: train again
    assert _make_trained("u")(profile="quick")["w"] == 4.5 and CALLS == ["fit", "fit", "fit"]
    with pytest.raises(TypeError, match="nn.Module"):
        results.part("k", lambda: 1, module={"weight": 1})


def _make_refit(name, stop_after=None, draws=None):
    """Train a network (weight set to the next of ``draws``), then measure it; raise after part ``stop_after``."""
    import torch

    @experiment("testchapter", name, {"smoke": Cfg(1), "quick": Cfg(2), "paper": Cfg(3)})
    def exp(cfg):
        net = torch.nn.Linear(2, 1)

        def fit():
            with torch.no_grad():
                net.weight.fill_(next(draws))
                net.bias.zero_()
            return 0

        results.part("train", fit, module=net)
        if stop_after == "train":
            raise KeyboardInterrupt
        w = results.part("measure", lambda: CALLS.append("measure") or net.weight.sum().item())
        if stop_after == "measure":
            raise KeyboardInterrupt
        return {"w": w}

    return exp


def test_parts_computed_on_a_network_trained_again_are_stale():
    """Weights lost after later parts were stored: the network is trained again, and the parts computed on the
    old one are never mixed into the new network's result unless it is the very same network."""
    import torch

    draws = iter([1.0, 2.0, 3.0])
    with pytest.raises(KeyboardInterrupt):
        _make_refit("lost", "measure", draws)(profile="quick")
    exp = _make_refit("lost", None, draws)
    folder = exp.parts_dir("quick")
    prov = {k: json.loads((folder / f"{k}.json").read_text())["provenance"] for k in ("train", "measure")}
    assert prov["measure"]["network"] == prov["train"]["weights"] and len(prov["train"]["weights"]) == 16
    assert exp.parts("quick") == {"train": 0, "measure": 2.0}
    (folder / "train.pt").unlink()
    with pytest.raises(KeyboardInterrupt):
        _make_refit("lost", "train", draws)(profile="quick")  # trained again: weight 2
    assert exp.parts("quick") == {"train": 0}  # the old network's measurement is not shown
    assert exp(profile="quick")["w"] == 4.0 and CALLS == ["measure", "measure"]
    again = iter([5.0, 5.0])  # trained again to the very same weights: the stored parts stay
    with pytest.raises(KeyboardInterrupt):
        _make_refit("same", "measure", again)(profile="quick")
    (folder.parent / "same.quick.parts" / "train.pt").unlink()
    assert _make_refit("same", None, again)(profile="quick")["w"] == 10.0 and CALLS.count("measure") == 3
    with pytest.raises(KeyboardInterrupt):
        _make_refit("swapped", "train", draws)(profile="quick")
    swapped = folder.parent / "swapped.quick.parts" / "train.pt"
    torch.save({"weight": torch.zeros(1, 2), "bias": torch.zeros(1)}, swapped)
    with pytest.raises(ValueError, match="does not hold the network"):
        _make_refit("swapped", None, draws)(profile="quick")


def test_a_part_resumes_from_its_checkpoint():
    """A part interrupted mid-way finds the checkpoint it wrote (part_checkpoint) when the run resumes; the
    checkpoint is removed once the part is stored, and there is none outside a stored run's part."""
    seen = []

    def _make_ckpt(name, stop):
        @experiment("testchapter", name, {"smoke": Cfg(1), "quick": Cfg(2), "paper": Cfg(3)})
        def exp(cfg):
            def fit():
                ckpt = results.part_checkpoint()
                seen.append(ckpt.read_text() if ckpt.exists() else None)
                ckpt.parent.mkdir(parents=True, exist_ok=True)
                ckpt.write_text("epoch 1")
                if stop:
                    raise KeyboardInterrupt
                return 1

            return {"fit": results.part("fit", fit)}

        return exp

    assert results.part_checkpoint() is None
    with pytest.raises(KeyboardInterrupt):
        _make_ckpt("c", stop=True)(profile="quick")
    exp = _make_ckpt("c", stop=False)
    assert (exp.parts_dir("quick") / "fit.ckpt").read_text() == "epoch 1"
    r = exp(profile="quick")
    assert seen == [None, "epoch 1"] and r.provenance["parts"]["fit"]["resumed_from_checkpoint"]
    assert not exp.parts_dir("quick").exists() and results.part_checkpoint() is None


def test_command_line_runs_and_lists_experiments(capsys):
    from symact.__main__ import main

    _make("cli")
    assert main(["run", "testchapter/cli", "--profile", "quick"]) == 0
    assert "Profile quick" in capsys.readouterr().out and len(CALLS) == 1
    main(["run", "testchapter/cli", "--profile", "quick"])
    assert len(CALLS) == 1  # stored: loaded, not run again
    with pytest.raises(KeyboardInterrupt):
        _make_parted("cli-parts", stop_after=1)(profile="paper")
    main(["list", "testchapter"])
    out = capsys.readouterr().out.splitlines()
    assert "testchapter/cli: smoke missing, quick fresh, paper missing" in out
    assert "testchapter/cli-parts: smoke missing, quick missing, paper missing (1 parts)" in out
    with pytest.raises(SystemExit, match="unknown experiment 'testchapter/nope'"):
        main(["run", "testchapter/nope"])
    with pytest.raises(SystemExit, match="unknown chapter"):
        main(["list", "nochapter"])


WORKER_EXPERIMENT = '''
import dataclasses, os, time
from symact import results

@dataclasses.dataclass(frozen=True)
class Cfg:
    n: int = 1
    seed: int = 0

@results.experiment("testworkers", "w", {"smoke": Cfg(1), "quick": Cfg(2), "paper": Cfg(3)})
def w(cfg):
    def one(i):
        start = time.time()
        time.sleep(1.5)
        return {"i": i, "worker": os.environ["SYMACT_WORKER"], "start": start, "end": time.time()}

    return {"parts": [results.part(f"p{i}", lambda i=i: one(i)) for i in range(5)]}
'''


def test_workers_share_one_run(tmp_path):
    """Two processes (``--workers 2``) split the parts of one run, alternately, compute them at the same time,
    and worker 0 stores it."""
    import subprocess
    import sys

    (tmp_path / "workerexp.py").write_text(WORKER_EXPERIMENT)
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{REPO_ROOT}", "SYMACT_EXPERIMENTS": "workerexp"}
    out = subprocess.run([sys.executable, "-m", "symact", "run", "testworkers/w", "--profile", "quick", "--workers",
                          "2"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    path = Path(env.get("SYMACT_RESULTS")) / "testworkers" / "w.quick.json"
    d = json.loads(path.read_text())
    assert [p["worker"] for p in d["result"]["parts"]] == ["0/2", "1/2", "0/2", "1/2", "0/2"]
    assert sorted(d["provenance"]["parts"]) == [f"p{i}" for i in range(5)] and not path.with_suffix("").exists()
    assert d["provenance"]["wall_seconds"] < 12  # compute seconds (5 x 1.5), not the time spent waiting
    mine = {k: [(p["start"], p["end"]) for p in d["result"]["parts"] if p["worker"] == k] for k in ("0/2", "1/2")}
    assert any(a0 < b1 and a1 < b0 for a0, b0 in mine["0/2"] for a1, b1 in mine["1/2"])  # in parallel


def test_bad_worker_settings(monkeypatch):
    from symact.__main__ import main

    exp = _make("bad-worker")
    for bad in ("2/2", "1", "a/b", "-1/2"):
        monkeypatch.setenv("SYMACT_WORKER", bad)
        with pytest.raises(ValueError, match="SYMACT_WORKER must be 'k/n'"):
            exp(profile="quick")
    monkeypatch.setenv("SYMACT_WORKER", "0/2")
    with pytest.raises(ValueError, match="recompute"):
        exp(profile="quick", recompute=True)
    with pytest.raises(SystemExit, match="--workers must be at least 1"):
        main(["run", "testchapter/bad-worker", "--workers", "0"])
