"""Albumentations pipelines from config: a list of {"name": <transform class>, ...its arguments}."""
from __future__ import annotations

from podium.errors import PodiumError


def build_augment(transforms: list, *, seed: int = 0, bbox: bool = False):
    """An `A.Compose` of the configured transforms, or None for an empty list.

    With `bbox=True` boxes in Pascal VOC pixels travel with the image (labels in `labels`).
    """
    if not transforms:
        return None
    import albumentations as A

    steps = []
    for index, spec in enumerate(transforms):
        if not isinstance(spec, dict) or "name" not in spec:
            raise PodiumError(f"augment.transforms[{index}] must be a table with a 'name', got {spec!r}")
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "name"}
        cls = getattr(A, spec["name"], None)
        if cls is None or not isinstance(cls, type):
            raise PodiumError(f"augment.transforms[{index}]: albumentations has no transform {spec['name']!r}")
        try:
            steps.append(cls(**kwargs))
        except (TypeError, ValueError) as exc:
            raise PodiumError(f"augment.transforms[{index}] ({spec['name']}): {exc}") from None
    bbox_params = A.BboxParams(format="pascal_voc", label_fields=["labels"], clip=True) if bbox else None
    return A.Compose(steps, bbox_params=bbox_params, seed=seed)
