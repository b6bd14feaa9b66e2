"""The project's own files: pins agree, the book's table of contents is complete."""
import re
import tomllib

import yaml

from symact.results import REPO_ROOT


def _pyproject_requirements() -> set[str]:
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    reqs = set(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs |= set(extra)
    return {r.replace(" ", "") for r in reqs}


def _environment_requirements() -> set[str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {r.replace(" ", "") for r in pip if not r.startswith("-e")}


def test_environment_yml_agrees_with_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert py == env, f"only in pyproject: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_torch_is_pinned_exactly():
    reqs = _pyproject_requirements()
    assert "torch==2.14.1" in reqs and "torchvision==0.29.1" in reqs


def test_toc_lists_every_chapter_and_each_exists():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc["chapters"]]
    for f in files:
        assert (REPO_ROOT / f"{f}.md").is_file(), f
    listed = {f"{f}.md" for f in files}
    on_disk = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "book").glob("*.md")}
    assert on_disk == listed, f"chapters not in _toc.yml: {on_disk - listed}"


def test_notebook_chapters_are_myst_notebooks_without_outputs():
    for path in (REPO_ROOT / "book").glob("*.md"):
        text = path.read_text()
        if "```{code-cell}" in text:
            assert re.search(r"format_name: myst", text), f"{path.name} lacks the jupytext md:myst header"
    assert not list((REPO_ROOT / "book").glob("*.ipynb")), "chapters are stored as MyST Markdown, not .ipynb"


def test_readme_names_the_two_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme


def test_device_scripts_run_registered_experiments_with_the_pinned_torchattacks():
    """tools/device_sapl.sh, tools/device_kaf.sh and tools/device_benchmark.sh name experiments that exist; tools/device.sh fetches
    the torchattacks that pyproject pins."""
    from symact import benchmark  # noqa: F401  (registers the leaderboard's rows)
    from symact.experiments import sapl
    from symact.results import REGISTRY

    script = (REPO_ROOT / "tools" / "device_sapl.sh").read_text()
    acts = re.search(r"^\s*acts=\((.*?)\);", script, re.M).group(1).split()
    assert sorted(acts) == sorted(sapl.ROBUSTNESS), "tools/device_sapl.sh and sapl.ROBUSTNESS list other activations"
    assert "sapl/robustness-lenet-cifar10-" in script
    script = (REPO_ROOT / "tools" / "device_benchmark.sh").read_text()
    rows = re.search(r"^\s*rows=\((.*?)\);", script, re.M).group(1).split()
    for dataset in ("mnist", "cifar10"):
        missing = [r for r in rows if ("benchmark", f"{dataset}-{r}") not in REGISTRY]
        assert not missing, f"tools/device_benchmark.sh names rows that are not registered: {missing}"
    import symact.experiments  # noqa: F401  (registers the chapters' experiments)

    script = (REPO_ROOT / "tools" / "device_kaf.sh").read_text()
    exps = re.search(r"^EXPERIMENTS=\((.*?)^\)", script, re.M | re.S).group(1).split()
    assert exps and all(tuple(e.split("/")) in REGISTRY for e in exps), f"tools/device_kaf.sh names unregistered {exps}"
    pin = re.search(r"torchattacks==[\d.]+", (REPO_ROOT / "tools" / "device.sh").read_text()).group(0)
    assert pin in _pyproject_requirements(), f"tools/device.sh fetches {pin}, pyproject pins another"


def test_readme_states_the_current_ci_time():
    """The README's one figure for a CI run agrees with the last run's .ci/timings.json (within 2 minutes)."""
    import json

    total = json.loads((REPO_ROOT / ".ci" / "timings.json").read_text())["total_s"]
    m = re.search(r"takes about (\d+) minutes from a clean clone", (REPO_ROOT / "README.md").read_text())
    assert m, "the README states how long CI takes as 'takes about N minutes from a clean clone'"
    assert abs(int(m.group(1)) - total / 60) <= 2, (
        f"README says about {m.group(1)} minutes, .ci/timings.json {total} s: update the README")
