import os

import pytest
import torch

from symact.data import ImageData


@pytest.fixture
def toy_data():
    """A tiny two-class image task (bright vs dark 1x8x8 images) that trains in well under a second."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (256,), generator=g)
    base = torch.where(y[:, None, None, None] == 1, 170.0, 85.0)
    noise = torch.randint(-40, 41, (256, 1, 8, 8), generator=g).float()
    x = (base + noise).clamp(0, 255).to(torch.uint8)
    return ImageData(x, y, "toy", ("dark", "bright"), "toy task")


@pytest.fixture
def toy_model():
    from symact.models import Normalize

    torch.manual_seed(0)
    return torch.nn.Sequential(Normalize((0.5,), (0.2,)), torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


@pytest.fixture
def needs_data():
    """Fail (not skip) with a clear message when the data root is not configured: CI must have it."""
    from symact.data import data_root

    root = data_root()
    if not (root / "MNIST" / "raw").is_dir():
        pytest.fail(f"MNIST not found under {root}; set SYMACT_DATA (offline machines: SYMACT_DATA=../shared/datasets)")
    return root


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch, tmp_path):
    """Tests never write into the repository's results/, figures/ or zoo/."""
    monkeypatch.setenv("SYMACT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SYMACT_ZOO", str(tmp_path / "zoo"))
    monkeypatch.setenv("SYMACT_FIGURES", str(tmp_path / "figures"))
    monkeypatch.delenv("SYMACT_RECOMPUTE", raising=False)
    monkeypatch.delenv("SYMACT_DEVICE", raising=False)
    yield
