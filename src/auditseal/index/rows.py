"""Index rows: one sealed entry's physical row, and a batch of them written as columns.

Concept: the *row* of the search index (:data:`auditseal.index.schema.PHYSICAL_COLUMNS`).
A row is a pure function of its entry (the entry header, ``normalize_bytes`` of the event,
the leaf hash), so deriving twice gives identical rows: rebuild and check rely on it.

A batch goes to DuckDB as one Arrow table, ``INSERT INTO _events SELECT * FROM batch``:
DuckDB then converts and stores whole columns in C++ (with the GIL released), instead of
one Python object at a time through its appender (~5 us less per 2 KB row). Every sealed
event was validated as a JSON object at ingest and normalize parses it again (orjson), so
an event orjson read strictly goes in as its bytes, typed JSON, and DuckDB neither checks
its UTF-8 nor parses it (``TRY_CAST(... AS JSON)`` was ~2.5 us per event). DuckDB accepts
all that orjson accepts (tests/index/test_rows.py); a batch with any other event (from
another source, pseudo-JSON, not UTF-8) goes in as text through ``TRY_CAST``, exactly as
before, so the stored ``_Event`` is the same either way.
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
from auditseal.ingest.normalize import normalize_fields

__all__ = ["Row", "derive_event_row", "derive_row", "insert_rows"]

Row = tuple[Any, ...]
"""Values in ``schema.PHYSICAL_COLUMNS`` order; ``_Event`` is text (or bytes, see below)."""

_NAMES = tuple(name for name, _ in schema.PHYSICAL_COLUMNS)
_ARROW_TYPES = {"BIGINT": pa.int64(), "TIMESTAMP": pa.timestamp("us"), "VARCHAR": pa.string()}
_EVENT = len(_NAMES) - 1
assert _NAMES[_EVENT] == "_Event", "the event text is the last physical column"


def derive_row(index: int, entry: bytes, leaf: bytes | None = None) -> Row:
    """The physical row of one entry, ``_Event`` as text.

    Never raises: an entry that is not a v1 auditseal entry, or an event that is not a JSON
    object, is indexed with what can be known about it (the event stored as a JSON string).

    Args:
        leaf: the entry's leaf hash when the caller has it (the feed reads the level-0
            tiles, see :mod:`auditseal.index.entries`); else it is computed.
    """
    row = derive_event_row(index, entry, leaf)
    event = row[_EVENT]
    return row if type(event) is str else (*row[:_EVENT], event.decode("utf-8"))


def derive_event_row(index: int, entry: bytes, leaf: bytes | None = None) -> Row:
    """:func:`derive_row` with ``_Event`` left as the event's bytes when it is strict JSON
    (what the feed inserts: the text is made once per batch by Arrow, not once per row, and
    DuckDB need not parse it again); any other event is text, decoded as
    ``bytes.decode(errors="replace")`` does."""
    newline = entry.find(b"\n")
    header = _header(entry[:newline]) if newline >= 0 else None
    received, source, kind = header or (None, None, "unknown")
    event = entry if header is None else entry[newline + 1 :]
    digest = (leaf or leaf_hash(entry)).hex()
    try:
        (table, when, *fields), strict = normalize_fields(event)
    except IngestError:
        return (index, digest, received, source, kind, FALLBACK_TABLE, received, *_NO_FIELDS,
                event.decode("utf-8", "replace"))
    return (index, digest, received, source, kind, table,
            _naive_utc(when) if when else received, *fields,
            event if strict else event.decode("utf-8", "replace"))


_NO_FIELDS = (None,) * 10
"""The normalized fields of an event that is not a JSON object."""


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
    if moment.tzinfo is UTC:  # what normalize gives: no conversion to do
        return moment.replace(tzinfo=None)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def arrow_batch(rows: Sequence[Row]) -> Any:
    """The rows as one Arrow table of the physical columns.

    When every ``_Event`` is bytes (strict JSON, :func:`derive_event_row`), the column is
    Arrow's JSON type over the bytes as they are (orjson checked they are UTF-8), and
    DuckDB stores it as JSON without parsing it again (~2.5 us per 2 KB event); else it is
    text, and :func:`insert_batch` has DuckDB check each event.
    """
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(values, _ARROW_TYPES[kind]) for values, (_, kind)
              in zip(columns[:_EVENT], schema.PHYSICAL_COLUMNS, strict=False)]
    events = columns[_EVENT]
    if _JSON is not None and all(type(event) is bytes for event in events):
        arrays.append(pa.ExtensionArray.from_storage(
            _JSON, pa.array(events, pa.binary()).view(pa.string())))
    else:
        arrays.append(pa.array([event if isinstance(event, str)
                                else event.decode("utf-8", "replace") for event in events],
                               pa.string()))
    return pa.Table.from_arrays(arrays, names=list(_NAMES))


_JSON = pa.json_(pa.string()) if hasattr(pa, "json_") else None
"""Arrow's JSON extension type (pyarrow 19 and later), which DuckDB reads as JSON."""


def insert_rows(con: duckdb.DuckDBPyConnection, rows: Sequence[Row]) -> None:
    """Append rows to ``_events`` as columns (see :func:`insert_batch`)."""
    if rows:
        insert_batch(con, arrow_batch(rows))


def insert_batch(con: duckdb.DuckDBPyConnection, batch: Any) -> None:
    """Append an :func:`arrow_batch` to ``_events`` in one statement.

    Events typed JSON by :func:`arrow_batch` are stored as they are. Otherwise an
    ``_Event`` that is not JSON (``TRY_CAST`` refuses what ``json_valid`` refuses) is
    stored as a JSON string; no row of the batch makes the statement, and so a caller's
    transaction, fail.
    """
    trusted = _JSON is not None and batch.schema.field(_EVENT).type == _JSON
    con.register("_batch", batch)
    try:
        con.execute(f"INSERT INTO {schema.EVENTS_TABLE} SELECT "
                    f"{_AS_THEY_ARE if trusted else _COLUMNS} FROM _batch")
    finally:
        con.unregister("_batch")


_COLUMNS = ", ".join(
    f'"{name}"' if kind != "JSON"
    else f'coalesce(TRY_CAST("{name}" AS JSON), to_json("{name}"))'
    for name, kind in schema.PHYSICAL_COLUMNS
)
"""The columns of a batch, each JSON one stored as JSON when it is, else as a JSON string."""
_AS_THEY_ARE = ", ".join(f'"{name}"' for name, _ in schema.PHYSICAL_COLUMNS)
"""The columns of a batch whose events are all strict JSON already."""
