"""The one serving process: the writer, its publisher, the index and alert follower.

Concept: the *service* (issue 5: "one process that collects, seals, indexes, alerts and
serves"). :class:`AuditService` owns the only :class:`~auditseal.log.writer.LogWriter` of
the log (with its background publisher), and the follower
(:mod:`auditseal.api.follower`), a child process that, after each publish, feeds the search
index and the alert engine and answers searches; the alerts it fires come back here to be
sealed. It holds
what ``GET /v1/integrity`` reports: the latest checkpoint, the last full verification
(also kept in ``<state>/last-verification.json``), the last storage probe (kept in
``<state>/last-probe.json`` by ``auditseal probe`` and by :meth:`AuditService.probe`), the
publisher's last error.

HTTP ingest answers with each event's leaf hash, which the writer returns
(``LogWriter.append_entries``), since the leaf covers the header the writer stamps.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from auditseal.api.follower import FollowerConfig
from auditseal.api.follower_process import FollowerProcess
from auditseal.api.keys import KeyStore
from auditseal.api.settings import ServeSettings
from auditseal.core.checkpoint import VerifiedCheckpoint, verify_checkpoint
from auditseal.core.layout import HISTORY_PREFIX, history_key, parse_history_key
from auditseal.core.tiles import ENTRIES_LEVEL, TILE_HEIGHT, parse_tile_path
from auditseal.errors import AuditsealError, FormatError, ObjectNotFound
from auditseal.log.local import LocalLog, open_writer
from auditseal.log.reader import LogReader
from auditseal.log.writer import LogWriter
from auditseal.storage.durable import replace_file
from auditseal.storage.probe import (
    load_probe_record,
    probe_record,
    run_probe,
    save_probe_record,
    tamper_target,
)
from auditseal.verify import DirectorySource, LogSource, verify_log

if TYPE_CHECKING:
    from auditseal.index import QueryResult
    from auditseal.index.query import Language

log = logging.getLogger("auditseal.serve")
WriterFactory = Callable[[LocalLog], AbstractContextManager[LogWriter]]
SERVICE_SOURCE = "auditseal/serve"


class AuditService:
    """Everything the HTTP routes need from the log, started and stopped as one."""

    def __init__(self, log_: LocalLog, settings: ServeSettings,
                 writer_factory: WriterFactory | None = None) -> None:
        """Prepare; nothing is opened until :meth:`start`."""
        self.log = log_
        self.settings = settings
        self._factory = writer_factory or (
            lambda log: open_writer(log, config=settings.writer))
        self.keys = KeyStore(log_.state)
        self.source: LogSource = (DirectorySource(log_.root) if log_.remote is None
                                  else log_.object_store())
        self._stack = ExitStack()
        self._writer: LogWriter | None = None
        self._stop = threading.Event()
        self._follower: FollowerProcess | None = None
        self._key_watch: threading.Thread | None = None
        self._reader: LogReader | None = None
        self.runs: dict[str, dict[str, Any]] = {}
        self.last_verification: dict[str, Any] | None = self._read_state("last-verification")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the writer (recovering the journal), start the publisher and the follower."""
        self._writer = self._stack.enter_context(self._factory(self.log))
        self._writer.start_publisher()
        self.seal_key_changes()  # made while no service held the log
        position = self._read_state("serve-alerts")
        self._stop.clear()
        self._follower = FollowerProcess(FollowerConfig(
            spec=self.log.spec or str(self.log.root), interval_s=self.settings.follow_interval_s,
            index=self.settings.index, alerts=self.settings.alerts,
            rules_paths=self.settings.rules_paths, builtin_rules=self.settings.builtin_rules,
            suppress_window_s=self.settings.alert_suppress_window_s,
            alerted=int(position["size"]) if position else 0), self._seal_alerts)
        self._follower.start()
        self._key_watch = threading.Thread(target=self._key_watch_loop, daemon=True,
                                           name="auditseal-key-watch")
        self._key_watch.start()

    def stop(self) -> None:
        """Stop following, then close the writer: a final publish seals what is pending."""
        self._stop.set()
        if self._key_watch is not None:
            self._key_watch.join()
            self._key_watch = None
        if self._follower is not None:
            self._follower.stop()  # seals the alerts it had fired
        if self._writer is not None:
            self.seal_key_changes()  # what the key watch had no round left to see
        self._writer = None
        self._stack.close()

    @property
    def writer(self) -> LogWriter:
        """The open writer."""
        if self._writer is None:
            raise RuntimeError("the service is not started")
        return self._writer

    @property
    def checkpoint(self) -> VerifiedCheckpoint:
        """The latest published checkpoint."""
        checkpoint = self.writer.checkpoint
        assert checkpoint is not None  # open() publishes one
        return checkpoint

    # -- appending -------------------------------------------------------------------------

    def append(self, events: Sequence[bytes | memoryview], source: str, kind: str = "event"
               ) -> list[tuple[int, str]]:
        """Seal ``events`` durably; their ``(index, leaf hash hex)``.

        Raises:
            OverloadError, StorageError, EntryTooLarge: from the writer; nothing sealed.
        """
        sealed = self.writer.append_entries(events, source=source, kind=kind)
        return [(index, leaf.hex()) for index, leaf in sealed]

    def max_event_bytes(self, source: str) -> int:
        """The largest event one entry holds behind this source's header."""
        return self.writer.max_event_bytes(source)

    def seal_admin(self, record: dict[str, Any]) -> None:
        """Seal an administrative record (kind "admin"); a failure is logged, not raised."""
        record.setdefault("time", datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        try:
            self.writer.append([orjson.dumps(record)], source=SERVICE_SOURCE, kind="admin")
        except (AuditsealError, RuntimeError) as exc:
            log.warning("could not seal administrative record %s: %s", record, exc)

    # -- reading ---------------------------------------------------------------------------

    def reader(self, checkpoint: VerifiedCheckpoint | None = None) -> LogReader:
        """A reader at ``checkpoint`` (default: the latest, cached while it is latest)."""
        if checkpoint is not None:
            return LogReader(self.source, checkpoint)
        latest = self.checkpoint
        reader = self._reader
        if reader is None or reader.checkpoint is not latest:
            reader = self._reader = LogReader(self.source, latest,
                                              edge=self.log.edge_hint(latest))
        return reader

    def checkpoint_at(self, size: int) -> VerifiedCheckpoint | None:
        """The published checkpoint of ``size`` from the history, verified; None if absent."""
        latest = self.checkpoint
        if size == latest.size:
            return latest
        try:
            note = self.source.read(history_key(size))
        except ObjectNotFound:
            return None
        return verify_checkpoint(note, [self.log.verifier()], self.log.origin)

    def history(self, limit: int) -> list[bytes]:
        """The newest ``limit`` published checkpoint notes, newest first."""
        keys = sorted(self.source.list(HISTORY_PREFIX), key=_history_size, reverse=True)
        return [self.source.read(key) for key in keys[:limit]]

    def read_object(self, path: str) -> bytes:
        """A tlog-tiles object by path (tiles only: never the private state).

        Raises:
            FormatError: not a tile path.  ObjectNotFound: no such object.
        """
        parse_tile_path(path)
        return self.source.read(path)

    # -- the index ------------------------------------------------------------------------

    def query(self, text: str, language: Language, max_rows: int) -> QueryResult:
        """Run one read-only query over the search index (in the follower process).

        Raises:
            FormatError: the query does not parse or fails.
            StorageUnavailable: the index cannot be opened or the follower is not running.
        """
        return self.follower.query(text, language, max_rows)

    def reload_rules(self) -> None:
        """Make the follower load its alert rules again (after a rule changed)."""
        self.follower.reload_rules()

    @property
    def follower(self) -> FollowerProcess:
        """The running follower."""
        if self._follower is None:
            raise RuntimeError("the service is not started")
        return self._follower

    @property
    def indexed(self) -> int:
        """How many entries the search index holds."""
        return self._follower.indexed if self._follower is not None else 0

    @property
    def alerted(self) -> int:
        """How many entries the alert rules have seen (their alerts sealed)."""
        return self._follower.alerted if self._follower is not None else 0

    @property
    def follow_error(self) -> str | None:
        """The follower's last error, None when its last round succeeded."""
        return self._follower.error if self._follower is not None else None

    # -- verification ----------------------------------------------------------------------

    def start_verification(self) -> str:
        """Verify the whole log in a background thread; the run's id."""
        run_id = secrets.token_hex(8)
        checkpoint = self.checkpoint
        self.runs[run_id] = {"id": run_id, "status": "running", "size": checkpoint.size,
                             "started": _now(), "finished": None, "report": None}
        threading.Thread(target=self._verify, args=(run_id, checkpoint), daemon=True,
                         name=f"auditseal-verify-{run_id}").start()
        return run_id

    def _verify(self, run_id: str, checkpoint: VerifiedCheckpoint) -> None:
        run = self.runs[run_id]
        try:
            source = _Snapshot(self.source, checkpoint.size)
            report = verify_log(source, [self.log.verifier()], origin=self.log.origin,
                                head=checkpoint.note_bytes)
            run.update(status="done", report=report.to_json(), ok=report.ok)
        except Exception as exc:
            run.update(status="failed", error=str(exc) or type(exc).__name__, ok=False)
        run["finished"] = _now()
        summary = {k: run.get(k) for k in ("id", "status", "ok", "size", "started", "finished")}
        self.last_verification = summary
        self._write_state("last-verification", summary)

    # -- the storage probe ------------------------------------------------------------------

    @property
    def last_probe(self) -> dict[str, Any] | None:
        """The last probe's record (this service's or ``auditseal probe``'s), if any."""
        return load_probe_record(self.log.state)

    def probe(self, by: str) -> dict[str, Any]:
        """Probe the log's own storage (``auditseal.storage.probe``) and record the result.

        The canary is sealed under ``probe/`` exactly as tiles are; on WORM storage it stays
        for the retention period. The record is written to ``<state>/last-probe.json``.

        Raises:
            ConfigError: the storage has no tamper interface.
            StorageError: the canary itself could not be written.
        """
        store = self.log.object_store(fsync=self.settings.writer.fsync,
                                      set_immutable=self.settings.writer.set_immutable)
        when = datetime.now(UTC)
        report = run_probe(store, tamper_target(store))
        record = probe_record(report, when, by=by)
        try:
            save_probe_record(self.log.state, record)
        except OSError as exc:
            log.warning("could not record the probe in %s: %s", self.log.state, exc)
        return record

    # -- following the log -----------------------------------------------------------------

    def _key_watch_loop(self) -> None:
        while not self._stop.wait(self.settings.follow_interval_s):
            try:
                self.seal_key_changes()
            except Exception as exc:
                log.warning("sealing key changes: %s", exc)

    def _seal_alerts(self, end: int, alerts: list[bytes]) -> None:
        """Seal the follower's alerts, then record how far alerting got."""
        if alerts:
            self.writer.append(alerts, source="alerts", kind="alert")
        self._write_state("serve-alerts", {"size": end})

    def seal_key_changes(self) -> None:
        """Seal the key changes ``auditseal keys`` made while we hold the log."""
        for change, key in self.keys.changes():
            self.seal_admin({"auditseal": f"key.{change}", "detail": "by the keys CLI",
                             "key_id": key.id, "role": key.role, "name": key.name})

    # -- small private state ---------------------------------------------------------------

    def _read_state(self, name: str) -> dict[str, Any] | None:
        try:
            value = orjson.loads((self.log.state / f"{name}.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def _write_state(self, name: str, value: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            replace_file(self.log.state / f"{name}.json", orjson.dumps(value), fsync=False)


class _Snapshot:
    """A log source seen at one size: later history and tiles are hidden.

    A verification runs while the publisher keeps extending the log; without this, a
    checkpoint published meanwhile would look newer than the head being verified.
    """

    def __init__(self, source: LogSource, size: int) -> None:
        self._source = source
        self._size = size

    def read(self, key: str) -> bytes:
        return self._source.read(key)

    def list(self, prefix: str = "") -> list[str]:
        return [key for key in self._source.list(prefix) if self._visible(key)]

    def _visible(self, key: str) -> bool:
        if key.startswith(HISTORY_PREFIX):
            return _history_size(key) <= self._size
        try:
            tile = parse_tile_path(key)
        except FormatError:
            return True
        span = 1 if tile.level == ENTRIES_LEVEL else 1 << (TILE_HEIGHT * (tile.level + 1))
        per_hash = span >> TILE_HEIGHT if tile.level != ENTRIES_LEVEL else 1
        return (tile.index * 256 + tile.width) * per_hash <= self._size


def _history_size(key: str) -> int:
    try:
        return parse_history_key(key)
    except (FormatError, ValueError):
        return -1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes (tests and shutdown)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
