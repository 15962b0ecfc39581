"""Kaggle: the official client (imported lazily), download into a plugin's layout, validated submit, history."""
