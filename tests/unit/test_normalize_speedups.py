"""The fast paths of normalize and of the index feed give what the general paths give.

Each fast path (case-folded key maps, the common ISO-8601 time shape, the IPv4 check, the
header cache of ``derive_row``, the appender in ``insert_rows``) is compared with the slower
code it short-cuts, which is kept for the other cases.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

import duckdb
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.core.entry import EntryHeader
from auditseal.errors import IngestError
from auditseal.index import schema
from auditseal.index.duckdb_index import derive_row, insert_rows
from auditseal.index.rows import derive_event_row
from auditseal.ingest import azure_times
from auditseal.ingest.normalize import _IPV4, _Reader, normalize_bytes
from auditseal.ingest.record_paths import get_key as _get_key

KEYS = st.sampled_from(["level", "Level", "LEVEL", "lEvEl", "time", "TIME", "x", "ß", "SS"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KEYS, st.integers()), max_size=8), KEYS)
def test_folded_lookup_is_the_scan(items: list[tuple[str, int]], key: str) -> None:
    record = dict(items)
    scanned: dict[object, object] = {k: v for k, v in record.items()}  # noqa: C416
    assert _Reader(record).lookup((key,)) is _get_key(scanned, key)


def test_exact_key_beats_an_earlier_case_variant() -> None:
    reader = _Reader({"LEVEL": "Error", "Level": "Warning", "identity": {"Claims": {"A": 1}}})
    assert reader.lookup(("Level",)) == "Warning"
    assert reader.lookup(("level",)) == "Error"  # first in order, as a scan finds it
    assert reader.lookup(("identity", "claims", "a")) == 1
    assert reader.lookup(("identity", "claims", "b")) is _get_key({}, "b")


def _general(text: str) -> datetime | None:
    match = azure_times._ISO.fullmatch(text.strip())
    return azure_times._build(match, hour_12=None) if match else None


ISO = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}Z".format,
    st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
    st.integers(0, 61), st.integers(0, 61),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,10}", fullmatch=True)),
)


@settings(max_examples=500, deadline=None)
@given(ISO)
def test_common_iso_shape_reads_as_the_general_parser(text: str) -> None:
    assert azure_times.parse_azure_time(text) == _general(text)
    assert azure_times._common_iso(text) in (None, _general(text))


@pytest.mark.parametrize("text", [
    "2025-04-11T16:17:00.7397744Z", "2025-04-11T16:17:00Z", "2025-02-30T00:00:00Z",
    "2025-04-11T24:00:00Z", "2025-04-11T16:17:00.Z", "2025-04-11T16:17:00.12\u00b2Z",
    "2025-04-11T16:17:00.\u0661Z", "20250411T16:17:00.000Z", "2025-04-11T16:17:00.1234567891Z",
], ids=["dotnet", "seconds", "feb-30", "hour-24", "empty-fraction", "superscript",
        "arabic-digit", "basic-date", "ten-digits"])
def test_common_iso_edge_cases(text: str) -> None:
    assert azure_times.parse_azure_time(text) == _general(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, 300).map(str) | st.sampled_from(["00", "01", "010", "1a", ""]),
                min_size=3, max_size=5))
def test_ipv4_check_accepts_only_what_ipaddress_accepts(parts: list[str]) -> None:
    text = ".".join(parts)
    if _IPV4.fullmatch(text):
        assert ipaddress.ip_address(text).version == 4


def _entry(event: bytes, source: str = "file:a.json") -> bytes:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return EntryHeader(received=moment, source=source).encode() + event


def test_derive_row_header_cache_keeps_each_entry_own_fields() -> None:
    first = derive_row(0, _entry(b'{"time":"2026-01-01T00:00:00Z"}'))
    second = derive_row(1, _entry(b'{"time":"2026-01-01T00:00:01Z"}'))
    other = derive_row(2, _entry(b"{}", source="stdin"))
    assert first[2] == second[2] == datetime(2026, 1, 2, 3, 4, 5, 678901)
    assert (first[3], other[3]) == ("file:a.json", "stdin")
    assert (first[6], second[6]) == (datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 0, 1))
    for broken in (b'{"v":2,"t":"x"}\n{}', b"no header at all"):
        row = derive_row(3, broken)
        assert (row[2], row[3], row[4], row[-1]) == (None, None, "unknown", broken.decode())


EVENTS = [b'{"time":"2026-01-01T00:00:00Z","category":"Administrative"}', b"[1, 2]",
          b"not json", b"", b"{'appName':'x'}", b'{"a":1} trailing', b"null"]


def _insert_checked(con: duckdb.DuckDBPyConnection, rows: list[tuple[object, ...]]) -> None:
    """The reference: row by row in SQL, an ``_Event`` that is not JSON as a JSON string."""
    names = [name for name, _ in schema.PHYSICAL_COLUMNS]
    values = ", ".join(
        f"${i + 1}" if kind != "JSON"
        else f"CASE WHEN json_valid(${i + 1}) THEN ${i + 1}::JSON ELSE to_json(${i + 1}) END"
        for i, (_, kind) in enumerate(schema.PHYSICAL_COLUMNS))
    for row in rows:
        con.execute(f"INSERT INTO {schema.EVENTS_TABLE} ({', '.join(names)}) VALUES ({values})",
                    list(row))


@pytest.mark.parametrize("events", [EVENTS[:2], EVENTS, [b"\xff\xfe{}", b'{"a":"\xc3"}']],
                         ids=["all-json", "some-not-json", "not-utf-8"])
def test_column_insert_stores_what_sql_stores(events: list[bytes]) -> None:
    rows = [derive_row(i, _entry(event)) for i, event in enumerate(events)]
    stored = []
    for insert in (insert_rows, _insert_checked):
        with duckdb.connect() as con:
            for statement in schema.create_statements():
                con.execute(statement)
            insert(con, rows)
            stored.append(con.execute("SELECT * FROM _events ORDER BY _LogIndex").fetchall())
    assert stored[0] == stored[1]
    assert len(stored[0]) == len(events)


def test_normalize_bytes_still_reads_the_common_record() -> None:
    event = normalize_bytes(b'{"time":"2026-03-01T00:00:12.3456789Z","callerIpAddress":'
                            b'"203.0.113.9:443","LEVEL":"warn","category":"Administrative"}')
    assert event.time == datetime(2026, 3, 1, 0, 0, 12, 345678, tzinfo=UTC)
    assert (event.caller_ip, event.level, event.table) == ("203.0.113.9", "Warning",
                                                            "AzureActivity")
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", event.caller_ip or "")


def test_lone_surrogate_in_pseudo_json_is_an_ingest_error_not_a_crash() -> None:
    """Regression: read_js_literal raised TypeError on '\\ud800' inside a quoted string."""
    with pytest.raises(IngestError):
        normalize_bytes(b"{'a':'\\ud800'}")


@pytest.mark.parametrize("events", [[b'{"a":1}', b'{"b":"\xc3\xa9"}'], [b'{"a":1}', b"\xff{}"]],
                         ids=["utf-8", "not-utf-8"])
def test_event_bytes_are_stored_as_their_decoded_text(events: list[bytes]) -> None:
    """The feed hands Arrow the event bytes; a batch must store what the text rows store."""
    stored = []
    for derive in (derive_event_row, derive_row):
        with duckdb.connect() as con:
            for statement in schema.create_statements():
                con.execute(statement)
            insert_rows(con, [derive(i, _entry(event)) for i, event in enumerate(events)])
            stored.append(con.execute("SELECT * FROM _events ORDER BY _LogIndex").fetchall())
    assert stored[0] == stored[1]
    text = events[1].decode("utf-8", errors="replace")
    assert stored[0][1][-1] in (text, orjson.dumps(text).decode())  # JSON, or a JSON string
