"""Fine-tuning the fast.ai way (see `podium.vision.finetuning`): the head trained first on cached features,
then the backbone unfrozen from `finetune.from_layer` (default: its last block; "all": the whole network),
gradually (`finetune.unfreeze=gradual`: one more block each epoch) or at once, with discriminative
learning rates (`finetune.lr` for the head, `finetune.lr / finetune.lr_ratio` for the deepest block trained),
end to end from freshly augmented images each epoch; resumable per epoch."""
from __future__ import annotations

import numpy as np

from podium.core.stage import RunState, Stage, register_stage
from podium.errors import PodiumError


@register_stage
class FineTune(Stage):
    name = "finetune"
    order = 40
    reads = ("finetune", "augment", "tta")
    leaves = ("model.keras",)  # what `podium predict` reloads in place of the head

    @classmethod
    def enabled(cls, config: dict) -> bool:
        return bool(config["finetune"]["enabled"])

    @classmethod
    def check(cls, plugin, config: dict, data_dir=None) -> None:
        if config["finetune"]["unfreeze"] not in ("gradual", "all"):
            raise PodiumError(f"finetune.unfreeze must be 'gradual' or 'all', got {config['finetune']['unfreeze']!r}")

    def run(self, state: RunState) -> None:
        from podium.vision.finetuning import fine_tune

        config, data = state.config, state.data
        finetune = config["finetune"]
        before = state.learner.tta("valid", int(config["tta"]["views"]))
        state.metrics["val_log_loss_before_finetune"] = state.plugin.evaluate(
            data.valid_labels, np.mean(before, axis=0))["val_log_loss"]
        result = fine_tune(state.learner, state.run_dir, epochs=int(finetune["epochs"]), lr=float(finetune["lr"]),
                           ratio=float(finetune["lr_ratio"]), unfreeze=str(finetune["unfreeze"]),
                           from_layer=str(finetune["from_layer"]))
        learner = result["learner"]
        learner.save(state.run_dir / "model.keras")
        state.metrics.update({"finetune_seconds_per_epoch": result["report"]["seconds_per_epoch"],
                              "finetune_epochs": result["report"]["epochs"]})
        state.learner = learner
