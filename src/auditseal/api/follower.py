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

A child that dies is restarted by the parent (:mod:`auditseal.api.follower_process`); the
index resumes from its own recorded position and alerting from the parent's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditseal.errors import FormatError

if TYPE_CHECKING:
    from auditseal.alerts import AlertEngine
    from auditseal.core.checkpoint import VerifiedCheckpoint
    from auditseal.index import Searcher
    from auditseal.log.local import LocalLog

log = logging.getLogger("auditseal.serve")

FOLLOW_CHUNK = 4096
"""Entries the alert follower evaluates between two looks at the stop flag."""
INDEX_ROUND = 65_536
ALERT_ROUND = 32_768
"""Entries one round feeds to the index, and evaluates, at most. Behind a backlog (a load
peak) the follower alternates between the two instead of finishing one first, so alerts
never wait for the index to catch up (in a 60 s load run they did, for the whole run), and
a search waits for one committed index batch at most."""
INDEX_BATCH: int | None = None
"""Entries per committed index batch (None: the index's own default)."""
CHILD_NICENESS = 5
"""How much lower the follower's CPU priority is than the serving process's."""


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


class _Yield(Exception):
    """Raised inside an index feed to leave it between two committed batches."""


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
        self.search_waiting = threading.Event()  # a search wants the index: feed yields
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
            self.search_waiting.set()
            with self.index_lock:
                self.search_waiting.clear()
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
        from auditseal.log.local import latest_checkpoint

        engine: AlertEngine | None = None
        behind = False
        while not self.stop.wait(0 if behind else self.config.interval_s):
            try:
                if self.reload.is_set():
                    self.reload.clear()
                    engine = None
                behind = False
                checkpoint = latest_checkpoint(self.log)  # one head read for both feeds
                if checkpoint is None:
                    continue
                if self.config.index:
                    behind = self._feed_index(checkpoint)
                if self.config.alerts:
                    engine = engine or self._engine()
                    behind = self._feed_alerts(engine, checkpoint) or behind
                self.send(("error", None))
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

    def _feed_index(self, checkpoint: VerifiedCheckpoint) -> bool:
        """Feed up to :data:`INDEX_ROUND` entries; whether the index is still behind."""
        from auditseal.index import update_index
        from auditseal.index.duckdb_index import DEFAULT_BATCH

        def progress(done: int, total: int) -> None:
            self.send(("indexed", checkpoint.size - total + done))
            if done < total and (done >= INDEX_ROUND or self.stop.is_set()
                                 or self.search_waiting.is_set()):
                raise _Yield

        with self.index_lock:
            self._close_searcher()  # the feed needs the file to itself
            try:
                update = update_index(self.log, checkpoint, progress=progress,
                                      batch=INDEX_BATCH or DEFAULT_BATCH)
            except _Yield:
                return True
        self.send(("indexed", update.end))
        return False

    def _feed_alerts(self, engine: AlertEngine, checkpoint: VerifiedCheckpoint) -> bool:
        """Evaluate up to :data:`ALERT_ROUND` entries; whether alerting is still behind."""
        import orjson

        from auditseal.core.entry import decode_entry
        from auditseal.index.duckdb_index import log_reader

        reader = log_reader(self.log, checkpoint)
        last = min(checkpoint.size, self.alerted + ALERT_ROUND)
        while self.alerted < last and not self.stop.is_set():
            end = min(last, self.alerted + FOLLOW_CHUNK)
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
        return self.alerted < checkpoint.size


def child_main(conn: Connection, config: FollowerConfig) -> None:
    """The child process's entry point."""
    # Ctrl-C reaches the whole process group; the parent stops us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICENESS)
    _Child(conn, config).serve()
