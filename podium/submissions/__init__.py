"""Submissions: check a frame or file the way Kaggle would, clip probabilities, write the CSV safely."""
