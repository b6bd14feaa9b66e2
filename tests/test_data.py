import pickle

import numpy as np
import pytest
import torch

from symact import data


def test_mnist_official_shapes_and_labels(needs_data):
    test = data.load("mnist", train=False)
    assert test.x.shape == (10000, 1, 28, 28) and test.x.dtype == torch.uint8
    assert test.y.dtype == torch.int64
    assert test.y[:5].tolist() == [7, 2, 1, 0, 4]  # the official test label sequence
    assert torch.bincount(test.y)[:3].tolist() == [980, 1135, 1032]
    assert len(data.load("mnist", train=True)) == 60000
    x, _ = next(test.batches(64))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and x.max() > 0.99


def test_derived_tasks(needs_data):
    mnist = data.load("mnist", train=False)
    evenodd = data.load("mnist-evenodd", train=False)
    mod3 = data.load("mnist-mod3", train=False)
    assert torch.equal(evenodd.y, mnist.y % 2) and evenodd.num_classes == 2
    assert torch.equal(mod3.y, mnist.y % 3) and mod3.num_classes == 3
    assert torch.equal(evenodd.x, mnist.x)
    assert evenodd.stats == data.STATS["mnist"]


def test_fashion_offline_copy_states_its_split(needs_data):
    fm = data.load("fashion-mnist", train=False)
    assert fm.x.shape == (10000, 1, 28, 28)
    assert "non-official split" in fm.description
    assert torch.bincount(fm.y).tolist() == [1000] * 10


def test_cifar10_jpeg_copy(needs_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMACT_CACHE", str(tmp_path / "cache"))
    test = data.load("cifar10", train=False)
    assert test.x.shape == (10000, 3, 32, 32) and test.x.dtype == torch.uint8
    assert test.description == "CIFAR-10 (JPEG q75 copy)"
    assert torch.bincount(test.y).tolist() == [1000] * 10
    assert len(list((tmp_path / "cache").glob("cifar10-jpeg-test-*.pt"))) == 1  # decoded once, cached
    again = data.load("cifar10", train=False)
    assert torch.equal(again.x, test.x) and torch.equal(again.y, test.y)
    # stored class by class, returned shuffled: the first images already cover every class
    assert torch.bincount(test.y[:200], minlength=10).min() > 5
    assert torch.bincount(data.load("cifar10").y[:200], minlength=10).min() > 5


def test_cifar10_official_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": arr, "labels": [3, 1, 4, 1]}, f)
    d = data.load("cifar10", train=False, root=tmp_path, download=False)
    assert d.description == "CIFAR-10" and d.y.tolist() == [3, 1, 4, 1]
    assert torch.equal(d.x[0], torch.from_numpy(arr[0].reshape(3, 32, 32)))


@pytest.mark.parametrize("download", [False, True])
def test_missing_data_gives_one_clear_error(tmp_path, download):
    with pytest.raises(data.DataNotFoundError) as err:
        data.load("mnist", root=tmp_path, download=download)
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in msg
    assert "SYMACT_DATA" in msg and "Fix:" in msg


def test_missing_cifar_names_every_place(tmp_path):
    with pytest.raises(data.DataNotFoundError) as err:
        data.load("cifar10", root=tmp_path, download=False)
    msg = str(err.value)
    assert "cifar-10-batches-py" in msg and "cifar10-jpeg.tar.gz" in msg


def test_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMACT_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    assert data.data_root("/elsewhere") == data.data_root("/elsewhere")
    monkeypatch.delenv("SYMACT_DATA")
    assert data.data_root().parts[-3:] == (".cache", "symact", "data")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="available: mnist"):
        data.load("imagenet")


def test_batches_cover_everything_once(toy_data):
    g = torch.Generator().manual_seed(1)
    ys = torch.cat([y for _, y in toy_data.batches(50, shuffle=True, generator=g)])
    assert sorted(ys.tolist()) == sorted(toy_data.y.tolist())
    with pytest.raises(ValueError):
        next(toy_data.batches(0))


def test_head_and_sample(toy_data):
    assert len(toy_data.head(10)) == 10 and toy_data.head(None) is toy_data
    a, b = toy_data.sample(20, seed=3), toy_data.sample(20, seed=3)
    assert torch.equal(a.y, b.y) and len(a) == 20
    with pytest.raises(ValueError):
        toy_data.sample(10_000)


def test_random_crop_flip_keeps_shape_and_pixels():
    x = torch.rand(16, 3, 32, 32)
    out = data.random_crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # every output pixel is either padding (0) or a pixel of the same image
    for i in range(4):
        vals = set(x[i].flatten().tolist()) | {0.0}
        assert set(out[i].flatten().tolist()) <= vals
