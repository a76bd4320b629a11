"""Tests for auditseal.ingest.records: splitting inputs into events with their exact bytes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.ingest.records import (
    Record,
    RecordBatch,
    Rejected,
    iter_batches,
    iter_records,
    split_records,
    validate_event,
)

CORPUS = Path("/work/shared/corpus")
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "records"
DEMO = Path(__file__).resolve().parents[2] / "src" / "auditseal" / "demo" / "sample_events.jsonl"

# --- real data -----------------------------------------------------------------------------
# Files copied unmodified from DataDog/azure-log-forwarding-orchestration @ b453a885 (law_logs
# @ 23ca14ba) and open-telemetry/opentelemetry-collector-contrib @ f004dd36, Apache-2.0; see
# /work/shared/corpus/SOURCES.md. Expected (records, rejected), counted by hand from the
# files: function_app_logs.json holds single-quoted pseudo-JSON that no parser accepts.
DD = "datadog_azure-log-forwarding-orchestration/forwarder/internal/logs/fixtures/"
EXPECTED_COUNTS: dict[str, tuple[int, int]] = {
    "datadog_azure-log-forwarding-orchestration/_index_version_23ca14ba/forwarder/internal/"
    "logs/fixtures/law_logs.json": (2, 0),
    DD + "activedirectory/audit_logs.json": (22, 0),
    DD + "activedirectory/managed_identity_sign_in_logs.json": (24, 0),
    DD + "activedirectory/ms_graph_activity_logs.json": (25, 0),
    DD + "activedirectory/non_interactive_user_sign_in_logs.json": (14, 0),
    DD + "activedirectory/risky_users_logs.json": (1, 0),
    DD + "activedirectory/service_principal_sign_in_logs.json": (25, 0),
    DD + "activedirectory/sign_in_logs.json": (5, 0),
    DD + "activedirectory/user_risk_event_logs.json": (1, 0),
    DD + "aks_logs.json": (21, 0),
    DD + "function_app_logs.json": (0, 20),
    DD + "function_app_logs_with_usa_short_timestamp.json": (5, 0),
    DD + "networksecuritygroupflowevent_logs.json": (2, 0),
    DD + "workflowruntime_logs.json": (7, 0),
    "otel_collector_contrib/pkg/translator/azurelogs/testdata/administrative/valid_1.json": (1, 0),
}
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"real-data corpus {CORPUS} is absent on this machine"
)


def _corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return sorted(EXPECTED_COUNTS)
    found = [
        str(p.relative_to(CORPUS))
        for d in ("datadog_azure-log-forwarding-orchestration", "otel_collector_contrib")
        for p in (CORPUS / d).rglob("*")
        if p.is_file()
    ]
    return sorted(found)


def _expand(value: Any) -> list[Any]:
    if isinstance(value, dict) and list(value) == ["records"]:
        records = value["records"]
        if isinstance(records, list):
            return list(records)
    return list(value) if isinstance(value, list) else [value]


def _oracle(data: bytes) -> tuple[list[Any], int]:
    """Expected events, parsed independently with orjson: whole file, else line by line."""
    try:
        return _expand(orjson.loads(data)), 0
    except orjson.JSONDecodeError:
        pass
    events: list[Any] = []
    bad = 0
    for line in data.split(b"\n"):
        if line.strip():
            try:
                events.extend(_expand(orjson.loads(line)))
            except orjson.JSONDecodeError:
                bad += 1
    return events, bad


@needs_corpus
@pytest.mark.parametrize("name", _corpus_files(), ids=lambda name: Path(name).name)
def test_corpus_file_splits_into_its_events(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    records, rejected = split_records(data)
    expected, bad = _oracle(data)
    assert (len(records), len(rejected)) == EXPECTED_COUNTS[name]
    assert len(records) == len(expected)
    assert len(rejected) == bad
    for record, value in zip(records, expected, strict=True):
        assert data[record.offset : record.offset + len(record.data)] == record.data
        assert orjson.loads(record.data) == value
        assert record.line == data.count(b"\n", 0, record.offset) + 1
        assert record.data == record.data.strip()


@needs_corpus
@pytest.mark.parametrize("name", _corpus_files(), ids=lambda name: Path(name).name)
def test_corpus_file_same_result_with_tiny_chunks(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    assert list(iter_records(Chunked(data), chunk_bytes=7)) == list(
        iter_records(io.BytesIO(data))
    )
    assert_batches_match(data)


def test_every_corpus_file_has_an_expected_count() -> None:
    assert set(_corpus_files()) == set(EXPECTED_COUNTS)


# --- invented fixtures ---------------------------------------------------------------------

FIXTURES: dict[str, tuple[list[tuple[int, int, bytes]], list[tuple[int, int, str]]]] = {
    # file: ([(line, offset, data)], [(line, offset, reason fragment)])
    "bom_crlf.jsonl": (
        [
            (1, 3, b'{"category":"SignInLogs","resultType":"0"}'),
            (3, 51, b'{"category":"AuditLogs","operationName":"Update user"}'),
        ],
        [],
    ),
    "concatenated.jsonl": (
        [
            (1, 0, b'{"a":1}'),
            (1, 7, b'{"b":"}{"}'),
            (2, 18, b'{"c":[1,{"d":"]"}]}'),
            (2, 38, b'{"e":"\\"}"}'),
        ],
        [],
    ),
    "truncated_last_line.jsonl": (
        [
            (1, 0, b'{"time":"2025-04-15T10:16:32Z","operationName":"A"}'),
            (2, 52, b'{"time":"2025-04-15T10:16:33Z","operationName":"B"}'),
        ],
        [(3, 104, "incomplete last line")],
    ),
    "envelope_pretty.json": (
        [
            (3, 21, b'{\n      "operationName": "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",'
             b'\n      "properties": {"requestbody": "{\\"a\\":[1,2]}"}\n    }'),
            (7, 159, b'{\n      "operationName": "MICROSOFT.KEYVAULT/VAULTS/DELETE",\n      '
             b'"tags": ["x]", "{y"]\n    }'),
        ],
        [],
    ),
    "array_nested.json": (
        [
            (2, 4, b'{"k": "[not, an, array]", "q": "say \\"hi\\" \\\\"}'),
            (3, 55, b'{"n": [[1, 2], {"m": "}"}]}'),
            (6, 108, b'{"last": true}'),
        ],
        [
            (4, 86, "array element 2: not a JSON object (found an array)"),
            (5, 96, "array element 3: not a JSON object (found a string)"),
        ],
    ),
    "bad_lines.jsonl": (
        [(1, 0, b'{"ok":1}'), (8, 75, b'{"ok":2}')],
        [
            (2, 9, "invalid UTF-8: byte 0xff"),
            (3, 22, "lone UTF-16 surrogate"),
            (4, 39, "not a JSON object (found a number)"),
            (5, 43, "array element 0: not a JSON object (found a string)"),
            (6, 48, "incomplete JSON value: the line ends inside a string"),
            (7, 62, "invalid JSON: unexpected character"),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_file(name: str) -> None:
    data = (VECTORS / name).read_bytes()
    records, rejected = split_records(data)
    want_records, want_rejected = FIXTURES[name]
    assert [(r.line, r.offset, r.data) for r in records] == want_records
    assert [(r.line, r.offset) for r in rejected] == [(w[0], w[1]) for w in want_rejected]
    for got, (_, _, fragment) in zip(rejected, want_rejected, strict=True):
        assert fragment in got.reason
    for r in records:
        assert data[r.offset : r.offset + len(r.data)] == r.data


def test_every_fixture_file_is_tested() -> None:
    assert {p.name for p in VECTORS.iterdir() if p.suffix in {".json", ".jsonl"}} == set(FIXTURES)


# One case per rejection branch and per accepted shape: (input, [(line, offset, data)],
# [(line, reason fragment)]).
CASES: list[Any] = [
    pytest.param(b"", [], [], id="empty-input"),
    pytest.param(b"\n  \r\n\t\n", [], [], id="whitespace-only"),
    pytest.param(b"\xef\xbb\xbf", [], [], id="bom-only"),
    pytest.param(b'{"a":1}', [(1, 0, b'{"a":1}')], [], id="single-line-no-newline"),
    pytest.param(b'{"a":1}\n\n   \n{"b":2}\n', [(1, 0, b'{"a":1}'), (4, 13, b'{"b":2}')], [],
                 id="blank-lines-skipped"),
    pytest.param(b'\xef\xbb\xbf[{"a":1}]', [(1, 4, b'{"a":1}')], [], id="bom-array"),
    pytest.param(b'{"a":1}\r\n{"b":2}\r\n', [(1, 0, b'{"a":1}'), (2, 9, b'{"b":2}')], [],
                 id="crlf"),
    pytest.param(b'{\n "a": "{[\\"]}"\n}\n{"b":2}\n',
                 [(1, 0, b'{\n "a": "{[\\"]}"\n}'), (4, 19, b'{"b":2}')], [],
                 id="pretty-object-then-compact"),
    pytest.param(b'{"records":[{"a":1},{"b":[2]}]}\n{"records":[]}\n{"c":3}\n',
                 [(1, 12, b'{"a":1}'), (1, 20, b'{"b":[2]}'), (3, 47, b'{"c":3}')], [],
                 id="one-envelope-per-line"),
    pytest.param(b'{"records":[{"a":1}],"x":1}\n', [(1, 0, b'{"records":[{"a":1}],"x":1}')],
                 [], id="records-key-among-others-is-one-event"),
    pytest.param(b'[]', [], [], id="empty-array"),
    pytest.param(b'[{"a":1}, 7, null]',
                 [(1, 1, b'{"a":1}')],
                 [(1, "element 1: not a JSON object (found a number)"),
                  (1, "element 2: not a JSON object (found true/false/null)")],
                 id="array-element-not-object"),
    pytest.param(b'[{"a":1},]', [(1, 1, b'{"a":1}')], [(1, "empty element")],
                 id="array-trailing-comma"),
    pytest.param(b'{"records": [\n {"a": "\\ud800"},\n {"b": 1}\n]}\n',
                 [(3, 33, b'{"b": 1}')], [(2, "records[0]: lone UTF-16 surrogate")],
                 id="envelope-bad-element"),
    pytest.param(b'"just a string"\n', [], [(1, "not a JSON object (found a string)")],
                 id="scalar-line"),
    pytest.param(b'{"a":1}\ntrue\n', [(1, 0, b'{"a":1}')],
                 [(2, "not a JSON object (found true/false/null)")], id="scalar-later-line"),
    pytest.param(b'{"a":"x}\n{"b":2}\n', [(2, 9, b'{"b":2}')],
                 [(1, "incomplete JSON value: the line ends inside a string")],
                 id="unterminated-string"),
    pytest.param(b'{"a":[1}\n', [], [(1, "invalid JSON")], id="mismatched-bracket-line"),
    pytest.param(b'{"a":1},\n', [], [(1, "invalid JSON: unexpected content")],
                 id="junk-after-object-rejects-whole-line"),
    pytest.param(b'{"a":1}\n{"b":[1,2', [(1, 0, b'{"a":1}')],
                 [(2, "incomplete last line: the input ends without a newline inside an "
                      "unclosed array")], id="truncated-last-line"),
    pytest.param(b'[\n{"a":1},\n{"b":', [], [(1, "incomplete JSON document")],
                 id="truncated-document"),
    pytest.param(b'{\n "a": [1}\n}\n', [], [(1, "malformed JSON document at line 2")],
                 id="malformed-document"),
    pytest.param(b'{\n "a": "cut\n}\n', [], [(1, "not closed on its line")],
                 id="raw-newline-in-string-document"),
    pytest.param(b'[{"a":1}]\n,\n[{"b":2}]\n', [(1, 1, b'{"a":1}'), (3, 13, b'{"b":2}')],
                 [(2, "invalid JSON")], id="document-junk-between-values"),
    pytest.param(b'{"a":"\xc3\x28"}\n', [], [(1, "invalid UTF-8: byte 0xc3 at byte 6")],
                 id="invalid-utf8"),
    pytest.param(b'{"a":"\xed\xa0\x80"}\n', [], [(1, "invalid UTF-8")],
                 id="utf8-encoded-surrogate"),
    pytest.param(b'{"a":"\\udc00"}\n', [], [(1, "lone UTF-16 surrogate")],
                 id="lone-low-surrogate"),
    pytest.param(b'{"a":"\\ud83d\\ude00"}\n', [(1, 0, b'{"a":"\\ud83d\\ude00"}')], [],
                 id="surrogate-pair-ok"),
    pytest.param(b"\xff\xfe{\x00}\x00", [], [(1, "UTF-16")], id="utf16-input"),
    pytest.param(b'{"a":1}\x0c\n', [], [(1, "invalid JSON")], id="form-feed-not-whitespace"),
]


@pytest.mark.parametrize(("data", "want_records", "want_rejected"), CASES)
def test_split_cases(
    data: bytes, want_records: list[tuple[int, int, bytes]], want_rejected: list[tuple[int, str]]
) -> None:
    records, rejected = split_records(data)
    assert [(r.line, r.offset, r.data) for r in records] == want_records
    assert [r.line for r in rejected] == [w[0] for w in want_rejected]
    for got, (_, fragment) in zip(rejected, want_rejected, strict=True):
        assert fragment in got.reason, got.reason
        assert got.excerpt.isprintable()
        assert len(got.excerpt) <= 83
    for r in records:
        assert data[r.offset : r.offset + len(r.data)] == r.data
    # Streaming with tiny reads must not change anything, nor splitting in batches.
    assert list(iter_records(Chunked(data), chunk_bytes=3)) == records_and_rejected(data)
    assert_batches_match(data)


def records_and_rejected(data: bytes) -> list[Record | Rejected]:
    return list(iter_records(io.BytesIO(data)))


class Chunked(io.BytesIO):
    """A stream that is not an ``io.BytesIO`` itself: read chunk by chunk, not in place."""


def flatten(batches: list[RecordBatch]) -> tuple[list[Record], list[Rejected]]:
    records = [batch.record(i) for batch in batches for i in range(len(batch.events))]
    return records, [r for batch in batches for r in batch.rejected]


def assert_batches_match(data: bytes) -> None:
    """iter_batches (the CLI's hot path) yields what iter_records does, in columns."""
    want = split_records(data)
    assert flatten(list(iter_batches(io.BytesIO(data)))) == want
    assert flatten(list(iter_batches(Chunked(data), chunk_bytes=5))) == want
    for batch in iter_batches(io.BytesIO(data)):
        assert len(batch.events) == len(batch.lines) == len(batch.offsets)


@pytest.mark.parametrize(
    ("data", "want"),
    [
        pytest.param(b'{"a":1}', None, id="object"),
        pytest.param(b' {"a":1}\n', None, id="object-with-whitespace"),
        pytest.param(b"[]", "not a JSON object (found an array)", id="array"),
        pytest.param(b"1.5", "not a JSON object (found a number)", id="number"),
        pytest.param(b"", "empty event", id="empty"),
        pytest.param(b'{"a":1}{"b":2}', "invalid JSON: unexpected content after document",
                     id="two-objects"),
        pytest.param(b'\xef\xbb\xbf{"a":1}', "invalid JSON: UTF-8 byte order mark", id="bom"),
        pytest.param(b'{"a":"\\ud800"}', "lone UTF-16 surrogate", id="lone-surrogate"),
        pytest.param(b'{"a":"\x80"}', "invalid UTF-8: byte 0x80 at byte 6", id="bad-utf8"),
    ],
)
def test_validate_event(data: bytes, want: str | None) -> None:
    got = validate_event(data)
    if want is None:
        assert got is None
    else:
        assert got is not None
        assert got.startswith(want), got


def test_excerpt_is_printable_and_short() -> None:
    _, rejected = split_records(b'"' + b"\x01\xff\t" * 100 + b'"\n')
    assert len(rejected) == 1
    excerpt = rejected[0].excerpt
    assert excerpt.isprintable()
    assert excerpt.endswith("...")
    assert len(excerpt) == 83


# --- streaming -----------------------------------------------------------------------------


class CountingStream(io.RawIOBase):
    """A stream of ``count`` identical lines that records how many bytes were read."""

    def __init__(self, line: bytes, count: int) -> None:
        self.line = line
        self.left = count
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left == 0:
            return b""
        n = max(1, size // len(self.line)) if size > 0 else self.left
        n = min(n, self.left)
        self.left -= n
        self.bytes_read += n * len(self.line)
        return self.line * n


def test_json_lines_are_streamed_not_read_whole() -> None:
    line = b'{"category":"Administrative","operationName":"X"}\n'
    stream = CountingStream(line, 20_000)
    items = iter_records(stream, chunk_bytes=4096)  # type: ignore[arg-type]
    first = next(items)
    assert isinstance(first, Record)
    assert stream.bytes_read <= 2 * 4096
    assert sum(1 for _ in items) == 19_999


def test_line_longer_than_chunk() -> None:
    event = b'{"big":"' + b"x" * 10_000 + b'"}'
    data = b'{"a":1}\n' + event + b"\r\n" + event
    records, rejected = split_records(data)
    assert not rejected
    streamed = list(iter_records(Chunked(data), chunk_bytes=64))
    assert streamed == records
    assert_batches_match(data)
    assert [r.data for r in records] == [b'{"a":1}', event, event]
    assert [r.offset for r in records] == [0, 8, 8 + len(event) + 2]


def test_chunk_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_bytes"):
        next(iter_records(io.BytesIO(b"{}"), chunk_bytes=0))


# --- round trip: any list of objects, in every accepted shape ------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
events = st.lists(
    # An object whose only member is "records" holding an array is an envelope by design.
    st.dictionaries(st.text(max_size=8), json_values, max_size=5).filter(
        lambda d: not (list(d) == ["records"] and isinstance(d["records"], list))
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(events=events, shape=st.sampled_from(["lines", "crlf", "concat", "array", "pretty",
                                               "envelope", "envelope-per-line"]))
def test_round_trip(events: list[dict[str, Any]], shape: str) -> None:
    opt = orjson.OPT_INDENT_2 if shape in {"pretty", "envelope"} else 0
    pieces = [orjson.dumps(e, option=opt) for e in events]
    if shape == "lines":
        data = b"".join(p + b"\n" for p in pieces)
    elif shape == "crlf":
        data = b"".join(b" " + p + b"\r\n\r\n" for p in pieces)
    elif shape == "concat":
        data = b"".join(pieces) + b"\n"
    elif shape in {"array", "pretty"}:
        data = b"[\n" + b",\n".join(pieces) + b"\n]"
    elif shape == "envelope":
        data = b'{\n  "records": [\n' + b" ,\n".join(pieces) + b"\n  ]\n}\n"
    else:
        data = b"".join(b'{"records":[' + p + b"]}\n" for p in pieces)
    records, rejected = split_records(data)
    assert not rejected
    assert [r.data for r in records] == pieces
    assert [orjson.loads(r.data) for r in records] == events
    for r in records:
        assert data[r.offset : r.offset + len(r.data)] == r.data
        assert r.line == data.count(b"\n", 0, r.offset) + 1
    assert_batches_match(data)


# --- demo data -----------------------------------------------------------------------------


def test_demo_sample_is_valid_json_lines() -> None:
    data = DEMO.read_bytes()
    records, rejected = split_records(data)
    assert not rejected
    assert 40 <= len(records) <= 200
    assert len(records) == data.count(b"\n")
    assert all(len(r.data) < 60_000 for r in records)
    assert len({r.data for r in records}) == len(records)


@needs_corpus
def test_demo_sample_is_copied_byte_exact_from_the_corpus() -> None:
    corpus_lines: set[bytes] = set()
    for name in EXPECTED_COUNTS:
        corpus_lines.update(line.strip() for line in (CORPUS / name).read_bytes().split(b"\n"))
    records, _ = split_records(DEMO.read_bytes())
    assert all(r.data in corpus_lines for r in records)
