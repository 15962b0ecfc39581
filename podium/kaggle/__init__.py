"""Kaggle: the official client (imported lazily), download into a plugin's layout, validated submit, history."""

__all__ = ["client", "download", "submit"]  # the package's modules
