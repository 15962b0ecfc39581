"""Which Keras backend and devices a run uses, its precision, and data parallelism over local devices.

`configure(config)` applies `image.precision` (a Keras dtype policy) and `image.data_parallel`
(Keras' own `keras.distribution.DataParallel`, JAX only) and returns `backend_report()`, which is
printed at the start of a run and kept in `run.json`. Keras is imported inside the functions only:
importing this module must not fix the backend before the caller has chosen it.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os

from podium.errors import PodiumError
from podium.log import logger

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Distributions whose presence means JAX can reach an accelerator (the CUDA plugins, or a TPU runtime).
JAX_ACCELERATOR_PLUGINS = ("jax-cuda12-plugin", "jax-cuda13-plugin", "jax-cuda11-plugin", "libtpu", "jax-rocm60-plugin")


def jax_accelerator_plugin() -> str | None:
    """The installed JAX accelerator plugin's name, without importing JAX (that would start its devices)."""
    for name in JAX_ACCELERATOR_PLUGINS:
        try:
            importlib.metadata.version(name)
            return name
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def accelerator_hint() -> str | None:
    """A line for a user who has JAX with an accelerator installed but left the backend unset (TensorFlow on CPU)."""
    if os.environ.get("KERAS_BACKEND"):
        return None
    plugin = jax_accelerator_plugin()
    if plugin is None or importlib.util.find_spec("jax") is None:
        return None
    return (f"note: JAX with an accelerator is installed ({plugin}) but KERAS_BACKEND is not set, so Keras runs "
            "TensorFlow on the CPU; run with KERAS_BACKEND=jax to train on the accelerator")


def devices() -> list[str]:
    """The devices the current Keras backend computes on, e.g. ["cuda:0"] or ["cpu:0", "cpu:1"]."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id}" for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        return [d.name.replace("/device:", "").lower() for d in gpus] or ["cpu:0"]
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu:0"]
    return ["cpu:0"]


def data_parallel(device_list=None):
    """Keras' `DataParallel` over `device_list` (default: every local device), tolerant of a short last batch.

    Keras shards each batch's first axis over the devices and JAX refuses a batch the device count
    does not divide, which the last batch of an epoch or of a prediction usually is. Such a batch is
    replicated instead: every device computes all of it, which gives the same numbers, and only that
    batch runs without the speed-up.
    """
    import keras

    class ShortBatchDataParallel(keras.distribution.DataParallel):
        def get_data_layout(self, data_shape):
            if data_shape and data_shape[0] is not None and data_shape[0] % len(self.device_mesh.devices.flat):
                return keras.distribution.TensorLayout([None] * len(data_shape), self.device_mesh)
            return super().get_data_layout(data_shape)

    return ShortBatchDataParallel(devices=device_list or keras.distribution.list_devices())


def predict_batch(model, batch):
    """`model(batch)` in inference mode, the batch split over the devices when a distribution is set.

    The feature precompute calls models directly (no `fit`/`predict`, which distribute by themselves):
    without this, every device would compute the whole batch.
    """
    import keras

    distribution = keras.distribution.distribution()
    if distribution is not None:
        batch = keras.distribution.distribute_tensor(batch, distribution.get_data_layout(batch.shape))
    return model(batch, training=False)


def device_multiple() -> int:
    """Rows a batch must be a multiple of: the device count under data parallelism, else 1 (Keras fixes the
    data layout from the first batch, so a smaller last batch must be padded)."""
    import keras

    distribution = keras.distribution.distribution()
    return len(distribution.device_mesh.devices.flatten()) if distribution is not None else 1


def backend_report() -> dict:
    """Backend, devices, precision and data parallelism as they are set now (what `run.json` records)."""
    import keras

    distribution = keras.distribution.distribution()
    return {"backend": keras.backend.backend(), "devices": devices(), "precision": keras.config.dtype_policy().name,
            "data_parallel": isinstance(distribution, keras.distribution.DataParallel)}


def describe(report: dict) -> str:
    """One line for the start of a run."""
    listed = ", ".join(report["devices"])
    parallel = f", data parallel over {len(report['devices'])} devices" if report["data_parallel"] else ""
    return f"backend: {report['backend']} on {listed}; precision {report['precision']}{parallel}"


def check(config: dict) -> None:
    """Refuse unknown values before any run directory exists (Keras is not imported)."""
    image = config.get("image", {})
    precision = image.get("precision", "float32")
    if precision not in PRECISIONS:
        raise PodiumError(f"image.precision: unknown {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if image.get("data_parallel"):
        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        if backend != "jax":
            raise PodiumError(f"image.data_parallel needs the JAX backend (Keras' DataParallel); this run uses "
                              f"{backend}: install it (pip install -e \".[gpu]\") and run with KERAS_BACKEND=jax")


def configure(config: dict, *, quiet: bool = False) -> dict:
    """Set the dtype policy and the distribution from `config["image"]`; print and return the backend report.

    Call it before any model is built: layers take the global policy, and variables their layout, when created.
    A config without `image.precision` / `image.data_parallel` (e.g. MovieLens) resets both to the defaults.
    """
    import keras

    check(config)
    image = config.get("image", {})
    precision = image.get("precision", "float32")
    keras.config.set_dtype_policy(precision)
    if image.get("data_parallel"):
        if keras.backend.backend() != "jax":  # the environment changed after Keras was imported
            raise PodiumError(f"image.data_parallel needs the JAX backend; Keras runs {keras.backend.backend()} "
                              "(set KERAS_BACKEND=jax before podium starts)")
        keras.distribution.set_distribution(data_parallel())
    else:
        keras.distribution.set_distribution(None)
    report = backend_report()
    if not quiet:
        logger.info(describe(report))
        if precision == "mixed_float16" and all(d.startswith("cpu") for d in report["devices"]):
            logger.info("note: mixed_float16 is slow on a CPU; use it on a GPU (mixed_bfloat16 suits recent CPUs and TPUs)")
        hint = accelerator_hint()
        if hint:
            logger.info(hint)
    return report
