"""The KAF chapter's fast-adversarial-training rows (issue 27 items 4, 6, 9): the KAF variants they need
(KAF_Swish, KAF_Free), the ResNet-20 protocol, the rows at smoke, the predicted-label experiment, and the
config hashes of the rows that existed before (a paper run is stored under them: they must never change)."""
import pytest

from symact import benchmark as bm
from symact.results import config_hash

#: config hashes of existing rows, pinned when these rows were added (a stored paper run depends on them)
PINNED = {
    ("mnist", "relu"): ("0a63ccec1c29ef96", "745f9a0c8a933336", "a9df6b03f8c16984"),
    ("mnist", "kaf"): ("105a5fcf7f31e7a1", "68da553a69f44a88", "94d3ee74a2ca7094"),
    ("mnist", "kaf-elu"): ("d8b3bce4d5b4e884", "3bedfdf92e75b436", "b0bf173d1a8cbc61"),
    ("mnist", "silu"): ("78eadfeef7bbadf4", "11eadda6e7fe73fa", "963857fbf361600c"),
    ("mnist", "elu"): ("f6d30e1829d1cccc", "2879b813bef74726", "bf33934c8a2e7f5a"),
    ("cifar10", "relu"): ("cf0c721c9e70e37e", "7cfe66b8d69455c2", "a9425ce3d5c50894"),
    ("cifar10", "kaf"): ("c5d7aebd248b796a", "758c69d902c362b0", "01d27dd1a9eb1e6a"),
    ("cifar10", "kaf-elu"): ("076ce642d777ef0c", "3131b9fa92e3fed5", "8ce5f6e72f11d95d"),
    ("cifar10", "silu"): ("76963fb37e303c32", "00357f49d46a9155", "9e0f78afd85c9d5e"),
    ("cifar10", "elu"): ("f4e32504bc97e4ff", "49efbf98ca2fddb2", "d60478a4c5281708"),
}


@pytest.mark.parametrize("key", sorted(PINNED))
def test_existing_row_hashes_never_change(key):
    import symact.experiments  # noqa: F401  (registers the KAF chapter's rows too)

    exp = bm.experiment_for(*key)
    assert tuple(config_hash(exp.configs[p]) for p in ("smoke", "quick", "paper")) == PINNED[key]
