"""Fine-tuning: unfreeze the backbone's last block and train it with the head, end to end from images,
at a lower learning rate. BatchNorm layers stay frozen (inference mode), as Keras advises."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def build_finetune_model(data, head):
    import keras

    backbone = data.spec.build()
    first = data.spec.finetune_from(backbone, data.config["finetune"]["from_layer"])
    backbone.trainable = True
    unfrozen = False
    for layer in backbone.layers:
        unfrozen = unfrozen or layer.name == first
        layer.trainable = unfrozen and not isinstance(layer, keras.layers.BatchNormalization)
    inputs = keras.Input(shape=(*data.spec.size, 3), name="image")
    outputs = head(backbone(inputs, training=False))
    return keras.Model(inputs, outputs, name="finetuned"), first


def image_dataset(data, split: str, *, augment_seed: int | None = None, shuffle: bool = False, batch_size=None):
    from podium.vision.augment import build_augment
    from podium.vision.images import ImageDataset

    config = data.config
    if split == "test":
        paths, labels = data.test["path"].tolist(), None
    else:
        rows = data.train_rows if split == "train" else data.valid_rows
        paths, labels = data.labelled["path"].to_numpy()[rows].tolist(), data.y[rows]
    augment = build_augment(config["augment"]["transforms"], seed=augment_seed) if augment_seed is not None else None
    return ImageDataset(paths, size=data.spec.size, preprocess=data.spec.preprocess, labels=labels,
                        num_classes=len(data.plugin.classes), augment=augment,
                        batch_size=batch_size or int(config["finetune"]["batch_size"]), shuffle=shuffle,
                        seed=int(config["seed"]), skip_bad_images=bool(config["data"]["skip_bad_images"]),
                        workers=int(config["image"]["workers"]))


def predict_images(model, data, split: str, views: int) -> list[np.ndarray]:
    """Predictions from images: the plain view and `views` seeded augmented views (TTA)."""
    if split == "test" and not len(data.test):
        return []
    seed = int(data.config["seed"])
    return [model.predict(image_dataset(data, split, augment_seed=None if view == 0 else seed + view), verbose=0)
            for view in range(views + 1)]


def finetune(data, head, run_dir: Path, *, views: int):
    """Fine-tune and save `model.keras`; return (valid views, test views) predictions of the tuned model."""
    from podium.vision.training import fit

    config = data.config
    model, first = build_finetune_model(data, head)
    print(f"fine-tuning from layer {first}: {sum(int(np.prod(w.shape)) for w in model.trainable_weights):,} "
          f"trainable parameters, lr {config['finetune']['lr']}")
    train = image_dataset(data, "train", augment_seed=int(config["seed"]), shuffle=True)
    valid = image_dataset(data, "valid")
    fit(model, train, valid, train_config=config["train"], run_dir=run_dir, name="finetune",
        epochs=int(config["finetune"]["epochs"]), lr=float(config["finetune"]["lr"]))
    model.save(Path(run_dir) / "model.keras")
    return predict_images(model, data, "valid", views), predict_images(model, data, "test", views)
