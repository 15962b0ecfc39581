"""Progress messages go through the `podium` logger: the CLI shows them, a tuning worker or a library user
can silence them (`configure(quiet=True)` or the logging module) without touching Keras' progress bars."""
from __future__ import annotations

import logging
import sys

__all__ = ["ConsoleHandler", "configure", "end_progress_line", "logger"]

logger = logging.getLogger("podium")


class LineTrackingStream:
    """A text stream that remembers whether its last write left a line open (a progress bar redrawn with
    a carriage return), so a message is never printed at the end of a bar."""

    def __init__(self, stream):
        self.stream = stream
        self.mid_line = False

    def write(self, text):
        if text:
            self.mid_line = not text.endswith("\n")
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def end_progress_line() -> None:
    """End the line a progress bar left open on standard output (before a message or an error line)."""
    if isinstance(sys.stdout, LineTrackingStream) and sys.stdout.mid_line:
        sys.stdout.write("\n")
        sys.stdout.flush()


class ConsoleHandler(logging.Handler):
    """Writes to whatever `sys.stdout` is at the time (so redirected or captured output gets it too)."""

    podium_console = True

    def emit(self, record: logging.LogRecord) -> None:
        end_progress_line()
        sys.stdout.write(self.format(record) + "\n")


def configure(*, quiet: bool = False) -> None:
    """Show podium's progress on standard output (warnings only when `quiet`); idempotent."""
    if not any(getattr(handler, "podium_console", False) for handler in logger.handlers):
        handler = ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    if not isinstance(sys.stdout, LineTrackingStream):
        sys.stdout = LineTrackingStream(sys.stdout)
