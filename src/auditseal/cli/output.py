"""How commands print: JSON for machines, short lines for people, a progress bar on ttys."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import orjson


def print_json(value: Any, out: TextIO | None = None) -> None:
    """Print ``value`` as indented JSON."""
    stream = out or sys.stdout
    stream.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, *, enabled: bool | None = None, stream: TextIO | None = None
                 ) -> None:
        """Prepare a bar; ``enabled`` defaults to whether stderr is a tty."""
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.started = time.monotonic()
        self._last_draw = 0.0

    def update(self, done: int, total: int) -> None:
        """Redraw at most ten times a second."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and done < total:
            return
        self._last_draw = now
        share = done / total if total else 1.0
        filled = int(share * 30)
        rate = done / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} "
            f"({rate:,.0f}/s)"
        )
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
