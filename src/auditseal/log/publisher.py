"""The background publisher: seals pending entries on a cadence, from its own thread.

Kept apart from the writer so the writer's module stays about durability and sealing;
this one only decides *when*: every ``interval_s``, or at once when woken (a backlog).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundPublisher:
    """Calls ``publish`` every ``interval_s`` (or when woken) until stopped."""

    def __init__(self, publish: Callable[[], object], interval_s: float,
                 on_result: Callable[[Exception | None], None]) -> None:
        """Prepare; nothing runs until :meth:`start`.

        Args:
            publish: seals what is pending (the writer's ``publish``).
            interval_s: the cadence, seconds.
            on_result: told after each round: None, or the exception it raised.
        """
        self._publish = publish
        self._interval_s = interval_s
        self._on_result = on_result
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="auditseal-publisher",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Publish now rather than at the next tick."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the round in progress (idempotent)."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval_s)
            self._wake.clear()
            try:
                self._publish()
            except Exception as exc:  # the thread must outlive any failure
                # Entries stay durable in the journal; the next round retries. A lasting
                # failure (expired credentials, a second writer) shows in publish_error and
                # in the OverloadError that appends get once the backlog is full.
                self._on_result(exc)
            else:
                self._on_result(None)
