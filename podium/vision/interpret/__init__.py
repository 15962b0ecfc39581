"""Looking inside a model and its data: class activation maps and the metadata leakage probe."""
