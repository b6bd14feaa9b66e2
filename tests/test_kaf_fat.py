"""The KAF chapter's fast-adversarial-training rows (issue 27 items 4, 6, 9): the KAF variants they need
(KAF_Swish, KAF_Free), the ResNet-20 protocol, the rows at smoke, the predicted-label experiment, and the
config hashes of the rows that existed before (a paper run is stored under them: they must never change)."""
import pytest

from symact import benchmark as bm
from symact.results import config_hash

#: config hashes of existing rows, pinned when these rows were added (a stored paper run depends on them); the
#: CIFAR-10 paper hashes changed once, on 2026-12-08 (the range test's 400 steps), before any was stored
PINNED = {
    ("mnist", "relu"): ("0a63ccec1c29ef96", "745f9a0c8a933336", "a9df6b03f8c16984"),
    ("mnist", "kaf"): ("105a5fcf7f31e7a1", "68da553a69f44a88", "94d3ee74a2ca7094"),
    ("mnist", "kaf-elu"): ("d8b3bce4d5b4e884", "3bedfdf92e75b436", "b0bf173d1a8cbc61"),
    ("mnist", "silu"): ("78eadfeef7bbadf4", "11eadda6e7fe73fa", "963857fbf361600c"),
    ("mnist", "elu"): ("f6d30e1829d1cccc", "2879b813bef74726", "bf33934c8a2e7f5a"),
    ("cifar10", "relu"): ("cf0c721c9e70e37e", "7cfe66b8d69455c2", "067811ec559a8e86"),
    ("cifar10", "kaf"): ("c5d7aebd248b796a", "758c69d902c362b0", "16ba6a4fb2dbdd38"),
    ("cifar10", "kaf-elu"): ("076ce642d777ef0c", "3131b9fa92e3fed5", "a5cf342896e906f6"),
    ("cifar10", "silu"): ("76963fb37e303c32", "00357f49d46a9155", "70a43bbdc26bf52a"),
    ("cifar10", "elu"): ("f4e32504bc97e4ff", "49efbf98ca2fddb2", "8e51962f95836d83"),
}


@pytest.mark.parametrize("key", sorted(PINNED))
def test_existing_row_hashes_never_change(key):
    import symact.experiments  # noqa: F401  (registers the KAF chapter's rows too)

    exp = bm.experiment_for(*key)
    assert tuple(config_hash(exp.configs[p]) for p in ("smoke", "quick", "paper")) == PINNED[key]


# --------------------------------------------------------------------------- the KAF variants

import math  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from symact.activations import create  # noqa: E402
from symact.activations.kaf import KAF, KAFFree, kaf_free, kaf_naive, kernel_ridge_init  # noqa: E402


def test_kaf_swish_init_fits_swish():
    s = torch.linspace(-3, 3, 601, dtype=torch.float64)
    act = KAF(channels=3, init="swish").double()
    y = act(s.view(1, 1, -1).expand(2, 3, -1))
    swish = s * torch.sigmoid(s)
    assert (y - swish).abs().max() < 0.02  # a smooth target: the fit is as close as ELU's
    # the coefficients are the kernel ridge solution (K + ridge I) alpha = swish(d)
    d = np.linspace(-3, 3, 20)
    gamma = 1 / (8 * (6 / 19) ** 2)
    K = np.exp(-gamma * (d[:, None] - d[None, :]) ** 2)
    np.testing.assert_allclose((K + 1e-4 * np.eye(20)) @ kernel_ridge_init("swish"), d / (1 + np.exp(-d)), atol=1e-9)
    with pytest.raises(ValueError, match="'swish'"):
        KAF(init="gelu")


def test_kaf_free_is_the_kaf_formula_with_free_points_and_bandwidth():
    torch.manual_seed(0)
    act = KAFFree(channels=4).double()
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    # at initialisation: the KAF with the same coefficients
    torch.testing.assert_close(act(x), kaf_naive(x, act.alpha.detach()))
    # moved points and bandwidth: the formula sum_i alpha_i exp(-gamma (s - d_i)^2), per channel
    with torch.no_grad():
        act.dictionary.add_(0.1 * torch.randn_like(act.dictionary))
        act.log_gamma.add_(torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64))
    g = act.log_gamma.exp().view(1, 4, 1, 1, 1)
    d = act.dictionary.view(1, 4, 1, 1, 20)
    want = (act.alpha.view(1, 4, 1, 1, 20) * torch.exp(-g * (x.unsqueeze(-1) - d) ** 2)).sum(-1)
    torch.testing.assert_close(act(x), want)
    # parameters: 2 D + 1 per channel, about twice a KAF's
    assert sum(p.numel() for p in act.parameters()) == 4 * (2 * 20 + 1)
    assert create("kaf_free", channels=4).dictionary.shape == (4, 20)
    shared = create("kaf_free")
    assert shared.log_gamma.shape == (1,) and shared(torch.randn(2, 7)).shape == (2, 7)


def test_kaf_free_gradcheck_and_every_parameter_learns():
    torch.manual_seed(1)
    x = torch.randn(3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    d = torch.linspace(-2, 2, 6, dtype=torch.float64).repeat(2, 1).requires_grad_()
    lg = torch.tensor([0.0, -0.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kaf_free, (x, a, d, lg))
    a1, d1, lg1 = (t.detach()[0].clone().requires_grad_() for t in (a, d, lg))
    lg1 = lg1.reshape(1).detach().requires_grad_()
    assert torch.autograd.gradcheck(kaf_free, (x.detach().requires_grad_(), a1, d1, lg1))  # shared
    act = KAFFree(channels=4)
    act(torch.randn(8, 4, 3, 3)).square().sum().backward()
    for name in ("alpha", "dictionary", "log_gamma"):
        grad = getattr(act, name).grad
        assert grad is not None and grad.isfinite().all() and grad.abs().sum() > 0, name


def test_kaf_free_bad_input():
    with pytest.raises(ValueError, match="channels"):
        KAFFree(channels=4)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="share one shape"):
        kaf_free(torch.randn(2, 3), torch.randn(3, 5), torch.randn(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="log_gamma must have shape"):
        kaf_free(torch.randn(2, 3), torch.randn(3, 5), torch.randn(3, 5), torch.zeros(1))
    with pytest.raises(ValueError, match="init must be"):
        KAFFree(init="tanh")
    with pytest.raises(ValueError, match="D >= 2"):
        KAFFree(D=1)


# --------------------------------------------------------------------------- the rows

from symact.experiments import kaf_fat  # noqa: E402


def test_rows_are_the_thesis_s_tables_under_the_leaderboard_s_protocol():
    assert list(kaf_fat.FAT_ROWS["vgg"]) == list(kaf_fat.THESIS["vgg"])
    assert len(kaf_fat.FAT_ROWS["resnet20"]) == 8 and kaf_fat.FAT_ROWS["resnet20"]["KAF_ReLU"] == "resnet20-kaf-relu"
    for prof in ("smoke", "quick", "paper"):
        base, res = bm.protocol("cifar10", prof), kaf_fat.resnet20_protocol(prof)
        assert res.network == "CifarResNet" and dict(res.network_kwargs) == {"depth": 20}
        assert {f: getattr(res, f) for f in ("epochs", "augment", "eps", "alpha", "seeds", "n_eval")} == \
            {f: getattr(base, f) for f in ("epochs", "augment", "eps", "alpha", "seeds", "n_eval")}
        assert bm._RELU_ROWS[res] == "cifar10-resnet20-relu"  # the ResNet rows' transfer surrogate
        assert bm._RELU_ROWS.get(base, "cifar10-relu") == "cifar10-relu"
    for ds in bm.DATASETS:
        exp = bm.experiment_for(ds, "kaf-swish")
        assert exp.configs["paper"].activation_kwargs == (("init", "swish"),)
        assert bm.experiment_for(ds, "kaf-free").configs["paper"].activation == "kaf_free"
    exp = bm.experiment_for("cifar10", "resnet20-kaf-relu")
    assert exp.configs["paper"].protocol == kaf_fat.resnet20_protocol("paper")
    # the ResNet-20 rows are a leaderboard of their own: the VGG table does not list them
    assert not any(r.startswith("resnet20-") for r in bm.stored_rows("cifar10", "smoke"))
    assert len(kaf_fat.fat_experiments()) == 15
    # the surrogate's row travels with the unit (a Dask worker need not have imported this module)
    units = {u.key: u for u in exp.units(exp.configs["paper"])}
    assert units["relu-seed1"].args[2] == "cifar10-resnet20-relu"
    vgg = bm.experiment_for("cifar10", "kaf-swish")
    assert {u.key: u for u in vgg.units(vgg.configs["paper"])}["relu-seed0"].args[2] in (None, "cifar10-relu")
    with pytest.raises(ValueError, match="protocols must map every profile"):
        bm.register_row("cifar10", "bad", "relu", protocols={"paper": bm.protocol("cifar10", "paper")})


def test_fat_table_says_which_rows_are_stored():
    t = kaf_fat.fat_table("resnet20")
    assert list(t["activation"]) == list(kaf_fat.THESIS["resnet20"]) and not t["stored"].any()
    assert t.loc[t.activation == "Swish", "thesis_pgd"].item() == 53.88
    with pytest.raises(ValueError, match="network must be"):
        kaf_fat.fat_table("vgg16")


def test_claims_are_registered_and_not_run_yet():
    from symact.claims import CLAIMS, conclusions

    keys = [k for k in CLAIMS if k.startswith("kaf/fat-")]
    assert len(keys) == 7
    df = conclusions(chapters=("kaf",))
    assert set(df[df.key.isin(keys)]["verdict"]) == {"not run yet"}  # nothing stored in the test's results


def test_resnet20_row_runs_at_smoke_with_its_own_relu_surrogate(needs_data, tmp_path, monkeypatch):
    from symact import zoo

    monkeypatch.setenv("SYMACT_CHECKPOINTS", str(tmp_path / "ckpt"))
    # the ResNet-20 ReLU row's network in the zoo: the ResNet-20 rows take their transfer surrogate from it
    p = kaf_fat.resnet20_protocol("smoke")
    torch.manual_seed(3)
    net = bm.build_network(p.network, "relu", **dict(p.network_kwargs))
    zoo.save("benchmark/cifar10-resnet20-relu", net, key="train-seed0", config=bm.RowConfig(p, "relu"))
    res = bm.experiment_for("cifar10", "resnet20-kaf-swish")(profile="smoke")
    (seed,) = res["seeds"]
    assert res["network"] == "CifarResNet" and seed["train"]["params_added"] > 0
    assert seed["eval"]["transfer"] == "zoo benchmark/cifar10-resnet20-relu/train-seed0"
    row = bm.leaderboard_row(res, "KAF_Swish")
    assert 0 <= row["robust_mean"] <= row["clean_mean"] <= 1 and row["profile"] == "smoke"
    assert kaf_fat.fat_table("resnet20")["stored"].sum() == 0  # smoke rows never enter the chapter's tables


def test_kaf_free_row_trains_at_smoke(needs_data):
    # KAF_Free's range test and training units on the MNIST row (LeNet-5); its evaluation is the leaderboard's
    cfg = bm.experiment_for("mnist", "kaf-free").configs["smoke"]
    lr = bm._lr_unit(cfg)
    trained = bm._train_unit(cfg, None, 0, lr)
    assert trained["lr_max"] > 0 and len(trained["history"]["seconds"]) == 1
    assert any(k.endswith("dictionary") for k in trained["weights"]) and trained["params_added"] > 0


def test_predicted_labels_experiment_at_smoke(needs_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMACT_CHECKPOINTS", str(tmp_path / "ckpt"))
    res = kaf_fat.fat_predicted_labels(profile="smoke")
    cfg = kaf_fat.fat_predicted_labels.configs["smoke"]
    assert set(res["networks"]) == {f"{r}-seed0" for r in cfg.rows} and res["missing"] == []
    t = kaf_fat.labels_table(res)
    assert set(t["network"]) == {"vgg", "resnet20"} and (t["true"] <= t["clean"]).all()
    # the predicted-label count differs from the robust accuracy only by the rescued images
    assert np.allclose(t["thesis"] - t["predicted_robust"], t["rescued"] / cfg.n_test)
    assert (t["predicted_robust"] <= t["clean"]).all()
    # at quick and paper it reads the zoo, and says so when the zoo holds none of the networks
    with pytest.raises(ValueError, match="the zoo holds none"):
        kaf_fat.fat_predicted_labels.units(kaf_fat.fat_predicted_labels.configs["paper"])


def test_device_script_lists_every_fat_row_relu_first():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "tools" / "device_kaf.sh").read_text()
    listed = [line.strip() for line in text.splitlines() if line.strip().startswith(("benchmark/", "kaf/"))]
    assert set(kaf_fat.fat_experiments()) | {"kaf/fat-predicted-labels"} <= set(listed)
    for net in ("cifar10-", "cifar10-resnet20-"):  # each network's ReLU row before its other rows
        rows = [x for x in listed if x.startswith(f"benchmark/{net}") and (net != "cifar10-" or "resnet20" not in x)]
        assert rows[0] == f"benchmark/{net}relu"
    assert listed.index("kaf/fat-predicted-labels") > max(listed.index(e) for e in kaf_fat.fat_experiments())


def _fake_row(robust, clean, network="VGGInspired", profile="paper"):
    import dataclasses

    from symact.results import Result

    p = dataclasses.replace(bm.protocol("cifar10", "paper"), network=network)
    data = {"dataset": "cifar10", "protocol": bm._jsonable(p),
            "seeds": [{"seed": k, "eval": {"clean_acc": c, "worst_case": {"robust_acc": r}}}
                      for k, (r, c) in enumerate(zip(robust, clean))]}
    return Result(data, {"profile": profile})


def test_claims_judge_stored_rows_through_the_verdict_rule(monkeypatch):
    from symact.claims import CLAIMS

    acc = {"relu": 0.40, "kaf": 0.45, "silu": 0.47, "elu": 0.41, "kaf-elu": 0.42, "kaf-swish": 0.43, "kaf-free": 0.44,
           "kaf-relu": 0.42}
    rows = {f"{pre}{r}": _fake_row([v + pre.count("r") * 0.05 + 0.002 * k for k in range(3)], [0.78, 0.79, 0.80],
                                   network="CifarResNet" if pre else "VGGInspired")
            for pre in ("", "resnet20-") for r, v in acc.items()}
    monkeypatch.setattr(bm, "stored_rows", lambda ds, prof, names: {n: rows.get(n) if prof == "paper" else None
                                                                      for n in names})
    j = CLAIMS["kaf/fat-kaf-more-robust-vgg"].judge("paper")
    assert abs(j.verdict.effect - 0.05) < 1e-9 and j.word == "reproduced in sign only"  # thesis +1.39 points
    assert "+1.39 points" in j.theirs
    j = CLAIMS["kaf/fat-swish-most-robust-resnet20"].judge("paper")
    assert "(KAF)" in j.what and abs(j.verdict.effect - 0.02) < 1e-9 and j.word == "reproduced in sign only"
    assert "Swish / " not in j.theirs and "53.88" in j.theirs  # the thesis: Swish 53.88 % against KAF 52.23 %
    j = CLAIMS["kaf/fat-resnet-more-robust-than-vgg"].judge("paper")
    assert "welch" in j.design.lower() and abs(j.verdict.effect - 0.05) < 1e-9
    assert CLAIMS["kaf/fat-kaf-clean-accuracy"].judge("paper").word == "not reproduced"  # equal clean accuracies
    j = CLAIMS["kaf/fat-flexibility-no-gain"].judge("paper")
    assert j.word == "not reproduced" and abs(j.verdict.effect + 0.01) < 1e-9  # KAF_Free 1 point below KAF
    assert CLAIMS["kaf/fat-kaf-more-robust-vgg"].judge("quick") is None
