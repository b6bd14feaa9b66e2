import pytest
import torch

from symact import device
from symact.data import ImageData
from symact.models import MLP
from symact.train import TrainConfig, train


def test_default_device_without_gpu():
    expected = "cuda" if torch.cuda.is_available() else None
    dev = device.get_device()
    if expected:
        assert dev.type == expected
    else:
        assert dev.type in ("cpu", "mps")


def test_env_override(monkeypatch):
    monkeypatch.setenv("SYMACT_DEVICE", "cpu")
    assert device.get_device() == torch.device("cpu")
    monkeypatch.setenv("SYMACT_DEVICE", "toaster")
    with pytest.raises(ValueError, match="toaster"):
        device.get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_request_without_cuda_raises():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        device.get_device("cuda")


def test_autocast_is_noop_on_cpu():
    with device.autocast(torch.device("cpu")):
        assert (torch.ones(2) @ torch.ones(2)).dtype == torch.float32


def test_seed_everything_rejects_non_int():
    with pytest.raises(TypeError):
        device.seed_everything(1.5)


def _run(data: ImageData) -> tuple[dict, torch.Tensor]:
    device.seed_everything(7)
    model = MLP(in_shape=(1, 8, 8), hidden=(32,), num_classes=2, act="elu")
    hist = train(model, data, TrainConfig(epochs=2, batch_size=32, lr=0.1, seed=7), device="cpu")
    return hist, torch.cat([p.detach().flatten() for p in model.parameters()])


def test_cpu_training_is_bit_for_bit_repeatable(toy_data):
    (h1, w1), (h2, w2) = _run(toy_data), _run(toy_data)
    assert h1["train_loss"] == h2["train_loss"]
    assert torch.equal(w1, w2)
