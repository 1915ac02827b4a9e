"""Lotline: food-lot traceability anchored on an EVM chain."""

__version__ = "0.1.0"
