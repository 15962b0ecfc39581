"""Fine-tuning: unfreeze the backbone from `finetune.from_layer` (default: its last block) and train it with
the head, end to end from augmented images, at a lower learning rate."""
from __future__ import annotations

import numpy as np

from podium.core.stage import RunState, Stage, register_stage


@register_stage
class FineTune(Stage):
    name = "finetune"
    order = 40
    reads = ("finetune", "augment", "tta")

    @classmethod
    def enabled(cls, config: dict) -> bool:
        return bool(config["finetune"]["enabled"])

    def run(self, state: RunState) -> None:
        config, data = state.config, state.data
        before = state.learner.tta("valid", int(config["tta"]["views"]))
        state.metrics["val_log_loss_before_finetune"] = state.plugin.evaluate(
            data.valid_labels, np.mean(before, axis=0))["val_log_loss"]
        learner = state.learner.unfreeze()
        learner.fit(learner.train_batches(), valid_data=learner.dataset("valid", targets=True), run_dir=state.run_dir,
                    name="finetune", epochs=int(config["finetune"]["epochs"]), lr=float(config["finetune"]["lr"]))
        learner.save(state.run_dir / "model.keras")
        state.learner = learner
