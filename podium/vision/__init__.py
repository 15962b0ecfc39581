"""Image classification on a frozen ImageNet backbone: images and augmentation, backbones and their
preprocessing, the feature cache, heads, the learner, the ordered `stages/` of the techniques, and
`interpret/` (heatmaps, the metadata leakage probe)."""

__all__ = ["augment", "backbones", "batches", "boxes", "cache", "data", "heads", "images", "interpret", "learner",
           "metadata", "pipeline", "preprocessing", "stages", "training"]
