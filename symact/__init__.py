"""symact: symmetric and trainable activation functions and adversarial robustness."""
__version__ = "0.1.0"


def __getattr__(name: str):
    """``symact.benchmark`` imported on first use (it imports torch and the whole library): the module
    :mod:`symact.benchmark`, which is also callable, ``symact.benchmark(MyAct, dataset="mnist")``."""
    if name == "benchmark":
        import importlib

        return importlib.import_module("symact.benchmark")
    raise AttributeError(f"module 'symact' has no attribute {name!r}")
