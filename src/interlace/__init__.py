"""Interlace: puts AI models into the systems an enterprise already runs."""

__all__ = ["__version__"]

__version__ = "0.1.0"
