"""Check a submission file the way Kaggle would, before anything is uploaded."""
