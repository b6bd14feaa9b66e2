"""The SAF chapter's experiment helpers against saf.txt (Eq. 7, Section 4.3, Section 5)."""
import math

import pytest
import torch

from symact.experiments import saf as exp


def test_parse_model():
    assert exp.parse_model("mrelu-r-m") == ("mrelu", frozenset({"r", "m"}))
    assert exp.parse_model("plain") == ("plain", frozenset())
    for bad in ("relu", "mrelu-x", "rbf-r-r"):
        with pytest.raises(ValueError, match="model must be one of"):
            exp.parse_model(bad)


def test_hybrid_loss_is_eq7():
    torch.manual_seed(0)
    pre = torch.randn(6, 11, dtype=torch.float64)
    out = exp.LogRBF()(pre)
    y = torch.tensor([0, 3, 10, 5, 5, 1])
    a1, a2, a3 = 1.0, 1.0, 1 / 9
    got = exp.hybrid_loss((a1, a2, a3))(out, y)
    conf = torch.exp(-pre ** 2)                                      # the output 1-D RBF
    want = 0.0
    for i, label in enumerate(y.tolist()):
        yl = float(conf[i, label])
        others = sum(float(conf[i, j]) ** 2 for j in range(11) if j != label)
        want += -a1 * math.log(yl / float(conf[i].sum())) + a2 * (1 - yl) ** 2 + a3 * others
    assert float(got) == pytest.approx(want / len(y), rel=1e-10)


def test_decide_threshold_and_nonsense_class():
    logits = torch.tensor([[3.0, 0.0], [0.1, 0.0]])                  # softmax: 0.95 / 0.52
    assert exp.decide(logits, robust=False, nonsense_class=False).tolist() == [0, 0]
    low = torch.log(torch.tensor([[0.4, 0.3], [0.9, 0.2]]))          # robust: confidences are exp(out)
    assert exp.decide(low, robust=True, nonsense_class=False).tolist() == [exp.NONSENSE, 0]
    with_ns = torch.log(torch.tensor([[0.2] * 10 + [0.9]]))
    assert exp.decide(with_ns, robust=True, nonsense_class=True).tolist() == [exp.NONSENSE]


def test_nonsense_samples_cover_the_pixel_range():
    x = exp.nonsense_samples(5, (1, 8, 8), torch.Generator().manual_seed(0))
    assert torch.allclose(x.flatten(1).amin(1), torch.zeros(5)) and torch.allclose(x.flatten(1).amax(1), torch.ones(5))


def test_build_model_shapes():
    x = torch.rand(2, 1, 28, 28)
    assert exp.build_model("mnist", "plain")(x).shape == (2, 10)
    robust = exp.build_model("mnist", "mrelu-r-m")
    out = robust(x)
    assert out.shape == (2, 11) and (out <= 0).all()                 # log of RBF confidences
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in robust.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in exp.build_model("mnist", "plain").modules())
    assert exp.build_model("cifar10", "rbf")(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_training_tricks():
    import dataclasses
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,))
    mean = torch.full((1, 28, 28), 0.3)
    cfg = dataclasses.replace(exp.RobustConfig(), model="mrelu-r-m", random_frac=1.0, random_delta=0.2, mean_frac=0.25)
    model = exp.build_model("mnist", cfg.model)
    xb, yb = exp.training_tricks(cfg, model, exp.model_loss("mnist", cfg.model), mean)(x, y, gen)
    assert len(xb) == 25 and (yb[20:] == exp.NONSENSE).all() and torch.equal(yb[:20], y)
    assert 0 < (xb[:20] - x).abs().max() <= 0.2
    cfg = dataclasses.replace(cfg, model="mrelu-a", adv_frac=0.5, adv_beta=0.1)
    model = exp.build_model("mnist", cfg.model).train()
    xb, yb = exp.training_tricks(cfg, model, exp.model_loss("mnist", cfg.model), mean)(x, y, gen)
    assert torch.allclose((xb[:10] - x[:10]).abs().amax(), torch.tensor(0.1)) and torch.equal(xb[10:], x[10:])
    assert model.training                                            # the mode is restored after crafting


def test_registered_robust_experiments():
    assert set(exp.ROBUST) == {(d, m) for d, ms in exp.MODELS.items() for m in ms}
    for (ds, m), e in exp.ROBUST.items():
        for cfg in e.configs.values():
            assert cfg.dataset == ds and cfg.model == m
    for key, row in exp.PAPER_ERRORS.items():
        full = len(exp.BETAS[key[0]]) + 1                             # clean, then one per beta
        assert len(row) == full or key[1:] == ("nonsense", "mrelu-r-m") and len(row) < full


def test_example_images_round_trip():
    import base64

    import numpy as np
    img = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    stored = {"shape": [2, 3, 4], "noisy": {"images": [[base64.b64encode(img.tobytes()).decode()]]}}
    assert np.array_equal(exp.example_image(stored, "noisy", 0, 0), img)
    legacy = {"noisy": {"images": [[img.tolist()]]}}
    assert np.array_equal(exp.example_image(legacy, "noisy", 0, 0), img)


def test_protocol_table_and_paper_gaps():
    from symact.results import Result

    def res(model, prof):
        cfg = exp.ROBUST[("mnist", model)].configs[prof]
        pe = {kind: {"error": list(exp.PAPER_ERRORS.get(("mnist", kind, model), (0.0,) * 13))[:13]}
              for kind in ("adversarial", "nonsense", "noisy")}
        pe["adversarial"]["error"] = [e + 0.01 for e in pe["adversarial"]["error"]]
        return Result({"paper_eval": pe}, {"profile": prof, "config": {}})

    results = {("mnist", "plain"): res("plain", "paper"), ("mnist", "mrelu-r-m"): res("mrelu-r-m", "quick")}
    pt = exp.protocol_table(results, "mnist").set_index("model")
    assert pt.loc["plain", "differences"] == "" and pt.loc["plain", "epochs"] == 20
    quick = exp.ROBUST[("mnist", "mrelu-r-m")].configs["quick"]
    assert f"{quick.epochs} epochs instead of 20" in pt.loc["mrelu-r-m", "differences"]
    gaps = exp.paper_gaps(results).set_index(["kind", "model"])
    assert gaps.loc[("adversarial", "plain"), "gap"] == pytest.approx(0.01)
    assert gaps.loc[("noisy", "plain"), "gap"] == pytest.approx(0.0)
    assert gaps.loc[("nonsense", "mrelu-r-m"), "columns"] == 5      # the paper prints five values there
