"""Shared pipeline stages and the `podium` CLI."""
