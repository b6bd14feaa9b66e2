import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from symact import plotting  # noqa: E402


def _fig():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_savefig_writes_three_stable_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMACT_FIGURES", str(tmp_path))
    plotting.set_theme()
    paths = plotting.savefig(_fig(), "chap/line")
    assert sorted(p.name for p in paths) == ["line.pdf", "line.png", "line.svg"]
    first = {p.suffix: p.read_bytes() for p in paths}
    plotting.savefig(_fig(), "chap/line")
    assert all(p.read_bytes() == first[p.suffix] for p in paths)  # same figure, same bytes


def test_smoke_profile_never_overwrites_committed_figures(monkeypatch):
    monkeypatch.delenv("SYMACT_FIGURES")
    monkeypatch.setenv("SYMACT_PROFILE", "smoke")
    assert plotting.figures_dir().parts[-2:] == ("_build", "smoke-figures")


@pytest.mark.parametrize("name", ["noslash", "a/b/c", "a/b.png", "a/ b"])
def test_bad_names(name):
    with pytest.raises(ValueError, match="chapter/figure-name"):
        plotting.savefig(_fig(), name)


def test_publish_glues_where_the_files_are_for_the_download_links(tmp_path, monkeypatch):
    import myst_nb

    monkeypatch.setenv("SYMACT_FIGURES", str(tmp_path))
    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display=True: glued.__setitem__(key, value))
    plotting.publish(_fig(), "chap/line")
    assert glued["chap-line-files"] == str(tmp_path / "chap" / "line")  # symact.sphinxext reads this
    assert (tmp_path / "chap" / "line.pdf").is_file() and (tmp_path / "chap" / "line.svg").is_file()
