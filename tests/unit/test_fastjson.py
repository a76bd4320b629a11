"""simdjson's quick "yes" must never accept what orjson (the reference) refuses."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.ingest.fastjson import ENVELOPE, OBJECT, UNDECIDED, array_objects, classify
from auditseal.ingest.jsonscan import array_spans

SEED = orjson.dumps({"time": "2026-11-27T07:00:00Z", "records": [1, {"a": "\u00e9"}],
                     "n": -1.5e3, "t": True, "z": None, "s": "q\"\\\n"})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b'{"a":1}', OBJECT, id="object"),
        pytest.param(b' {"a":1}\r', OBJECT, id="white-space"),
        pytest.param(b'{"records":[{"a":1}]}', ENVELOPE, id="envelope"),
        pytest.param(b'{"records":[],"x":1}', OBJECT, id="records-plus-more"),
        pytest.param(b"[1]", UNDECIDED, id="array"),
        pytest.param(b'"s"', UNDECIDED, id="string"),
        pytest.param(b'{"a":1}{"b":2}', UNDECIDED, id="concatenated"),
        pytest.param(b'\xef\xbb\xbf{"a":1}', UNDECIDED, id="bom"),
        pytest.param(b'{"a":"\xff"}', UNDECIDED, id="invalid-utf8"),
        pytest.param(b'{"a":"\\ud800"}', UNDECIDED, id="lone-surrogate"),
        pytest.param(b'{"a":123456789012345678901234567890}', UNDECIDED, id="big-int"),
        pytest.param(b'{"a":NaN}', UNDECIDED, id="nan"),
        pytest.param(b"", UNDECIDED, id="empty"),
    ],
)
def test_classify(data: bytes, expected: int) -> None:
    assert classify(data) == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), max_size=3))
def test_a_fast_yes_is_an_orjson_yes(edits: list[tuple[int, int]]) -> None:
    data = bytearray(SEED)
    for position, value in edits:
        data[position] = value
    if classify(bytes(data)) != UNDECIDED:
        assert type(orjson.loads(bytes(data))) is dict


# --- array_objects: one simdjson parse per element delimits and validates it ---------------

_WS = st.sampled_from([b"", b" ", b"\n", b"\r\n  ", b"\t"])
_TRICKY = ["},{", "}, {", "}]", '\\"},{\\"', "[{", "\n"]  # separators inside strings


def _spans_by_scanner(data: bytes) -> tuple[list[tuple[int, int]], int]:
    return array_spans(data, 0, len(data))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'[{"a":1},{"b":2}]', id="compact"),
        pytest.param(b'[\n  {"a":1},\n  {"b":[{},{}]}\n]', id="pretty-nested"),
        pytest.param(b'[{"s":"},{"},{"t":"}]"}]', id="separators-in-strings"),
        pytest.param(b'[{"a":1} , {"b":2},{"c":3}\t]', id="mixed-separators"),
        pytest.param(b'[{"records":[{"a":1}]}]', id="envelope-element"),
    ],
)
def test_array_objects_finds_the_scanners_spans(data: bytes) -> None:
    got = array_objects(data, 0, len(data))
    assert got is not None
    elements, end = got
    spans, scanner_end = _spans_by_scanner(data)
    assert end == scanner_end
    assert [(s, s + len(d)) for s, _, d in elements] == spans
    assert [d for _, _, d in elements] == [data[s:e] for s, e in spans]
    assert [n for s, n, _ in elements] == [data.count(b"\n", 0, s) for s, _ in spans]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[]", id="empty"),
        pytest.param(b'[{"a":1},2]', id="number-element"),
        pytest.param(b'[{"a":1},[{"b":2}]]', id="array-element"),
        pytest.param(b'[{"a":1},{"b":123456789012345678901234567890}]', id="big-int"),
        pytest.param(b'[{"a":"\xff"}]', id="invalid-utf8"),
        pytest.param(b'[{"a":1},{"b":2}', id="unclosed"),
        pytest.param(b'[{"a":1},,{"b":2}]', id="stray-comma"),
        pytest.param(b'[{"a":1},{"b":2},]', id="trailing-comma"),
    ],
)
def test_array_objects_leaves_anything_else_to_the_scanner(data: bytes) -> None:
    assert array_objects(data, 0, len(data)) is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "records"]),
            st.one_of(
                st.sampled_from(_TRICKY),
                st.integers(-(2**63), 2**63 - 1),
                st.lists(st.dictionaries(st.text(max_size=3), st.sampled_from(_TRICKY),
                                         max_size=2), max_size=2),
            ),
            max_size=3,
        ),
        max_size=6,
    ),
    st.lists(st.tuples(_WS, _WS), min_size=7, max_size=7),
)
def test_array_objects_agrees_with_the_scanner(
    events: list[dict[str, object]], gaps: list[tuple[bytes, bytes]]
) -> None:
    pieces = [orjson.dumps(e) for e in events]
    data = b"[" + gaps[-1][0]
    for i, piece in enumerate(pieces):
        before, after = gaps[i]
        data += piece + (before + b"," + after if i < len(pieces) - 1 else b"")
    data += gaps[-1][1] + b"]"
    got = array_objects(data, 0, len(data))
    if not pieces:
        assert got is None  # the scanner handles an empty array
        return
    if got is None:
        # Allowed only where an element holds so many '}' that the cuts tried inside
        # it hit the bound (the scanner then splits the array); never a wrong answer.
        assert max(p.count(b"}") for p in pieces) > 8
        return
    elements, end = got
    spans, scanner_end = _spans_by_scanner(data)
    assert end == scanner_end
    assert [(s, s + len(d)) for s, _, d in elements] == spans
    assert [d for _, _, d in elements] == pieces
    assert [n for s, n, _ in elements] == [data.count(b"\n", 0, s) for s, _ in spans]
