"""simdjson's quick "yes" must never accept what orjson (the reference) refuses."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.ingest.fastjson import ENVELOPE, OBJECT, UNDECIDED, classify

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
