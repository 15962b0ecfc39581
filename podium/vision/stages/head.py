"""The core stages of every image run: load the rows and their cached features, then train the head."""
from __future__ import annotations

from podium.core.stage import RunState, Stage, register_stage
from podium.core.table import prepare_table
from podium.vision.data import load_image_data
from podium.vision.learner import Learner


@register_stage
class LoadData(Stage):
    """The canonical table, its split (or the sample set), and the plain features of every row."""

    name = "data"
    order = 0
    reads = ("data", "image", "paths")

    @classmethod
    def check(cls, plugin, config: dict, data_dir=None) -> None:
        # The table's own refusals (layout, ids, unreadable images) come before any run directory exists.
        if data_dir is not None:
            prepare_table(plugin, data_dir, config)

    def run(self, state: RunState) -> None:
        state.data = load_image_data(state.plugin, state.data_dir, state.config, sample=state.sample)
        data = state.data
        state.metrics.update({"feature_cache_hit": bool(data.labelled_features(0).hit), "bad_images": data.bad_images,
                              "train_rows": int(len(data.train_rows)), "valid_rows": int(len(data.valid_rows))})


@register_stage
class TrainHead(Stage):
    """A head on the cached features of the plain and augmented passes: the model every later stage starts from."""

    name = "head"
    order = 20
    reads = ("head", "train", "augment")
    leaves = ("head.keras",)

    def run(self, state: RunState) -> None:
        # `head.keras` and `history_head.csv` are written by the training itself; a metrics-only run (a tuning
        # trial, `state.record == "metrics"`) writes neither and trains silently.
        full = getattr(state, "record", "full") != "metrics"
        state.learner = Learner.train_head(state.data, state.run_dir if full else None, callbacks=state.callbacks,
                                           verbose="auto" if full else 0)
