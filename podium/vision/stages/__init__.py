"""The techniques of an image run, as ordered stages over one run state (see `podium.core.stage`).

Order: `data` (0: rows, split, cached features) -> `boxes` (10: box targets) -> `head` (20) ->
`box_report` (25) -> `pseudo_label` (30) -> `finetune` (40) -> `crop_classify` (50) -> `neighbours` (70); the
evaluation layer's stages fit in: `oof` (60), `calibration` (80), the submission (90). Importing this package registers them all.
"""
from podium.vision.stages import box_output, crop_classify, finetune, head, neighbours, pseudo_label  # noqa: F401

__all__ = ["box_output", "crop_classify", "finetune", "head", "neighbours", "pseudo_label"]
