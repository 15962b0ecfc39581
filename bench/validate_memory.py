"""Peak memory of `podium validate` on a big submission: whole-frame (before) vs chunked (after).

    python bench/validate_memory.py [--rows 10000000] [--before COMMIT]

Writes a Dogs vs. Cats Redux submission of ROWS rows (`id,label`), then checks it in two fresh
processes and prints each one's peak RSS: "before" runs the whole-frame reader and checks of
COMMIT (default: the commit before the streaming validator, loaded from git into a temp module);
"after" runs this tree's `inspect_file`. Both must find the file valid. A bench, not a test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "3e59264"  # the last commit whose validator read the whole file into one frame

BEFORE_SCRIPT = """
import importlib.util, json, resource, sys, time
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); return module
fmt = load("old_format", sys.argv[2]); val = load("old_validate", sys.argv[3])
started = time.perf_counter()
frame, reason = val.read_submission(sys.argv[1])
reasons = fmt.validate_frame(frame, ["id", "label"], rows_sum_to_one=False)
print(json.dumps({"rows": len(frame), "reasons": reasons, "seconds": time.perf_counter() - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

AFTER_SCRIPT = """
import json, resource, sys, time
from podium.competitions import get
from podium.submission.validate import inspect_file
started = time.perf_counter()
rows, reasons = inspect_file(get("dogs-vs-cats-redux"), sys.argv[1])
print(json.dumps({"rows": rows, "reasons": reasons, "seconds": time.perf_counter() - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BASELINE_SCRIPT = """
import json, resource
import numpy, pandas
from podium.competitions import get
from podium.submission.validate import inspect_file
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_submission(path: Path, rows: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    with open(path, "w") as handle:
        handle.write("id,label\n")
        step = 1_000_000
        for start in range(0, rows, step):
            ids = np.arange(start + 1, min(start + step, rows) + 1)
            labels = rng.random(len(ids))
            handle.write("".join(f"{i},{p:.6f}\n" for i, p in zip(ids.tolist(), labels.tolist())))


def measure(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--before", default=BEFORE, help="commit whose whole-frame validator is measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        csv = folder / "submission.csv"
        write_submission(csv, args.rows)
        size_mb = csv.stat().st_size / 2**20
        old = {}
        for name in ("core/submission_format.py", "submission/validate.py"):
            text = subprocess.run(["git", "show", f"{args.before}:podium/{name}"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout
            old[name] = folder / name.replace("/", "_")
            old[name].write_text(text)
        baseline = measure(BASELINE_SCRIPT)
        before = measure(BEFORE_SCRIPT, str(csv), str(old["core/submission_format.py"]),
                         str(old["submission/validate.py"]))
        after = measure(AFTER_SCRIPT, str(csv))
    print(f"submission: {args.rows:,} rows, {size_mb:.0f} MB; python + pandas + podium imported: "
          f"{baseline['peak_mb']:.0f} MB")
    for name, result in (("before (whole frame)", before), ("after (chunked)", after)):
        print(f"{name:22s} peak RSS {result['peak_mb']:7.0f} MB ({result['peak_mb'] / size_mb:4.1f}x the file), "
              f"{result['seconds']:6.1f} s, {result['rows']:,} rows, {len(result['reasons'])} problems")


if __name__ == "__main__":
    main()
