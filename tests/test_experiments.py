"""Every registered experiment runs at the smoke profile and is bit-for-bit repeatable on the CPU."""
import json
import shutil

import pytest

import symact.experiments  # noqa: F401  (registers every experiment)
from symact.results import REGISTRY, REPO_ROOT


def _without_timings(obj):
    """``obj`` without wall-clock measurements: the convention is that their keys end in ``seconds``."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if not k.endswith("seconds")}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


#: the leaderboard's rows (symact.benchmark) are one code path with another activation each: three stand for
#: all of them here (tests/test_benchmark.py and the activations' own tests cover the rest), as two smoke runs
#: of every row would add half an hour to CI
BENCHMARK_ROWS = {("benchmark", "mnist-relu"), ("benchmark", "mnist-sapl"), ("benchmark", "cifar10-kaf")}
KEYS = sorted(k for k in REGISTRY if k[0] != "benchmark" or k in BENCHMARK_ROWS)


@pytest.mark.parametrize("key", KEYS, ids="/".join)
def test_smoke_run_is_repeatable(key, needs_data, monkeypatch, tmp_path):
    monkeypatch.setenv("SYMACT_DEVICE", "cpu")
    # experiments that attack networks of the repository's zoo read them from a copy (tests write no zoo/)
    shutil.copytree(REPO_ROOT / "zoo", tmp_path / "zoo-copy")
    monkeypatch.setenv("SYMACT_ZOO", str(tmp_path / "zoo-copy"))
    exp = REGISTRY[key]
    if getattr(exp.configs["smoke"], "dataset", None) == "cifar100":
        from symact.data import DataNotFoundError, load

        try:
            load("cifar100", train=False, download=False)
        except DataNotFoundError:
            pytest.skip("CIFAR-100 has no copy under the data root (none on the project's offline machines)")
    first = exp(profile="smoke", recompute=True)
    second = exp(profile="smoke", recompute=True)
    assert json.dumps(_without_timings(dict(first)), sort_keys=True) == json.dumps(
        _without_timings(dict(second)), sort_keys=True
    )
    assert first.provenance["config_hash"] == second.provenance["config_hash"]
