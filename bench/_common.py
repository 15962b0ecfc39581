"""Helpers shared by the benchmarks: timing, peak memory sampling, paths to ../shared."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LITE0 = SHARED / "weights" / "efficientnet_lite0_imagenet_notop.keras"


class PeakMemory:
    """Samples this process's resident memory in a thread; `peak_mb` is the highest reading above the start."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.start_mb = self.peak_mb = 0.0

    def _rss(self) -> float:
        return self._process.memory_info().rss / 2**20

    def __enter__(self):
        self.start_mb = self.peak_abs = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak_abs = max(self.peak_abs, self._rss())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = self.peak_abs - self.start_mb


@contextmanager
def timed(results: dict, key: str):
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start


def only_recipes(recipes: dict, only: str | None) -> dict:
    """The recipes whose name contains one of the comma-separated words of `--only` (all without it)."""
    if not only:
        return recipes
    words = [word.strip().lower() for word in only.split(",") if word.strip()]
    return {name: config for name, config in recipes.items() if any(word in name.lower() for word in words)}
