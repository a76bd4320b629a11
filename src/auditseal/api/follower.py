"""The index and alert follower, in a child process of its own.

Concept: the service's *follower* (issue 5: "one process that collects, seals, indexes,
alerts and serves"). After each publish the search index is fed and the alert rules are
evaluated on the newly sealed events. Both cost several times what ingesting an event
costs, and in the serving process they took the GIL from ingest: with the follower in a
thread, ``auditseal serve`` accepted 13 k events/s against 22 k/s with it off
(docs/benchmarks.md, section 8). So it runs in a child process (``spawn``: the parent has
threads), at a lower CPU priority: durable ingest comes first, and the follower catches up
when the load eases. Its lag is reported (``indexed`` and ``alerted`` beside the log size).

The child owns the DuckDB index file (DuckDB lets one process write a file, and no other
process open it meanwhile), so searches are run by the child too: the parent sends the
query over the pipe and waits for the rows. Within the child, searches share one read-only
:class:`~auditseal.index.Searcher` (opening one costs ~100 ms), closed before each feed (the
feed needs the file to itself) and reopened by the next search: a search waits for a feed
batch in flight, never fails because of one. Only the parent holds the log's writer, so the
child sends the alerts it fires back, and the parent seals them and only then records how
far alerting got (``<state>/serve-alerts.json``): a crash re-evaluates, never skips.

Messages are pickled tuples over a :func:`multiprocessing.Pipe`:

* parent -> child: ``("query", id, text, language, max_rows)``, ``("reload",)``, ``("stop",)``;
* child -> parent: ``("result", id, QueryResult)``, ``("failed", id, kind, message)``,
  ``("indexed", size)``, ``("alerts", end, [alert JSON bytes])``, ``("error", text|None)``.

A child that dies is restarted by the parent on its next look; the index resumes from its
own recorded position and alerting from the parent's.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditseal.errors import AuditsealError, FormatError, StorageUnavailable

if TYPE_CHECKING:
    from auditseal.alerts import AlertEngine
    from auditseal.index import QueryResult, Searcher
    from auditseal.log.local import LocalLog

log = logging.getLogger("auditseal.serve")

FOLLOW_CHUNK = 4096
"""Entries the alert follower evaluates between two looks at the stop flag."""
CHILD_NICENESS = 5
"""How much lower the follower's CPU priority is than the serving process's."""
STOP_GRACE_S = 5.0
"""How long :meth:`FollowerProcess.stop` waits before terminating the child (the index
commits per batch and alerting resumes from the parent's record, so cutting it is safe)."""
RESTART_DELAY_S = 1.0
"""How long the parent waits before restarting a follower that died."""


@dataclass(frozen=True)
class FollowerConfig:
    """What the child needs to know (picklable: it crosses the process boundary).

    Attributes:
        spec: the ``--log`` text the child reopens the log from.
        interval_s: how often it looks for a new checkpoint.
        index: feed the search index.
        alerts: evaluate the alert rules.
        rules_paths: extra Sigma rule files or folders.
        builtin_rules: include the built-in pack.
        suppress_window_s: the command line's alert suppression window (an admin's
            override in the log's state wins).
        alerted: the log size alerting starts from (the parent's record).
    """

    spec: str
    interval_s: float
    index: bool
    alerts: bool
    rules_paths: tuple[Path, ...]
    builtin_rules: bool
    suppress_window_s: float
    alerted: int


class _Stopping(Exception):
    """Raised inside a feed to leave it between two committed batches."""


class _Child:
    """The follower's side: feeds the index, evaluates rules, answers searches."""

    def __init__(self, conn: Connection, config: FollowerConfig) -> None:
        from auditseal.log.local import load_log

        self.conn = conn
        self.config = config
        self.log: LocalLog = load_log(config.spec)
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.send_lock = threading.Lock()
        self.index_lock = threading.Lock()
        self.searcher: Searcher | None = None
        self.alerted = config.alerted

    def send(self, message: tuple[Any, ...]) -> None:
        with self.send_lock:
            self.conn.send(message)

    def serve(self) -> None:
        """Receive until told to stop or the parent goes away."""
        worker = threading.Thread(target=self._follow, name="auditseal-follow", daemon=True)
        worker.start()
        try:
            while True:
                try:
                    message = self.conn.recv()
                except (EOFError, OSError):
                    break  # the parent is gone
                if message[0] == "stop":
                    break
                if message[0] == "reload":
                    self.reload.set()
                elif message[0] == "query":
                    self._query(*message[1:])
        finally:
            self.stop.set()
            worker.join()
            self._close_searcher()

    def _query(self, query_id: int, text: str, language: Any, max_rows: int) -> None:
        from auditseal.index import Searcher, index_path, update_index

        try:
            with self.index_lock:
                if self.searcher is None:
                    if not index_path(self.log).exists():
                        update_index(self.log)
                    self.searcher = Searcher(index_path(self.log))
                try:
                    result = self.searcher.run(text, language=language, max_rows=max_rows)
                except FormatError:
                    raise
                except Exception:
                    self._close_searcher()  # a broken connection: the next query reopens
                    raise
            self.send(("result", query_id, result))
        except Exception as exc:
            kind = "format" if isinstance(exc, FormatError) else "unavailable"
            self.send(("failed", query_id, kind, str(exc) or type(exc).__name__))

    def _close_searcher(self) -> None:
        if self.searcher is not None:
            self.searcher.close()
            self.searcher = None

    def _follow(self) -> None:
        engine: AlertEngine | None = None
        while not self.stop.wait(self.config.interval_s):
            try:
                if self.reload.is_set():
                    self.reload.clear()
                    engine = None
                if self.config.index:
                    self._feed_index()
                if self.config.alerts:
                    engine = engine or self._engine()
                    self._feed_alerts(engine)
                self.send(("error", None))
            except _Stopping:
                return
            except Exception as exc:
                text = str(exc) or type(exc).__name__
                log.warning("index/alert follower: %s", text)
                self.send(("error", text))

    def _engine(self) -> AlertEngine:
        """The enabled rules (configured, built-in, uploaded) and the window in force."""
        from auditseal.api.rule_catalog import alert_engine

        return alert_engine(self.log.state, self.config.rules_paths,
                            builtin=self.config.builtin_rules,
                            suppress_window_s=self.config.suppress_window_s)

    def _feed_index(self) -> None:
        from auditseal.index import update_index
        from auditseal.log.local import latest_checkpoint

        checkpoint = latest_checkpoint(self.log)
        if checkpoint is None:
            return

        def progress(done: int, total: int) -> None:
            self.send(("indexed", checkpoint.size - total + done))
            if self.stop.is_set():
                raise _Stopping

        with self.index_lock:
            self._close_searcher()  # the feed needs the file to itself
            update = update_index(self.log, checkpoint, progress=progress)
        self.send(("indexed", update.end))

    def _feed_alerts(self, engine: AlertEngine) -> None:
        import orjson

        from auditseal.core.entry import decode_entry
        from auditseal.index.duckdb_index import log_reader
        from auditseal.log.local import latest_checkpoint

        checkpoint = latest_checkpoint(self.log)
        if checkpoint is None:
            return
        reader = log_reader(self.log, checkpoint)
        while self.alerted < checkpoint.size:
            if self.stop.is_set():
                raise _Stopping
            end = min(checkpoint.size, self.alerted + FOLLOW_CHUNK)
            fired = []
            for index, raw in reader.entries(self.alerted, end):
                try:
                    entry = decode_entry(raw)
                    if entry.header.kind == "event":
                        fired.extend(engine.process(index, entry.event, entry.header.received))
                except FormatError:
                    continue  # not a JSON object: nothing to match
            self.send(("alerts", end, [orjson.dumps(alert.to_json()) for alert in fired]))
            self.alerted = end


def _child_main(conn: Connection, config: FollowerConfig) -> None:
    """The child process's entry point."""
    # Ctrl-C reaches the whole process group; the parent stops us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICENESS)
    _Child(conn, config).serve()


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
        config = FollowerConfig(**{**self.config.__dict__, "alerted": self.alerted})
        self._process = self._context.Process(target=_child_main, args=(theirs, config),
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
        self._ensure_running()
        assert self._conn is not None
        with self._send_lock:
            self._conn.send(message)

    def _ensure_running(self) -> None:
        if self._process is None or self._stopping:
            raise StorageUnavailable("the search index is not running")

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
