"""Named experiments, one module per chapter: config in, JSON-able results out (see :mod:`symact.results`).

Importing this package registers every experiment in :data:`symact.results.REGISTRY`.
"""
from symact.experiments import (dome, dome_robust, evaluation, fundamentals, kaf, saf, saf_strong,  # noqa: F401
                                sapl)

__all__ = ["dome", "dome_robust", "evaluation", "fundamentals", "kaf", "saf", "saf_strong", "sapl"]
