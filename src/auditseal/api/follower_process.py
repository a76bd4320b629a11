"""The parent's side of the follower process: start it, forward searches, seal its alerts.

Concept: see :mod:`auditseal.api.follower` (the child's side and the messages). The
serving process holds one :class:`FollowerProcess`: it spawns the child, sends it searches
and waits for the rows, seals the alerts the child fires (only then recording how far
alerting got), and restarts a child that died.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from auditseal.api.follower import FollowerConfig, child_main
from auditseal.errors import AuditsealError, FormatError, StorageUnavailable

if TYPE_CHECKING:
    from auditseal.index import QueryResult

__all__ = ["FollowerProcess", "SealAlerts"]

log = logging.getLogger("auditseal.serve")

STOP_GRACE_S = 5.0
"""How long :meth:`FollowerProcess.stop` waits before terminating the child (the index
commits per batch and alerting resumes from the parent's record, so cutting it is safe)."""
RESTART_DELAY_S = 1.0
"""How long the parent waits before restarting a follower that died."""


SealAlerts = Callable[[int, list[bytes]], None]
"""The parent's callback: seal these alerts, then record ``end`` as alerted."""


class FollowerProcess:
    """The parent's side: starts the child, forwards searches, seals what it fires."""

    def __init__(self, config: FollowerConfig, seal_alerts: SealAlerts) -> None:
        """Prepare; :meth:`start` spawns the child."""
        self.config = config
        self._seal_alerts = seal_alerts
        self.indexed = 0
        self.alerted = config.alerted
        """Alerting's position: everything before it was evaluated and its alerts sealed."""
        self.error: str | None = None
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None
        self._receiver: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[QueryResult]] = {}
        self._next_id = 0
        self._stopping = False
        self._backlog: list[tuple[int, list[bytes]]] = []

    def start(self) -> None:
        """Spawn the child and the thread that receives from it."""
        ours, theirs = self._context.Pipe()
        config = dataclasses.replace(self.config, alerted=self.alerted)
        self._process = self._context.Process(target=child_main, args=(theirs, config),
                                              name="auditseal-follower", daemon=True)
        self._process.start()
        theirs.close()
        self._conn = ours
        self._receiver = threading.Thread(target=self._receive, args=(ours,), daemon=True,
                                          name="auditseal-follower-receiver")
        self._receiver.start()

    def stop(self) -> None:
        """Ask the child to stop; terminate it after :data:`STOP_GRACE_S`."""
        self._stopping = True
        if self._process is None:
            return
        with contextlib.suppress(OSError, ValueError), self._send_lock:
            assert self._conn is not None
            self._conn.send(("stop",))
        self._process.join(STOP_GRACE_S)
        if self._process.is_alive():
            log.warning("the follower did not stop within %.0f s; terminating it", STOP_GRACE_S)
            self._process.terminate()
            self._process.join(STOP_GRACE_S)
        if self._receiver is not None:
            self._receiver.join(STOP_GRACE_S)
        self._seal_backlog()
        self._process = None

    def reload_rules(self) -> None:
        """Make the child reload its rules before its next round."""
        self._send(("reload",))

    def query(self, text: str, language: str, max_rows: int, timeout_s: float = 300.0
              ) -> QueryResult:
        """Run a search in the child.

        Raises:
            FormatError: the query does not parse or fails.
            StorageUnavailable: the follower is not running or did not answer.
        """
        future: Future[QueryResult] = Future()
        with self._send_lock:
            self._next_id += 1
            query_id = self._next_id
            self._pending[query_id] = future
        try:
            self._send(("query", query_id, text, language, max_rows))
            return future.result(timeout_s)
        except TimeoutError:
            raise StorageUnavailable(
                f"the search index did not answer in {timeout_s:.0f} s") from None
        finally:
            self._pending.pop(query_id, None)

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._conn is None or self._stopping:
            raise StorageUnavailable("the search index is not running")
        with self._send_lock:
            self._conn.send(message)

    def _receive(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "indexed":
                self.indexed = max(self.indexed, message[1])
            elif kind == "alerts":
                self._alerts(message[1], message[2])
            elif kind == "error":
                self.error = message[1]
            elif kind in ("result", "failed"):
                self._answer(message)
        for future in list(self._pending.values()):  # the child is gone: nobody will answer
            if not future.done():
                future.set_exception(StorageUnavailable("the search index stopped"))
        self._seal_backlog()
        if not self._stopping:
            code = self._process.exitcode if self._process is not None else None
            self.error = f"the follower exited (code {code}); restarted"
            log.warning("%s", self.error)
            time.sleep(RESTART_DELAY_S)
            if not self._stopping:
                self._backlog.clear()  # the new child re-evaluates from what was sealed
                self.start()

    def _alerts(self, end: int, alerts: list[bytes]) -> None:
        self._backlog.append((end, alerts))
        self._seal_backlog()

    def _seal_backlog(self) -> None:
        """Seal what the child fired, in order; what fails stays for the next try."""
        while self._backlog:
            end, alerts = self._backlog[0]
            try:
                self._seal_alerts(end, alerts)
            except (AuditsealError, RuntimeError) as exc:
                self.error = f"could not seal {len(alerts)} alerts (will retry): {exc}"
                log.warning("follower: %s", self.error)
                return
            self._backlog.pop(0)
            self.alerted = end

    def _answer(self, message: tuple[Any, ...]) -> None:
        future = self._pending.get(message[1])
        if future is None or future.done():
            return
        if message[0] == "result":
            future.set_result(message[2])
        elif message[2] == "format":
            future.set_exception(FormatError(message[3]))
        else:
            future.set_exception(StorageUnavailable(message[3]))
