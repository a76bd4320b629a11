"""Idempotent ingest: an ``Idempotency-Key`` makes a retried ``POST /v1/events`` seal once.

Concept: *remembered answers* (docs/api.md, "Idempotent retries"). A client that got no
answer (timeout, reset connection, 503 from a proxy) cannot know whether its batch was
sealed; retrying without a key could seal the events twice, which an audit log must not.
With a key, the first request is processed normally and its 200 answer is remembered,
scoped to the caller (``principal.ident``); a later request of the same caller with the
same key and the same body (SHA-256 of the body and the ``atomic`` flag) gets that answer
again, byte for byte, with ``Idempotent-Replayed: true``, and nothing is sealed. The same
key with another body is 422 ``idempotency_key_reused``. A request whose key is still in
flight waits for the first one (up to :data:`IN_FLIGHT_WAIT_S`, then 409
``idempotency_key_in_flight`` with Retry-After). Refusals (4xx/5xx) are not remembered.

The answers live in an SQLite database in the log's private state folder
(``<state>/idempotency.sqlite3``, WAL, ``synchronous=FULL`` when the writer fsyncs): on disk,
so memory stays bounded by SQLite's small page cache and the in-flight table, and a
restart of the service keeps the guarantee. An answer is committed after the writer made
the events durable and before the client is answered; concurrent requests share one
commit (a leader commits everyone's rows: the same group commit the log writer does).
Rows older than the retention window are ignored and pruned.

The window where the guarantee cannot hold: a crash after the events are durable and
before their answer is committed; a retry then seals them again (docs/api.md says so).

Hand-written because the idempotency middlewares on PyPI keep answers in memory or Redis,
without durability ordered after our append, and key by header alone, not by caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from auditseal.api.limits import ApiError, retry_after
from auditseal.errors import StorageError

if TYPE_CHECKING:
    from auditseal.api.service import AuditService

log = logging.getLogger("auditseal.serve")
KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARS = 200
IN_FLIGHT_WAIT_S = 10.0
"""How long a request waits for the first one with its key before answering 409."""
PRUNE_INTERVAL_S = 60.0
"""Expired answers are deleted at most this often (and when the store opens)."""
DATABASE = "idempotency.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    created_s REAL NOT NULL,   -- unix time the answer was remembered
    digest BLOB NOT NULL,      -- SHA-256 of the request (body and atomic flag)
    answer BLOB NOT NULL,      -- the 200 answer's JSON bytes, as sent
    PRIMARY KEY (principal, key));
CREATE INDEX IF NOT EXISTS answers_created ON answers (created_s);
"""


def parse_key(value: str | None) -> str | None:
    """The request's key (None when the header is absent).

    Raises:
        ApiError: 400 ``bad_idempotency_key`` unless 1-200 printable ASCII characters.
    """
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_CHARS or not all(" " <= c <= "~" for c in value):
        raise ApiError(400, "bad_idempotency_key",
                       f"{KEY_HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters")
    return value


def fingerprint(body: bytes, atomic: bool) -> bytes:
    """What must match for a replay: the body's bytes and the one option that changes them."""
    return hashlib.sha256(b"atomic=%d\n%s" % (atomic, body)).digest()


@dataclass(frozen=True)
class Remembered:
    """A remembered answer: the request's fingerprint and the exact 200 body."""

    digest: bytes
    answer: bytes


class AnswerStore:
    """The remembered answers of one log, in ``<state>/idempotency.sqlite3``."""

    def __init__(self, path: Path, *, window_s: float, fsync: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        """Open (creating) the database and prune what is older than ``window_s``.

        Raises:
            StorageError: the database cannot be opened or written.
        """
        self.window_s = window_s
        self._path = path
        self._clock = clock
        try:
            self._write = self._connect(path, fsync)
            self._write.executescript(_SCHEMA)
            self._read = self._connect(path, fsync)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the remembered answers {path}: {exc}") from exc
        self._read_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._rows_lock = threading.Lock()
        self._rows: list[tuple[str, str, float, bytes, bytes]] = []
        self._generation = 0  # of the rows being gathered; a commit takes them all
        self._committed = 0  # every row gathered before this generation is committed
        self._pruned_at = 0.0
        self.prune()

    @staticmethod
    def _connect(path: Path, fsync: bool) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                             check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
        db.execute("PRAGMA cache_size=-2048")  # 2 MiB: the answers stay on disk
        return db

    def find(self, principal: str, key: str) -> Remembered | None:
        """The answer remembered for ``principal``'s ``key`` within the window, if any."""
        oldest = self._clock() - self.window_s
        try:
            with self._read_lock:
                row = self._read.execute(
                    "SELECT digest, answer FROM answers WHERE principal = ? AND key = ? "
                    "AND created_s >= ?", (principal, key, oldest)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read remembered answers in {self._path}: "
                               f"{exc}") from exc
        if row is None:
            return None
        return Remembered(bytes(row[0]), bytes(row[1]))

    def remember(self, principal: str, key: str, digest: bytes, answer: bytes) -> None:
        """Commit one answer durably; concurrent callers share a commit (group commit)."""
        row = (principal, key, self._clock(), digest, answer)
        with self._rows_lock:
            self._rows.append(row)
            mine = self._generation
        with self._commit_lock:
            if self._committed > mine:
                return  # a leader committed our row while we waited for the lock
            with self._rows_lock:
                rows, self._rows = self._rows, []
                taken = self._generation
                self._generation += 1
            try:
                with self._write:  # BEGIN ... COMMIT (rolled back on an error)
                    self._write.execute("BEGIN IMMEDIATE")
                    self._write.executemany(
                        "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)", rows)
            except sqlite3.Error as exc:
                with self._rows_lock:  # the next leader tries the others' rows again
                    self._rows[:0] = [r for r in rows if r is not row]
                raise StorageError(f"cannot remember the answer in {self._path}: "
                                   f"{exc}") from exc
            self._committed = taken + 1
            if self._clock() - self._pruned_at >= PRUNE_INTERVAL_S:
                try:
                    self.prune()
                except StorageError as exc:  # the answer is remembered; prune next time
                    log.warning("%s", exc)

    def prune(self) -> int:
        """Delete the answers older than the window; how many were deleted.

        Raises:
            StorageError: the database cannot be written.
        """
        now = self._clock()
        self._pruned_at = now
        try:
            with self._write:
                self._write.execute("BEGIN IMMEDIATE")
                deleted = self._write.execute("DELETE FROM answers WHERE created_s < ?",
                                              (now - self.window_s,)).rowcount
        except sqlite3.Error as exc:
            raise StorageError(f"cannot prune {self._path}: {exc}") from exc
        return int(deleted)

    def close(self) -> None:
        """Close both connections."""
        self._read.close()
        self._write.close()


@dataclass
class _Flight:
    digest: bytes
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Claim:
    """A request's hold on its key: a remembered answer to replay, or the right to run."""

    replay: Response | None
    _guard: Idempotency
    _principal: str
    _key: str
    _digest: bytes

    async def remember(self, answer: bytes) -> None:
        """Remember the 200 answer (durably) before it is sent."""
        await run_in_threadpool(self._guard.store().remember, self._principal, self._key,
                                self._digest, answer)


class Idempotency:
    """One service's remembered answers and the keys in flight (on its event loop)."""

    def __init__(self, state: Path, *, window_s: float, fsync: bool) -> None:
        """Nothing is opened until the first request with a key."""
        self._path = state / DATABASE
        self._window_s = window_s
        self._fsync = fsync
        self._store: AnswerStore | None = None
        self._open_lock = threading.Lock()
        self._flights: dict[tuple[str, str], _Flight] = {}

    def store(self) -> AnswerStore:
        """The answer store, opened on first use (in a worker thread: it prunes)."""
        with self._open_lock:
            if self._store is None:
                self._store = AnswerStore(self._path, window_s=self._window_s,
                                          fsync=self._fsync)
            return self._store

    @asynccontextmanager
    async def claim(self, principal: str, key: str, digest: bytes) -> AsyncIterator[Claim]:
        """Hold ``key`` for this request; yields a replay, or leaves the request to run.

        Raises:
            ApiError: 422 ``idempotency_key_reused`` (another body), 409
                ``idempotency_key_in_flight`` (the first request did not finish in time).
        """
        slot = (principal, key)
        while (flight := self._flights.get(slot)) is not None:
            if flight.digest != digest:
                raise _reused()
            try:
                await asyncio.wait_for(flight.done.wait(), IN_FLIGHT_WAIT_S)
            except TimeoutError:
                raise ApiError(409, "idempotency_key_in_flight",
                               "a request with this Idempotency-Key is still being "
                               "processed; retry later", headers=retry_after(1)) from None
        mine = self._flights[slot] = _Flight(digest)
        try:
            found = await run_in_threadpool(lambda: self.store().find(principal, key))
            replay = None
            if found is not None:
                if found.digest != digest:
                    raise _reused()
                replay = Response(found.answer, media_type="application/json",
                                  headers={REPLAYED_HEADER: "true"})
            yield Claim(replay, self, principal, key, digest)
        finally:
            del self._flights[slot]
            mine.done.set()


def _reused() -> ApiError:
    return ApiError(422, "idempotency_key_reused",
                    "this Idempotency-Key was used for another request body; use a new key "
                    "for new events")


_GUARDS: weakref.WeakKeyDictionary[AuditService, Idempotency] = weakref.WeakKeyDictionary()
_GUARDS_LOCK = threading.Lock()


def idempotency_of(service: AuditService) -> Idempotency:
    """The service's :class:`Idempotency`, created on first use over ``service.log.state``."""
    with _GUARDS_LOCK:
        guard = _GUARDS.get(service)
        if guard is None:
            settings = service.settings
            guard = _GUARDS[service] = Idempotency(
                service.log.state, window_s=settings.idempotency_window_s,
                fsync=settings.writer.fsync)
        return guard
