"""The Adversarial-evaluation chapter's cascade name and protocol table, moved from the notebook into
symact.experiments.evaluation."""
import dataclasses

import pytest

from symact import benchmark as bm
from symact.experiments import evaluation as ev
from symact.store.results import Result


def _stored(autoattack=None):
    config = {} if autoattack is None else {"autoattack": autoattack}
    return Result({}, {"config": config})


def test_cascade_name():
    assert ev.cascade_name(_stored("autoattack")) == "AutoAttack"
    assert ev.cascade_name(_stored("cascade-10")) == "the 10-iteration cascade (not AutoAttack)"
    # stored before the config named its cascade: all of those ran the 10-iteration one
    assert ev.cascade_name(_stored()) == "the 10-iteration cascade (not AutoAttack)"
    assert ev.cascade_name({"provenance": {"config": {"autoattack": "autoattack"}}, "result": {}}) == "AutoAttack"


def _mnist():
    return dataclasses.replace(bm.protocol("mnist", "paper"), network="LeNet5", eps=0.3, start="unclamped",
                               epochs=10, batch_size=128, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                               augment=False, seeds=(0, 1, 2), n_eval=1000, n_extra=200, curve_eps=(0.1, 0.2, 0.3),
                               n_clean=None)


def test_protocol_rows_by_hand():
    rows = ev.protocol_rows(_mnist())
    assert rows == {"network": "LeNet-5 (batch norm before every activation)", "L-inf budget eps": "0.3",
                    "FGSM start": "uniform, unclamped", "epochs, batch": "10, 128",
                    "optimiser": "SGD, momentum 0.9, weight decay 0.0005", "augmentation": "none",
                    "seeds": "0, 1, 2", "AutoAttack, Square, PGD, transfer, curve on": "first 1,000 test images",
                    "curve over eps": "0.1, 0.2, 0.3", "FAB distances and sanity checks on": "first 200 test images",
                    "clean accuracy on": "all 10,000 test images"}
    cifar = dataclasses.replace(bm.protocol("cifar10", "paper"), network="VGGInspired", eps=8 / 255,
                                curve_eps=(2 / 255, 8 / 255), optimizer="adam", augment=True, n_clean=500)
    rows = ev.protocol_rows(cifar)
    assert rows["L-inf budget eps"] == "8/255" and rows["curve over eps"] == "2/255, 8/255"
    assert rows["optimiser"] == "Adam, no weight decay" and rows["augmentation"] == "random crop (4 px) and flip"
    assert rows["network"] == "the KAF thesis's VGG-inspired network"
    assert rows["clean accuracy on"] == "first 500 test images"
    with pytest.raises(ValueError, match="network is one of"):
        ev.protocol_rows(dataclasses.replace(_mnist(), network="ResNet18"))


def test_protocol_table_of_the_stored_protocols():
    protos = {ds: bm.protocol(ds, "paper") for ds in bm.DATASETS}
    table = ev.protocol_table(protos)
    assert list(table.columns) == ["MNIST", "CIFAR-10 (JPEG copy)"][:len(protos)]
    assert table.loc["L-inf budget eps", "MNIST"] == "0.3"
    assert table.loc["seeds", "MNIST"] == ", ".join(map(str, protos["mnist"].seeds))
