"""Shared fixtures. Tests never touch the network nor ../shared: they generate their own data."""
import os

import pytest

# Before anything imports keras or kaggle.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"


@pytest.fixture(autouse=True)
def _no_real_kaggle_credentials(monkeypatch, tmp_path_factory):
    # `import kaggle` reads credentials at import: point it at an empty folder.
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path_factory.mktemp("kaggle-config")))
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def redux_data(tmp_path_factory):
    """Generated Dogs vs. Cats Redux data in Kaggle's layout (60 cats, 60 dogs, 40 test images)."""
    from podium.competitions import get

    return get("dogs-vs-cats-redux").make_demo_data(tmp_path_factory.mktemp("redux-data"), seed=0)


@pytest.fixture(scope="session")
def movielens_data(tmp_path_factory):
    """Generated MovieLens data in the ml-latest-small layout (ratings, movies, users, pairs to predict)."""
    from podium.competitions import get

    return get("movielens").make_demo_data(tmp_path_factory.mktemp("movielens-data"), seed=0)


@pytest.fixture
def tiny_image_config(tmp_path):
    """Small, fast, offline settings for an image plugin run."""
    def make(plugin, **sections):
        from podium.config import deep_update
        from podium.evaluation.runner import demo_config, resolve_config

        config = demo_config(plugin, resolve_config(plugin))
        config = deep_update(config, {"paths": {"cache": str(tmp_path / "cache")},
                                      "image": {"size": [48, 48]}, "train": {"epochs": 4}, "tta": {"views": 0}})
        return deep_update(config, sections)
    return make
