"""The search index: an embedded DuckDB file fed from the sealed log, rebuilt and checked.

Concept: the *search index*, derived data. The sealed log is the source of truth; the index
(``<log state>/index.duckdb``) holds one row per sealed entry (:mod:`auditseal.index.schema`)
and the position it has reached. It is never trusted:

* **Feeding** (:func:`update_index`) reads entries from the recorded position up to the
  latest verified checkpoint and appends their rows in batches; each batch's rows and the
  new position are committed in *one* DuckDB transaction, so a crash at any instant leaves
  the index at a batch boundary and the next feed resumes there: no gap, no duplicate.
  Batches are pipelined: one writer thread stores and commits batch *k* (DuckDB works with
  the GIL released) while the feed derives batch *k+1* in Python; they commit in order,
  and the first ones are smaller so the overlap starts early. Leaf hashes come from the
  level-0 tiles (:mod:`auditseal.index.entries`), not from hashing each entry again.
* **Rebuild** (:func:`rebuild_index`) derives a fresh index from the log alone into a temp
  file and swaps it in.
* **Check** (:func:`check_index`) derives a fresh copy up to the index's recorded size and
  compares the two row by row in SQL, naming each edited, added, duplicated or missing row
  by its log index. It hashes every entry: a leaf hash a damaged tile put in the index
  shows as an edited ``_LeafHash`` (``auditseal verify`` is what checks the tiles).

Rows are a pure function of the entry (:mod:`auditseal.index.rows`), so deriving twice
gives identical rows. Only one process may hold the file open
for writing; a second one gets :class:`~auditseal.errors.StorageUnavailable`.
"""

# ruff: noqa: S608 -- SQL here is assembled from the schema module's constant table and
# column names only; query text from users is never interpolated into it.

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from auditseal.core.checkpoint import VerifiedCheckpoint
from auditseal.errors import ConfigError, IntegrityError, StorageUnavailable
from auditseal.index import schema
from auditseal.index.entries import row_batches
from auditseal.index.rows import Row, arrow_batch, derive_row, insert_batch, insert_rows
from auditseal.log.local import LocalLog, latest_checkpoint
from auditseal.log.reader import LogReader
from auditseal.verify.source import DirectorySource, LogSource

__all__ = [
    "DEFAULT_BATCH", "WRITE_CHECKPOINT", "WRITE_MEMORY_LIMIT", "IndexFinding", "IndexReport",
    "IndexStatus", "IndexUpdate", "Row", "check_index", "derive_row", "index_path",
    "index_status", "insert_rows", "log_reader", "open_index", "rebuild_index", "update_index",
]

DEFAULT_BATCH = 32_768
"""Entries per feed transaction: large enough to amortize the commit (and let DuckDB write
whole row groups), small enough that a crash re-derives little."""

WRITE_MEMORY_LIMIT = "512MB"
"""DuckDB memory limit of a connection that writes the index (feed, rebuild, check copy).
DuckDB's default is 80 % of the machine's RAM, and it keeps what it once took as buffer
cache: the API process's follower reached 1.2-1.7 GB RSS in a 60 s load run (1 M rows).
A feed batch needs far less (32,768 rows of ~2 KB), so 512 MB leaves room for the zstd
row groups and the comparison queries of ``check`` while bounding the process; DuckDB
spills to disk rather than fail when a query needs more."""

WRITE_CHECKPOINT = "128MB"
"""WAL size at which a writing connection checkpoints (DuckDB's default is 16 MB). A feed
batch is ~70 MB of events, so at 16 MB every commit checkpointed, recompressing the open
row group each time: DuckDB took ~39 us per event over a 100,000-event feed, ~25 us at
128 MB, and the file came out 20 % smaller (fuller row groups). Commits stay durable in
the WAL; closing the connection checkpoints it, so readers find no WAL to replay."""

Progress = Callable[[int, int], None]
_FEED_LOCKS: dict[Path, threading.Lock] = {}
_FEED_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class IndexUpdate:
    """What one feed did: entries ``start <= index < end`` were indexed."""
    start: int
    end: int
    seconds: float

    @property
    def rows(self) -> int:
        """Rows added."""
        return self.end - self.start


@dataclass(frozen=True)
class IndexStatus:
    """Where the index stands against the log."""
    path: Path
    exists: bool
    size: int
    log_size: int
    rows: int

    @property
    def behind(self) -> int:
        """Sealed entries not yet indexed."""
        return max(self.log_size - self.size, 0)


@dataclass(frozen=True)
class IndexFinding:
    """One disagreement between the index and the log.

    Attributes:
        what: "edited", "added", "duplicated", "missing", "ahead of the log", "unreadable",
            "wrong log".
        index: the log index of the row, when there is one.
        detail: which columns differ, or what is wrong.
    """
    what: str
    index: int | None
    detail: str = ""

    def __str__(self) -> str:
        where = "index" if self.index is None else f"entry {self.index}"
        return f"{where}: {self.what}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class IndexReport:
    """The result of :func:`check_index`."""
    size: int
    findings: tuple[IndexFinding, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the index agrees with the log."""
        return not self.findings


def index_path(log: LocalLog) -> Path:
    """Where a log's index lives: its private state folder, never served."""
    return log.state / "index.duckdb"


def log_reader(log: LocalLog, checkpoint: VerifiedCheckpoint | None = None) -> LogReader:
    """A reader of ``log`` at ``checkpoint`` (default: the latest, verified with its key).

    Raises:
        ConfigError: the log has no checkpoint yet.
    """
    checkpoint = checkpoint or latest_checkpoint(log)
    if checkpoint is None:
        raise ConfigError(f"{log.name} has no checkpoint yet")
    source: LogSource = DirectorySource(log.root) if log.remote is None else log.object_store()
    return LogReader(source, checkpoint, edge=log.edge_hint(checkpoint))


@contextmanager
def open_index(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open an index file (for writing: creating its tables if it is new).

    Raises:
        StorageUnavailable: another process has the index open for writing.
        ConfigError: the file is not a DuckDB database.
    """
    new = not read_only and not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        config: dict[str, str | bool | int | float | list[str]] = (
            {} if read_only else {"memory_limit": WRITE_MEMORY_LIMIT,
                                  "checkpoint_threshold": WRITE_CHECKPOINT})
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        raise StorageUnavailable(f"search index {path} is busy or unreadable: {exc}") from None
    except duckdb.Error as exc:
        raise ConfigError(f"{path} is not a usable search index ({exc}); "
                          "run 'auditseal index rebuild'") from None
    try:
        con.execute("SET TimeZone='UTC'")
        for statement in schema.create_statements() if new else ():
            con.execute(statement)
        yield con
    finally:
        con.close()


def _state(con: duckdb.DuckDBPyConnection, log: LocalLog) -> int:
    """The recorded position; initializes it in a new index."""
    try:
        rows = con.execute(f"SELECT format, origin, size FROM {schema.STATE_TABLE}").fetchall()
    except duckdb.Error as exc:
        raise ConfigError(f"the search index is damaged ({exc}); "
                          "run 'auditseal index rebuild'") from None
    if not rows:
        con.execute(f"INSERT INTO {schema.STATE_TABLE} VALUES (?, ?, 0, NULL)",
                    [schema.INDEX_FORMAT, log.origin])
        return 0
    (form, origin, size), *extra = rows
    if extra or form != schema.INDEX_FORMAT:
        raise ConfigError(f"search index format {form} is not {schema.INDEX_FORMAT} (or its "
                          "state is damaged); run 'auditseal index rebuild'")
    if origin != log.origin:
        raise ConfigError(f"the search index belongs to log {origin!r}, not {log.origin!r}; "
                          "run 'auditseal index rebuild'")
    return int(size)


def _feed_lock(path: Path) -> threading.Lock:
    with _FEED_LOCKS_GUARD:
        return _FEED_LOCKS.setdefault(path.resolve(), threading.Lock())


def update_index(log: LocalLog, checkpoint: VerifiedCheckpoint | None = None, *,
                 path: Path | None = None, batch: int = DEFAULT_BATCH,
                 progress: Progress | None = None) -> IndexUpdate:
    """Bring the index up to ``checkpoint`` (default: the latest): call after each publish.

    Resumes from the position recorded in the index. Each batch of rows is committed with
    the new position in one transaction, so an interrupted feed loses at most the batch in
    flight and never indexes an entry twice.

    Raises:
        IntegrityError: the index is ahead of the log (the log shrank or was replaced).
        StorageUnavailable: another process is writing the index.
        ConfigError: the log has no checkpoint, or the index is of another log or format.
    """
    started = time.perf_counter()
    reader = log_reader(log, checkpoint)
    path = path or index_path(log)
    with _feed_lock(path), open_index(path) as con:
        con.execute("BEGIN")
        start = _state(con, log)
        con.execute("COMMIT")
        end = reader.size
        if start > end:
            raise IntegrityError(what="index ahead of the log", where=f"entry {end}", detail=(
                f"the index holds {start} entries but the log's checkpoint has {end}; "
                "run 'auditseal verify', then 'auditseal index rebuild'"))
        root = reader.checkpoint.root_hash.hex()
        with ThreadPoolExecutor(1, thread_name_prefix="index-commit") as writer:
            pending: tuple[Future[None], int] | None = None
            for first, rows in row_batches(reader, start, end, batch):
                columns = arrow_batch(rows)
                size = first + len(rows)
                _settle(pending, start, end, progress)
                pending = (writer.submit(_commit, con, columns, size,
                                         root if size == end else None), size)
            _settle(pending, start, end, progress)
    return IndexUpdate(start, end, time.perf_counter() - started)


def _commit(con: duckdb.DuckDBPyConnection, columns: Any, size: int, root: str | None
            ) -> None:
    """One batch's rows and the new position, in one transaction (on the writer thread:
    DuckDB stores a batch while the feed derives the next; batches commit in order)."""
    con.execute("BEGIN")
    try:
        insert_batch(con, columns)
        con.execute(f"UPDATE {schema.STATE_TABLE} SET size = ?, root_hash = ?", [size, root])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _settle(pending: tuple[Future[None], int] | None, start: int, end: int,
            progress: Progress | None) -> None:
    """Wait for the batch in flight to commit (raising what it raised), then report it."""
    if pending is not None:
        pending[0].result()
        if progress is not None:
            progress(pending[1] - start, end - start)


def rebuild_index(log: LocalLog, *, progress: Progress | None = None) -> IndexUpdate:
    """Recreate the index from the log alone, then swap it in atomically."""
    path = index_path(log)
    fresh = path.with_name(path.name + ".rebuild")
    fresh.unlink(missing_ok=True)
    with _feed_lock(path):
        result = update_index(log, path=fresh, progress=progress)
        # A stale write-ahead log must not be replayed into the new file.
        path.with_name(path.name + ".wal").unlink(missing_ok=True)
        fresh.replace(path)
    return result


def index_status(log: LocalLog) -> IndexStatus:
    """How far the index is, without feeding it."""
    path = index_path(log)
    checkpoint = latest_checkpoint(log)
    log_size = checkpoint.size if checkpoint else 0
    if not path.exists():
        return IndexStatus(path, False, 0, log_size, 0)
    with open_index(path, read_only=True) as con:
        size = con.execute(f"SELECT max(size) FROM {schema.STATE_TABLE}").fetchall()[0][0]
        rows = con.execute(f"SELECT count(*) FROM {schema.EVENTS_TABLE}").fetchall()[0][0]
    return IndexStatus(path, True, int(size or 0), log_size, int(rows))


def check_index(log: LocalLog, *, limit: int = 1000, progress: Progress | None = None
                ) -> IndexReport:
    """Re-derive the index from the log and report every row that disagrees.

    The fresh copy goes up to the size the index records (a lagging index is not wrong).

    Raises:
        ConfigError: there is no index.
    """
    started = time.perf_counter()
    path = index_path(log)
    if not path.exists():
        raise ConfigError(f"no search index at {path}: run 'auditseal index rebuild'")
    findings: list[IndexFinding] = []
    try:
        with open_index(path, read_only=True) as con:
            state = con.execute(f"SELECT format, origin, size FROM {schema.STATE_TABLE}"
                                ).fetchall()
    except (duckdb.Error, ConfigError) as exc:
        return IndexReport(0, (IndexFinding("unreadable", None, str(exc)),), 0.0)
    if len(state) != 1 or state[0][0] != schema.INDEX_FORMAT or state[0][1] != log.origin:
        findings.append(IndexFinding("wrong log", None, f"index state is {state!r}"))
        return IndexReport(0, tuple(findings), time.perf_counter() - started)
    size = int(state[0][2])
    reader = log_reader(log)
    if size > reader.size:
        findings.append(IndexFinding("ahead of the log", reader.size,
                                     f"index records {size} entries, the log has {reader.size}"))
        size = reader.size
    fresh = path.with_name(path.name + ".check")
    fresh.unlink(missing_ok=True)
    try:
        with open_index(fresh) as con:
            # Every leaf hash recomputed: the check must not trust the tiles.
            for first, rows in row_batches(reader, 0, size, DEFAULT_BATCH, stored=False):
                insert_batch(con, arrow_batch(rows))
                if progress is not None:
                    progress(first + len(rows), size)
            quoted = str(path).replace("'", "''")
            con.execute(f"ATTACH '{quoted}' AS stored (READ_ONLY)")
            findings.extend(_compare(con, size, limit))
    finally:
        fresh.unlink(missing_ok=True)
        fresh.with_name(fresh.name + ".wal").unlink(missing_ok=True)
    return IndexReport(size, tuple(findings[:limit]), time.perf_counter() - started)


def _compare(con: duckdb.DuckDBPyConnection, size: int, limit: int) -> list[IndexFinding]:
    """Diff the fresh ``_events`` (main) against the stored one, in SQL."""
    table = schema.EVENTS_TABLE
    names = [name for name, _ in schema.PHYSICAL_COLUMNS if name != "_LogIndex"]
    differs = ", ".join(
        f"""CASE WHEN f."{n}" IS DISTINCT FROM s."{n}" THEN '{n}' END""" for n in names)
    queries: list[tuple[str, str]] = [
        ("duplicated", f"SELECT _LogIndex, count(*) || ' rows' FROM stored.{table} "
                       f"GROUP BY 1 HAVING count(*) > 1"),
        ("added", f"SELECT s._LogIndex, 'not in the log' || CASE WHEN s._LogIndex >= {size} "
                  f"THEN ' (beyond the indexed size {size})' ELSE '' END FROM stored.{table} s "
                  f"ANTI JOIN main.{table} f ON s._LogIndex = f._LogIndex"),
        ("missing", f"SELECT f._LogIndex, 'sealed in the log, absent from the index' "
                    f"FROM main.{table} f ANTI JOIN stored.{table} s "
                    f"ON s._LogIndex = f._LogIndex"),
        ("edited", f"SELECT _LogIndex, 'columns differ: ' || array_to_string(list_filter("
                   f"[{differs}], lambda x: x IS NOT NULL), ', ') FROM main.{table} f "
                   f"JOIN stored.{table} s USING (_LogIndex) WHERE list_count(list_filter("
                   f"[{differs}], lambda x: x IS NOT NULL)) > 0"),
    ]
    findings: list[IndexFinding] = []
    for what, sql in queries:
        rows = con.execute(f"SELECT * FROM ({sql}) ORDER BY 1 NULLS FIRST LIMIT {limit}"
                           ).fetchall()
        findings.extend(
            IndexFinding(what, None if index is None else int(index), str(detail))
            for index, detail in rows)
    findings.sort(key=lambda f: -1 if f.index is None else f.index)
    return findings

