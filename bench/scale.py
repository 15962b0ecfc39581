"""Every image plugin at Kaggle's size: generated data in each Kaggle layout, the default `podium run` to a
validated submission, then `podium predict` with TTA; per stage wall time, peak anonymous memory and disk.

    python bench/scale.py                                   # all plugins, a quarter and all of Kaggle's rows
    python bench/scale.py --plugins state-farm --fractions 0.1 0.25 1 --bare
    python bench/scale.py --plugins redux --fractions 0.25 --limit-gib 8 --repo /tmp/podium-before

Kaggle's counts: State Farm 22,424 labelled (26 drivers) + 79,726 test; Dogs vs. Cats Redux 25,000 + 12,500;
Fisheries 3,777 + 1,000 (+ 12,153 stage 2 with --stage2). Images are small (the bench measures podium, not
JPEG decoding), the backbone is cheap (EfficientNet-Lite0 from ../shared/weights at 64x80 by default, so its
feature maps are 2x3); the backbone's own images/s is printed apart, so podium's cost is separated from the
network's. Everything else is each plugin's default config.

Memory is anonymous resident memory (RssAnon of the `podium` process, sampled 5 times a second: page cache of
memory-mapped feature files is not counted); `--limit-gib` kills a run above it (the report says where).
Per-stage figures come from the run's metrics.json (`stages`), whole-run figures from the sampling here.
`--bare` also times bare Keras fits of the same heads on the same rows held in memory (podium's own time
after the precompute / the bare fits: target <= 1.5). `--repo DIR` runs another checkout of podium (e.g. the
code before a change) with the same data. `--accelerator FILE` (the JSON `bench/accelerator.py --json`
prints on a GPU) projects the run's backbone and head time onto that device.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LITE0  # noqa: E402

KAGGLE = {  # plugin -> (labelled, test) at Kaggle's size
    "state-farm": (22_424, 79_726),
    "dogs-vs-cats-redux": (25_000, 12_500),
    "fisheries": (3_777, 1_000),
}
ALIASES = {"redux": "dogs-vs-cats-redux", "statefarm": "state-farm", "state_farm": "state-farm"}
GIB = 2**30


# -- data -------------------------------------------------------------------------------------------
def write_state_farm(out: Path, fraction: float, seed: int) -> Path:
    from podium.competitions import get

    labelled, test = KAGGLE["state-farm"]
    drivers = 26
    per_class = max(1, round(labelled * fraction / drivers / 10))
    return get("state-farm").make_demo_data(out, seed=seed, drivers=drivers, per_class=per_class,
                                            test_images=max(10, round(test * fraction)), size=(60, 80))


def write_redux(out: Path, fraction: float, seed: int) -> Path:
    import numpy as np
    import pandas as pd

    from podium.competitions.dogs_vs_cats import write_demo_image

    labelled, test = KAGGLE["dogs-vs-cats-redux"]
    rng = np.random.default_rng(seed)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "test").mkdir(parents=True, exist_ok=True)
    for kind_index, kind in enumerate(("cat", "dog")):
        for n in range(round(labelled * fraction / 2)):
            write_demo_image(out / "train" / f"{kind}.{n}.jpg", kind_index, rng)
    ids = np.arange(1, round(test * fraction) + 1)
    for test_id in ids:
        write_demo_image(out / "test" / f"{test_id}.jpg", int(rng.integers(2)), rng)
    pd.DataFrame({"id": ids, "label": 0.5}).to_csv(out / "sample_submission.csv", index=False)
    return out


def write_fisheries(out: Path, fraction: float, seed: int, *, stage2: bool = False) -> Path:
    from podium.competitions.fisheries import CLASSES, write_demo_data

    labelled, test = KAGGLE["fisheries"]
    return write_demo_data(out, seed=seed, per_class=max(2, round(labelled * fraction / len(CLASSES))),
                           stage1=max(4, round(test * fraction)),
                           stage2=max(2, round(12_153 * fraction)) if stage2 else 2)


WRITERS = {"state-farm": write_state_farm, "dogs-vs-cats-redux": write_redux, "fisheries": write_fisheries}


def dataset(work: Path, plugin: str, fraction: float, *, stage2: bool) -> tuple[Path, float]:
    """The generated data folder (written once, kept for later runs) and the seconds writing it took."""
    folder = work / "data" / f"{plugin}-{fraction:g}{'-stage2' if stage2 else ''}"
    marker = folder / ".complete"
    if marker.is_file():
        return folder, 0.0
    started = time.perf_counter()
    if plugin == "fisheries":
        write_fisheries(folder, fraction, 0, stage2=stage2)
    else:
        WRITERS[plugin](folder, fraction, 0)
    marker.write_text("written\n")
    return folder, time.perf_counter() - started


# -- running a command, watched -------------------------------------------------------------------
def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _written_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/io") as handle:
            for line in handle:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def watched(command: list, *, log: Path, env: dict, limit_gib: float | None, cwd: Path) -> dict:
    """Run `command`, sampling its anonymous memory; kill it above `limit_gib`. Its output goes to `log`."""
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                   start_new_session=True)
        peak, killed, last_line = 0, None, ""
        while process.poll() is None:
            anon = _status_kib(process.pid, "RssAnon") * 1024
            peak = max(peak, anon)
            if limit_gib and anon > limit_gib * GIB and killed is None:
                lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
                last_line = lines[-1][-160:] if lines else ""
                killed = f"killed at {anon / GIB:.1f} GiB anonymous memory after {time.perf_counter() - started:.0f} s"
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.2)
    return {"rc": process.returncode, "seconds": time.perf_counter() - started, "peak_gib": peak / GIB,
            "killed": killed, "last_line": last_line}


def podium_command(*args) -> list:
    """`python -m podium ...`; which checkout runs is the PYTHONPATH of the environment (`--repo`)."""
    return [sys.executable, "-m", "podium", *[str(a) for a in args]]


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


# -- figures ------------------------------------------------------------------------------------------
def backbone_images_per_s(size: tuple[int, int], batch: int = 64, repeats: int = 5) -> float:
    """The bare backbone's forward pass on random pixels (no decoding): the network's own cost."""
    import numpy as np

    from podium.vision.backbones import BackboneSpec

    spec = BackboneSpec(name=str(LITE0), weights="imagenet", preprocessing="efficientnet_lite", size=size)
    model = spec.build()
    pixels = spec.preprocess(np.random.default_rng(0).integers(0, 256, (batch, *size, 3)).astype("float32"))
    model.predict_on_batch(pixels)
    started = time.perf_counter()
    for _ in range(repeats):
        model.predict_on_batch(pixels)
    return batch * repeats / (time.perf_counter() - started)


def bare_fits(plugin_name: str, data_dir: Path, run_dir: Path) -> dict:
    """Bare `model.fit` of each head the run trained (same kind, rows per epoch, epochs and validation rows),
    on rows held in memory: the floor podium's own training is compared with."""
    import keras
    import numpy as np
    import pandas as pd

    from podium.competitions import get
    from podium.core.rundir import load_run
    from podium.vision.data import load_image_data
    from podium.vision.heads import build_head

    plugin = get(plugin_name)
    config, _ = load_run(run_dir)
    data = load_image_data(plugin, data_dir, config, sample=False)
    features = data.labelled_features(0).array
    train, valid, labelled = len(data.train_rows), len(data.valid_rows), len(data.train_rows) + len(data.valid_rows)
    pseudo = bool(config["pseudo"]["enabled"])
    fraction = float(config["pseudo"]["fraction"]) if pseudo else 0.0
    folds = int(config["oof"]["folds"])
    fold_train = labelled * (folds - 1) // max(folds, 1)
    fits = []  # (name, head config, rows an epoch, validation rows, epochs run)
    for history in sorted(run_dir.glob("history_*.csv")) + sorted((run_dir / "oof").glob("history_*.csv")):
        name, epochs = history.stem.replace("history_", ""), len(pd.read_csv(history))
        if name.startswith("without_pseudo_fold"):  # the fold heads the pseudo-labels are judged against
            fits.append((name, config["head"], fold_train, fold_train, epochs))
        elif name.startswith("fold") or name == "refit":
            fits.append((name, config["head"], round(fold_train / (1 - fraction)), fold_train, epochs))
        elif name.startswith("pseudo"):
            fits.append((name, config["head"], round(train / (1 - fraction)), valid, epochs))
        else:
            fits.append((name, config["head"], train, valid, epochs))
    # The ensemble's members are heads the run trained too: each Keras member's fold heads with its own head
    # config, and the logistic member as the same scikit-learn fits on pooled rows in memory.
    ensemble = run_dir / "ensemble" / "ensemble.json"
    members = json.loads(ensemble.read_text())["members"] if ensemble.is_file() else []
    for member in members:
        for history in sorted((run_dir / "ensemble" / member["name"]).glob("history_*.csv")):
            fits.append((f"{member['name']}/{history.stem.replace('history_', '')}", member["head"],
                         round(fold_train / (1 - fraction)), fold_train, len(pd.read_csv(history))))
    rng = np.random.default_rng(0)
    batch = int(config["train"]["batch_size"])
    classes = len(plugin.classes)
    seconds = {}
    for name, head, rows, valid_rows, epochs in fits:
        pick = np.sort(rng.integers(0, len(features), size=rows))
        x = np.asarray(features[pick], dtype=np.float32)
        y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, size=rows)]
        xv = x[:valid_rows] if valid_rows <= rows else np.resize(x, (valid_rows, *x.shape[1:]))
        yv = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, size=len(xv))]
        keras.backend.clear_session()
        started = time.perf_counter()
        metadata_dim = data.metadata_dim if head.get("metadata") else 0
        model = build_head(data.feature_shape, classes, head, metadata_dim=metadata_dim,
                           weight_decay=float(config["train"]["weight_decay"]))
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        inputs = x if not metadata_dim else {"features": x, "metadata": np.zeros((rows, metadata_dim),
                                                                                 dtype=np.float32)}
        valid_inputs = xv if not metadata_dim else {"features": xv, "metadata": np.zeros(
            (len(xv), metadata_dim), dtype=np.float32)}
        model.fit(inputs, y, batch_size=batch, epochs=epochs, validation_data=(valid_inputs, yv), verbose=0,
                  shuffle=True)
        seconds[name] = {"seconds": time.perf_counter() - started, "rows": rows, "epochs": epochs}
        del x, xv
    if any(member["name"] == "logistic" for member in members):
        seconds["logistic"] = bare_logistic(features, classes, rows=fold_train, folds=folds, rng=rng)
    return seconds


def bare_logistic(features, classes: int, *, rows: int, folds: int, rng) -> dict:
    """scikit-learn's fits of the ensemble's logistic member (standardised pooled rows, C from the strongest
    regularisation up with warm starts, one fold's rows per fold) on rows already pooled in memory."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from podium.evaluation.heads_ensemble import LOGISTIC_C

    pick = np.sort(rng.integers(0, len(features), size=rows))
    x = np.asarray(features[pick], dtype=np.float32)
    x = x.mean(axis=(1, 2)) if x.ndim == 4 else x.reshape(len(x), -1)
    y = rng.integers(0, classes, size=rows)
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):  # as the member's own fits
        for _ in range(folds):
            scaled = StandardScaler().fit_transform(x)
            model = LogisticRegression(max_iter=1000, warm_start=True)
            for c in LOGISTIC_C:
                model.set_params(C=c).fit(scaled, y)
    return {"seconds": time.perf_counter() - started, "rows": rows, "epochs": len(LOGISTIC_C)}


def stage_table(metrics: dict) -> list[str]:
    lines = []
    for stage in metrics.get("stages", []):
        lines.append(f"      {stage['stage']:<15} {stage['seconds']:9.1f} s  peak {stage.get('peak_rss_mib', 0):8,.0f} MiB"
                     f"  disk {stage['disk_mib']:9,.1f} MiB")
    return lines


def image_counts(data_dir: Path) -> tuple[int, int]:
    """(labelled, test) images of a generated data folder: test ones lie under a folder named test*."""
    paths = [p.relative_to(data_dir) for p in data_dir.rglob("*.jpg")]
    test = sum(any(part.startswith("test") for part in p.parts[:-1]) for p in paths)
    return len(paths) - test, test


def newest_run(runs: Path) -> Path | None:
    found = sorted((p.parent for p in runs.rglob("metrics.json")), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def one(args, plugin: str, fraction: float, env: dict) -> dict:
    work = args.work
    data_dir, wrote = dataset(work, plugin, fraction, stage2=args.stage2)
    tag = f"{plugin}-{fraction:g}-{args.label}"
    runs, cache = work / "runs" / tag, work / "cache" / tag
    height, width = args.size
    sets = [f"image.backbone={LITE0}", "image.preprocessing=efficientnet_lite", f"image.size=[{height},{width}]",
            f"paths.cache={cache}", *args.set]
    log = work / f"{tag}.run.log"
    result = {"plugin": plugin, "fraction": fraction, "data_seconds": wrote, "log": str(log)}
    command = podium_command("run", plugin, "--data", data_dir, "--out", runs,
                             *[item for s in sets for item in ("--set", s)])
    result["run"] = watched(command, log=log, env=env, limit_gib=args.limit_gib, cwd=work)
    run_dir = newest_run(runs)
    result["disk_gb"] = (folder_bytes(cache) + folder_bytes(runs)) / 1e9
    if result["run"]["rc"] != 0 or run_dir is None:
        result["error"] = result["run"]["killed"] or (log.read_text(errors="replace").strip().splitlines() or [""])[-1]
        return result
    metrics = json.loads((run_dir / "metrics.json").read_text())
    result["metrics"] = metrics
    result["rows"] = image_counts(data_dir)
    check = subprocess.run(podium_command("validate", plugin, metrics["submission"], "--data", data_dir),
                           capture_output=True, text=True, env=env, cwd=work)
    result["valid"] = (check.stdout.strip().splitlines() or [""])[0]
    if args.tta is not None:
        log = work / f"{tag}.predict.log"
        result["predict"] = watched(podium_command("predict", run_dir, "--tta", args.tta), log=log, env=env,
                                    limit_gib=args.limit_gib, cwd=work)
        saved = sorted(run_dir.glob("predict_tta*.json"))
        if saved:
            result["predict_metrics"] = json.loads(saved[-1].read_text())
        elif result["predict"]["rc"] != 0:
            result["predict"]["error"] = (log.read_text(errors="replace").strip().splitlines() or [""])[-1]
    if args.bare:
        result["bare"] = bare_fits(plugin, data_dir, run_dir)
    return result


def report(result: dict, args, accelerator: dict | None) -> list[str]:
    run = result["run"]
    head = f"{result['plugin']} x{result['fraction']:g}"
    if "error" in result:
        return [f"{head}: FAILED after {run['seconds']:.0f} s, peak {run['peak_gib']:.2f} GiB anonymous: "
                f"{result['error']}" + (f" (last output: {run['last_line']})" if run.get("last_line") else "")]
    metrics = result["metrics"]
    labelled, test = result["rows"]
    lines = [f"{head}: {labelled:,} labelled + {test:,} test rows; run {run['seconds']:.0f} s (podium: "
             f"{metrics.get('run_seconds', 0):.0f} s), peak {run['peak_gib']:.2f} GiB anonymous "
             f"(podium: {metrics.get('peak_rss_mib', 0) / 1024:.2f} GiB), disk {result['disk_gb']:.2f} GB; "
             f"submission {result.get('valid', '?')}"]
    lines += stage_table(metrics) or ["      (no per-stage figures: this code does not record them)"]
    precompute = next((s["seconds"] for s in metrics.get("stages", []) if s["stage"] == "data"), 0.0)
    after = metrics.get("run_seconds", run["seconds"]) - precompute
    if precompute:
        lines.append(f"    precompute (data stage) {precompute:.0f} s = {(labelled + test) / precompute:.0f} images/s; "
                     f"podium's own time after it {after:.0f} s")
    if "predict" in result:
        predict = result["predict"]
        if predict.get("rc") == 0:
            lines.append(f"    podium predict --tta {args.tta}: {predict['seconds']:.0f} s, peak "
                         f"{predict['peak_gib']:.2f} GiB anonymous")
            lines += stage_table(result.get("predict_metrics", {}))
        else:
            lines.append(f"    podium predict --tta {args.tta}: FAILED ({predict.get('killed') or predict.get('error')})")
    if "bare" in result:
        bare = sum(fit["seconds"] for fit in result["bare"].values())
        fits = ", ".join(f"{name} {fit['seconds']:.0f} s ({fit['rows']:,} rows x {fit['epochs']})"
                         for name, fit in result["bare"].items())
        lines.append(f"    bare Keras fits of the same heads: {bare:.0f} s ({fits}); podium after precompute / bare = "
                     f"{after / max(bare, 1e-9):.2f} (target <= 1.5)")
    if accelerator:
        gpu = (labelled + test) / accelerator["precompute_images_per_s"]
        lines.append(f"    on {accelerator.get('devices', ['the accelerator'])[0]}: the precompute of these "
                     f"{labelled + test:,} images about {gpu:.0f} s at its {accelerator['precompute_images_per_s']:.0f} "
                     f"images/s ({accelerator['backbone']} at {accelerator['size']}px); a head epoch at "
                     f"{accelerator['head_epoch_images_per_s']:.0f} rows/s")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", nargs="+", default=list(KAGGLE), help="state-farm, redux, fisheries")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.25, 1.0], help="of Kaggle's row counts")
    parser.add_argument("--size", nargs=2, type=int, default=[64, 80], metavar=("H", "W"), help="image.size")
    parser.add_argument("--set", action="append", default=[], help="more config (key=value) for every run")
    parser.add_argument("--tta", type=int, default=1, help="podium predict --tta N after each run (-1: skip)")
    parser.add_argument("--bare", action="store_true", help="time bare Keras fits of the same heads")
    parser.add_argument("--limit-gib", type=float, default=None, help="kill a run above this anonymous memory")
    parser.add_argument("--work", type=Path, default=Path("/tmp/podium-scale"))
    parser.add_argument("--repo", type=Path, default=REPO, help="the podium checkout to run (default: this one)")
    parser.add_argument("--label", default="", help="a name for this code's runs (default: its git commit)")
    parser.add_argument("--stage2", action="store_true", help="Fisheries: also 12,153 stage-2 test images")
    parser.add_argument("--accelerator", type=Path, default=None, help="bench/accelerator.py --json output")
    args = parser.parse_args(argv)
    args.tta = None if args.tta < 0 else args.tta
    args.repo = args.repo.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    args.label = args.label or subprocess.run(["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"],
                                              capture_output=True, text=True).stdout.strip() or "code"
    plugins = [ALIASES.get(name, name) for name in args.plugins]
    unknown = [name for name in plugins if name not in KAGGLE]
    if unknown:
        parser.error(f"unknown plugins {unknown}; choose from {list(KAGGLE)}")
    env = {**os.environ, "PYTHONPATH": str(args.repo), "NO_ALBUMENTATIONS_UPDATE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    accelerator = None
    if args.accelerator:
        text = args.accelerator.read_text()
        accelerator = json.loads(text.split("RESULT ", 1)[1] if "RESULT " in text else text)
    print(f"podium at {args.repo} ({args.label}); Lite0 {args.size[0]}x{args.size[1]}: backbone alone "
          f"{backbone_images_per_s(tuple(args.size)):.0f} images/s on this CPU (random pixels, batch 64)", flush=True)
    if accelerator is None:
        print("no --accelerator figures: GPU projection left out (run bench/accelerator.py --json on a GPU)")
    for plugin in plugins:
        for fraction in args.fractions:
            result = one(args, plugin, fraction, env)
            if result["data_seconds"]:
                print(f"  (wrote {plugin} x{fraction:g} data in {result['data_seconds']:.0f} s)")
            print("\n".join(report(result, args, accelerator)), flush=True)
            (args.work / f"{plugin}-{fraction:g}-{args.label}.json").write_text(json.dumps(result, indent=1,
                                                                                           default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
