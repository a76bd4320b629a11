"""Index rows: one sealed entry's physical row, and a batch of them written as columns.

Concept: the *row* of the search index (:data:`auditseal.index.schema.PHYSICAL_COLUMNS`).
A row is a pure function of its entry (the entry header, ``normalize_bytes`` of the event,
the leaf hash), so deriving twice gives identical rows: rebuild and check rely on it.

A batch goes to DuckDB as one Arrow table, ``INSERT INTO _events SELECT * FROM batch``:
DuckDB then converts and stores whole columns in C++ (with the GIL released), instead of
one Python object at a time through its appender (~5 us less per 2 KB row). The event text
goes in as bytes and Arrow checks it is UTF-8 for the whole column at once; only a batch
with an invalid sequence is decoded row by row, with U+FFFD for what is not UTF-8, as
``bytes.decode(errors="replace")`` does.
"""

# ruff: noqa: S608 -- SQL here is assembled from the schema module's constant table and
# column names only; query text from users is never interpolated into it.

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from auditseal.core.entry import decode_entry
from auditseal.core.hashing import leaf_hash
from auditseal.errors import FormatError, IngestError
from auditseal.index import schema
from auditseal.ingest.azure_categories import FALLBACK_TABLE
from auditseal.ingest.normalize import normalize_bytes

__all__ = ["Row", "derive_event_row", "derive_row", "insert_rows"]

Row = tuple[Any, ...]
"""Values in ``schema.PHYSICAL_COLUMNS`` order; ``_Event`` is text (or bytes, see below)."""

_NAMES = tuple(name for name, _ in schema.PHYSICAL_COLUMNS)
_ARROW_TYPES = {"BIGINT": pa.int64(), "TIMESTAMP": pa.timestamp("us"), "VARCHAR": pa.string()}
_EVENT = len(_NAMES) - 1
assert _NAMES[_EVENT] == "_Event", "the event text is the last physical column"


def derive_row(index: int, entry: bytes) -> Row:
    """The physical row of one entry, ``_Event`` as text.

    Never raises: an entry that is not a v1 auditseal entry, or an event that is not a JSON
    object, is indexed with what can be known about it (the event stored as a JSON string).
    """
    row = derive_event_row(index, entry)
    return (*row[:_EVENT], row[_EVENT].decode("utf-8", errors="replace"))


def derive_event_row(index: int, entry: bytes) -> Row:
    """:func:`derive_row` with ``_Event`` left as the event's bytes (what the feed inserts:
    the text is made once per batch by Arrow, not once per row)."""
    newline = entry.find(b"\n")
    header = _header(entry[:newline]) if newline >= 0 else None
    received, source, kind = header or (None, None, "unknown")
    event = entry if header is None else entry[newline + 1 :]
    try:
        n = normalize_bytes(event)
        table, when = n.table, _naive_utc(n.time) if n.time else received
        fields = (n.category, n.operation, n.caller, n.caller_ip, n.result, n.resource_id,
                  n.subscription_id, n.tenant_id, n.correlation_id, n.level)
    except IngestError:
        table, when, fields = FALLBACK_TABLE, received, (None,) * 10
    return (index, leaf_hash(entry).hex(), received, source, kind, table, when, *fields, event)


@lru_cache(maxsize=1024)
def _header(line: bytes) -> tuple[datetime, str | None, str] | None:
    """An entry's header fields, from its line alone: entries appended together share it."""
    try:
        head = decode_entry(line + b"\n").header
    except FormatError:
        return None
    return _naive_utc(head.received), head.source, head.kind


def _naive_utc(moment: datetime) -> datetime:
    """DuckDB TIMESTAMP (what KQL datetimes translate to) is naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def arrow_batch(rows: Sequence[Row]) -> Any:
    """The rows as one Arrow table of the physical columns (``_Event`` as UTF-8 text)."""
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(values, _ARROW_TYPES[kind]) for values, (_, kind)
              in zip(columns[:_EVENT], schema.PHYSICAL_COLUMNS, strict=False)]
    arrays.append(_text_column(columns[_EVENT]))
    return pa.Table.from_arrays(arrays, names=list(_NAMES))


def _text_column(events: Sequence[bytes | str]) -> Any:
    if all(type(event) is bytes for event in events):
        try:
            return pa.array(events, pa.binary()).cast(pa.string())
        except pa.ArrowInvalid:  # not UTF-8 somewhere: as bytes.decode(errors="replace")
            pass
    return pa.array([event if isinstance(event, str) else event.decode("utf-8", "replace")
                     for event in events], pa.string())


def insert_rows(con: duckdb.DuckDBPyConnection, rows: Sequence[Row]) -> None:
    """Append rows to ``_events`` as columns (see :func:`insert_batch`)."""
    if rows:
        insert_batch(con, arrow_batch(rows))


def insert_batch(con: duckdb.DuckDBPyConnection, batch: Any) -> None:
    """Append an :func:`arrow_batch` to ``_events`` in one statement.

    An ``_Event`` that is not JSON (``TRY_CAST`` refuses what ``json_valid`` refuses) is
    stored as a JSON string; no row of the batch makes the statement, and so a caller's
    transaction, fail.
    """
    con.register("_batch", batch)
    try:
        con.execute(f"INSERT INTO {schema.EVENTS_TABLE} SELECT {_COLUMNS} FROM _batch")
    finally:
        con.unregister("_batch")


_COLUMNS = ", ".join(
    f'"{name}"' if kind != "JSON"
    else f'coalesce(TRY_CAST("{name}" AS JSON), to_json("{name}"))'
    for name, kind in schema.PHYSICAL_COLUMNS
)
"""The columns of a batch, each JSON one stored as JSON when it is, else as a JSON string."""
