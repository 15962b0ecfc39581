"""podium: a Kaggle competition workflow, from raw files to an honest submission."""
import os

# Set before keras or albumentations are first imported anywhere in the package.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# albumentations checks PyPI for updates at import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
