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
    """Every committed result file (units of unfinished runs included) belongs to a registered experiment and
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
        if "unit" in prov:  # a unit of an unfinished run (symact.store.units)
            assert path.parent.name == exp.units_dir(prov["profile"]).name and path.stem == prov["unit"], path
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


def test_command_line_runs_and_lists_experiments(capsys):
    from symact.__main__ import main

    _make("cli")
    assert main(["run", "testchapter/cli", "--profile", "quick"]) == 0
    assert "Profile quick" in capsys.readouterr().out and len(CALLS) == 1
    main(["run", "testchapter/cli", "--profile", "quick"])
    assert len(CALLS) == 1  # stored: loaded, not run again
    main(["list", "testchapter"])
    out = capsys.readouterr().out.splitlines()
    assert "testchapter/cli: smoke missing, quick fresh, paper missing" in out
    def waiting_units(cfg):
        raise ValueError("the zoo holds none of the networks it needs")

    experiment("testchapter", "waits", {"smoke": Cfg(1), "quick": Cfg(2), "paper": Cfg(3)},
               units=waiting_units)(lambda cfg, outputs: {})
    main(["list", "testchapter"])
    assert "testchapter/waits: smoke missing (waits on other runs), quick missing (waits on other runs), " \
           "paper missing (waits on other runs)" in capsys.readouterr().out.splitlines()
    with pytest.raises(SystemExit, match="unknown experiment 'testchapter/nope'"):
        main(["run", "testchapter/nope"])
    with pytest.raises(SystemExit, match="unknown chapter"):
        main(["list", "nochapter"])




def test_config_hashes_are_computed_as_before():
    """Stored results never go stale by a refactoring: the hash of a config is pinned (class name and fields)."""
    assert config_hash(Cfg(2)) == "346cd69a6daceb53"
    from symact.experiments import sapl

    stored = json.loads((REPO_ROOT / "results" / "sapl" / "table1-lenet-mnist.paper.json").read_text())
    assert config_hash(sapl.TABLE1[("lenet", "mnist", False)].configs["paper"]) == stored["provenance"]["config_hash"]


def test_the_facade_re_exports_the_store():
    from symact.store import registry, results as store_results, units

    assert results.experiment is registry.experiment and results.REGISTRY is registry.REGISTRY
    assert results.load_or_run is store_results.load_or_run and results.Unit is units.Unit
