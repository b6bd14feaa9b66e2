"""symact: symmetric and trainable activation functions and adversarial robustness."""
__version__ = "0.1.0"
