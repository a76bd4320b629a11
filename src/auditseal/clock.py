"""Time as an argument: the core never reads the clock, callers pass a ``Clock``.

Tests pin time with ``FixedClock``; everything else uses ``SystemClock``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Source of wall-clock time."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.fromtimestamp(time.time(), tz=UTC)


class FixedClock:
    """A clock that returns what it is told; for tests."""

    def __init__(self, at: datetime) -> None:
        """Start at ``at`` (must be timezone-aware)."""
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self.at = at

    def now(self) -> datetime:
        """Return the pinned time."""
        return self.at
