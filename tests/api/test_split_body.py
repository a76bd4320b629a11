"""``split_body`` (the batched splitter) against the per-record splitter it replaced.

Item numbers, lines, reasons and the event bytes must be exactly what splitting with
``iter_records`` gives, on every corpus file and on bodies built to mix good, bad and
over-large items in every shape (JSON lines, array, envelope, one object).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from auditseal.api.ingest import split_body
from auditseal.ingest.records import Record, Rejected, iter_records
from tests.conftest import CORPUS, activity_event

LIMIT = 2_000


def _reference(body: bytes, limit: int) -> tuple[list[tuple[int, bytes]], list[dict[str, Any]]]:
    """The former split_body: one Record or Rejected per item."""
    events, errors = [], []
    for item, part in enumerate(iter_records(io.BytesIO(body))):
        if isinstance(part, Rejected):
            errors.append({"item": item, "line": part.line, "reason": part.reason})
        elif len(part.data) > limit:
            assert isinstance(part, Record)
            errors.append({"item": item, "line": part.line, "reason": (
                f"event is {len(part.data)} bytes; one entry holds at most {limit} bytes of "
                "event (tlog-tiles limits an entry to 65,535 bytes)")})
        else:
            events.append((item, part.data))
    return events, errors


def _check(body: bytes, limit: int = LIMIT) -> tuple[int, int]:
    batch = split_body(body, limit)
    events, errors = _reference(body, limit)
    assert [(item, bytes(data)) for item, data in batch.events] == events
    assert batch.errors == errors
    return len(events), len(errors)


_GOOD = [activity_event(i) for i in range(6)]
_BIG = b'{"pad": "' + b"x" * 3_000 + b'"}'
_MIXED = [_GOOD[0], b"not json", _GOOD[1], _BIG, b"[1, 2]", _GOOD[2], b'{"a": 1', _GOOD[3]]


@pytest.mark.parametrize("body", [
    pytest.param(b"\n".join(_MIXED) + b"\n", id="ndjson-mixed"),
    pytest.param(b"\r\n".join(_MIXED), id="ndjson-crlf-no-final-newline"),
    pytest.param(b"\n\n" + b"\n\n".join(_GOOD) + b"\n\n", id="ndjson-blank-lines"),
    pytest.param(b"[" + b",".join(_GOOD) + b"]", id="array"),
    pytest.param(b"[" + b",\n ".join([_GOOD[0], _BIG, b"7", _GOOD[1], b'"s"']) + b"]",
                 id="array-mixed"),
    pytest.param(b'{"records": [' + b", ".join([_GOOD[0], _BIG, _GOOD[1]]) + b"]}",
                 id="envelope"),
    pytest.param(_GOOD[4], id="one-object"),
    pytest.param(_BIG, id="one-object-too-big"),
    pytest.param(b"[" + b",".join(_GOOD), id="array-unclosed"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\xef\xbb\xbf" + _GOOD[5], id="bom"),
])
def test_split_body_matches_the_per_record_splitter(body: bytes) -> None:
    _check(body)


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for d in ("datadog_azure-log-forwarding-orchestration",
                              "otel_collector_contrib", "azure_samples")
                  for p in (CORPUS / d).rglob("*.json*") if p.is_file())


@pytest.mark.skipif(not _corpus_files(), reason=f"real-data corpus {CORPUS} is absent")
def test_split_body_matches_on_every_corpus_file() -> None:
    sealed = rejected = 0
    for path in _corpus_files():
        good, bad = _check(path.read_bytes(), limit=64_000)
        sealed, rejected = sealed + good, rejected + bad
    assert sealed > 100  # the corpus was really split, good and bad alike
    assert rejected > 0
