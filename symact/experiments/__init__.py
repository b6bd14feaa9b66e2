"""Named experiments, one module per chapter: config in, JSON-able results out (see :mod:`symact.results`).

Importing this package registers every experiment in :data:`symact.results.REGISTRY`.
"""
from symact.experiments import dome  # noqa: F401
from symact.experiments import dome_robust  # noqa: F401
from symact.experiments import evaluation  # noqa: F401
from symact.experiments import fundamentals  # noqa: F401
from symact.experiments import kaf  # noqa: F401
from symact.experiments import kaf_adaptive  # noqa: F401
from symact.experiments import kaf_depth  # noqa: F401
from symact.experiments import kaf_fat  # noqa: F401
from symact.experiments import kaf_kan  # noqa: F401
from symact.experiments import kaf_lipschitz  # noqa: F401
from symact.experiments import kaf_overfit  # noqa: F401
from symact.experiments import leaderboard_claims  # noqa: F401
from symact.experiments import saf  # noqa: F401
from symact.experiments import saf_strong  # noqa: F401
from symact.experiments import sapl  # noqa: F401

__all__ = ["dome", "dome_robust", "evaluation", "fundamentals", "kaf", "kaf_adaptive", "kaf_depth", "kaf_fat", "kaf_kan", "kaf_lipschitz", "kaf_overfit", "leaderboard_claims", "saf", "saf_strong", "sapl"]
