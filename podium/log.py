"""Progress messages go through the `podium` logger: the CLI shows them, a tuning worker or a library user
can silence them (`configure(quiet=True)` or the logging module) without touching Keras' progress bars."""
from __future__ import annotations

import logging
import sys

__all__ = ["ConsoleHandler", "configure", "logger"]

logger = logging.getLogger("podium")


class ConsoleHandler(logging.Handler):
    """Writes to whatever `sys.stdout` is at the time (so redirected or captured output gets it too)."""

    podium_console = True

    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(self.format(record) + "\n")


def configure(*, quiet: bool = False) -> None:
    """Show podium's progress on standard output (warnings only when `quiet`); idempotent."""
    if not any(getattr(handler, "podium_console", False) for handler in logger.handlers):
        handler = ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
