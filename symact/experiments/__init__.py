"""Named experiments, one module per chapter: config in, JSON-able results out (see :mod:`symact.results`).

Importing this package registers every experiment in :data:`symact.results.REGISTRY`.
"""
from symact.experiments import dome, evaluation, fundamentals, kaf, kaf_adaptive, saf, sapl  # noqa: F401

__all__ = ["dome", "evaluation", "fundamentals", "kaf", "kaf_adaptive", "saf", "sapl"]
