"""Check a submission file the way Kaggle would, before anything is uploaded."""

__all__ = ["validate"]  # the package's modules
