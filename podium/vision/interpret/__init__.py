"""Looking inside a model and its data: class activation maps and the metadata leakage probe."""

__all__ = ["heatmap", "leakage"]  # the package's modules
