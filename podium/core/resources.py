"""What a run costs: wall time, peak anonymous memory and disk, for the whole run and per stage.

Memory is the process's anonymous resident memory (`RssAnon` in /proc/self/status): what the run holds
itself. Pages of memory-mapped feature files are the kernel's file cache, which it drops under pressure,
so they are not counted (`ru_maxrss`, counted where /proc is missing, includes them). A sampling thread
reads it a few times a second: anonymous memory has no high-water mark of its own.
"""
from __future__ import annotations

import os
import resource
import threading
import time

__all__ = ["MemorySampler", "anonymous_rss_mib", "disk_bytes"]

MIB = 2**20


def anonymous_rss_mib() -> float:
    """This process's anonymous resident memory in MiB (its peak resident memory where /proc is missing)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if os.uname().sysname == "Darwin" else peak / 1024  # bytes on macOS, kB on Linux


def disk_bytes(folders) -> int:
    """Bytes of disk the files under `folders` hold (allocated blocks: a sparse file counts what it uses)."""
    total = 0
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                try:
                    stat = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                total += getattr(stat, "st_blocks", 0) * 512 or stat.st_size
    return total


class MemorySampler:
    """Peak anonymous memory over a run (`peak_mib`) and since the last `lap()`, sampled on a thread.

    While one is entered it is `MemorySampler.active`, so the stages of the run can read their own peaks."""

    active: "MemorySampler | None" = None

    def __init__(self, interval: float = 0.2):
        self.interval = float(interval)
        self.peak_mib = self._lap_mib = anonymous_rss_mib()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._sample, name="podium-memory", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._record()

    def _record(self) -> None:
        now = anonymous_rss_mib()
        with self._lock:
            self.peak_mib, self._lap_mib = max(self.peak_mib, now), max(self._lap_mib, now)

    def lap(self) -> float:
        """Peak MiB since the previous lap (or the start), then a new lap begins."""
        self._record()
        with self._lock:
            peak, self._lap_mib = self._lap_mib, anonymous_rss_mib()
        return peak

    def __enter__(self) -> "MemorySampler":
        self.started = time.perf_counter()
        self._thread.start()
        self._outer, MemorySampler.active = MemorySampler.active, self
        return self

    def __exit__(self, *exc) -> None:
        MemorySampler.active = self._outer
        self._stop.set()
        self._thread.join()
        self._record()
        self.seconds = time.perf_counter() - self.started

