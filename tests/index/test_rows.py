"""The feed's shortcuts give the rows and the stored events the general paths give.

* Leaf hashes are read from the level-0 tiles (:mod:`auditseal.index.entries`); the check
  recomputes them, so a tile that disagrees with its entry still shows in ``index check``.
* Events orjson reads strictly go to DuckDB typed JSON, unparsed (:mod:`auditseal.index.rows`);
  DuckDB must accept each of them and store the same text ``TRY_CAST`` stores.
* Batches ramp up in size so the first commit overlaps the derivation of the rest.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.core.hashing import leaf_hash
from auditseal.index import entries, schema
from auditseal.index.duckdb_index import check_index, log_reader, update_index
from auditseal.index.entries import bundles, row_batches
from auditseal.index.rows import derive_event_row, derive_row, insert_rows
from auditseal.log.local import load_log
from auditseal.storage import clear_immutable
from tests.conftest import activity_event
from tests.index.test_index import seal
from tests.unit.test_normalize_speedups import _entry, _insert_checked

# What orjson accepts at the edges of RFC 8259 (and what it refuses, for contrast).
EDGES = [
    b'{"a":' + b"9" * 30 + b"}", b'{"a":-' + b"9" * 400 + b"}", b'{"a":1.5e308}',
    b'{"a":1e-400}', b'{"a":1e400}', b'{"a":-0}', b'{"a":0.1e1}', b'{"a":1E+2}',
    b'{"a":' + b"[" * 600 + b"]" * 600 + b"}", b'{"a":' + b"[" * 1100 + b"]" * 1100 + b"}",
    b'{"a":"\\u0000"}', b'{"\\ud83d\\ude00":1}', b'{"a":"\\ud800"}', b'{"a":"\\/"}',
    b' \t{"a" : 1 }\r\n', b'{"a":[]  ,"a":{}}', b'{"a":"\x7f\xc2\x85"}', b'{"a":1}\x00',
    b'{"a":NaN}', b'{"a":1,}', b"\xef\xbb\xbf{}", b"{'a': 1}", b'{"a":"\xed\xa0\x80"}',
]


def _strict(event: bytes) -> bool:
    return type(derive_event_row(0, _entry(event))[-1]) is bytes


STRICT = [event for event in EDGES if _strict(event)]


@pytest.mark.parametrize("event", STRICT, ids=[str(i) for i in range(len(STRICT))])
def test_duckdb_accepts_each_event_taken_as_strict_json(event: bytes) -> None:
    text = event.decode()
    with duckdb.connect() as con:
        assert con.execute("SELECT TRY_CAST($1 AS JSON)", [text]).fetchone() == (text,)


def test_strictness_follows_orjson_without_a_byte_order_mark() -> None:
    for event in EDGES:
        try:
            strict = isinstance(orjson.loads(event), dict) and not event.startswith(b"\xef")
        except orjson.JSONDecodeError:
            strict = False
        assert _strict(event) == strict, event


def _stored(events: list[bytes], *, typed: bool) -> list[tuple[object, ...]]:
    """What the feed stores (``typed``: event bytes, typed JSON when all are strict), or
    what the row-by-row SQL reference stores from the text rows."""
    with duckdb.connect() as con:
        for statement in schema.create_statements():
            con.execute(statement)
        if typed:
            insert_rows(con, [derive_event_row(i, _entry(e)) for i, e in enumerate(events)])
        else:
            _insert_checked(con, [derive_row(i, _entry(e)) for i, e in enumerate(events)])
        return con.execute("SELECT * FROM _events ORDER BY _LogIndex").fetchall()


@pytest.mark.parametrize("events", [EDGES, STRICT],
                         ids=["mixed", "all-strict"])
def test_typed_json_batches_store_what_sql_stores(events: list[bytes]) -> None:
    assert _stored(events, typed=True) == _stored(events, typed=False)


JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False,
                                                                 allow_infinity=False),
              st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUE, max_size=5), st.booleans())
def test_generated_objects_store_identically(record: dict[str, object], indent: bool) -> None:
    event = orjson.dumps(record, option=orjson.OPT_INDENT_2 if indent else 0)
    assert _strict(event)
    assert _stored([event], typed=True) == _stored([event], typed=False)


@pytest.fixture
def log_300(tmp_path: Path) -> Path:
    """300 Activity Log records: a full bundle and a partial one."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(activity_event(i) for i in range(300)) + b"\n")
    return seal(tmp_path / "log", [events])


@pytest.mark.parametrize(("start", "end"), [(0, 300), (100, 290), (256, 300), (5, 6)])
def test_stored_leaf_hashes_are_the_entries_hashes(log_300: Path, start: int, end: int
                                                  ) -> None:
    reader = log_reader(load_log(log_300))
    seen: list[int] = []
    for first, sealed, hashes in bundles(reader, start, end):
        assert [leaf_hash(e) for e in sealed] == list(hashes)
        seen.extend(range(first, first + len(sealed)))
    assert seen == list(range(start, end))


def test_a_missing_tile_is_hashed_instead(log_300: Path) -> None:
    reader = log_reader(load_log(log_300))
    clear_immutable(log_300 / "tile/0")
    (log_300 / "tile/0/000").unlink()
    first, sealed, hashes = next(bundles(reader, 0, 300))
    assert first == 0
    assert [leaf_hash(e) for e in sealed] == list(hashes)


def test_check_finds_a_leaf_hash_a_tampered_tile_put_in_the_index(log_300: Path) -> None:
    tile = log_300 / "tile/0/000"
    data = tile.read_bytes()
    clear_immutable(tile.parent)
    tile.write_bytes(data[:32 * 3] + bytes(32) + data[32 * 4:])
    log = load_log(log_300)
    update_index(log)
    report = check_index(log)
    assert [(f.what, f.index) for f in report.findings] == [("edited", 3)]
    assert "_LeafHash" in report.findings[0].detail


def test_batches_ramp_up_then_keep_their_size(log_300: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    reader = log_reader(load_log(log_300))
    monkeypatch.setattr(entries, "FIRST_BATCH", 16)
    sizes = [(first, len(rows)) for first, rows in row_batches(reader, 7, 300, 50)]
    assert sizes == [(7, 16), (23, 32), (55, 50), (105, 50), (155, 50), (205, 50), (255, 45)]
    rows = [row for _, batch in row_batches(reader, 0, 300, 100) for row in batch]
    assert rows == [derive_event_row(i, reader.entry(i)) for i in range(300)]
