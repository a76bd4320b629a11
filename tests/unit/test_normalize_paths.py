"""The compiled candidate paths give what looking up each candidate in turn gives.

``_Reader.first`` and the per-(field map, key set) plan of ``normalize._plan`` skip the
candidates whose first key a record's key set lacks (worked out once per key set,
:mod:`auditseal.ingest.record_paths`); ``_Reader.first_of`` and ``record_paths.every`` look
every candidate up, as normalize always did. Every record of the shared corpus, hand-made odd
ones and generated ones (keys in any case, duplicated case variants, JSON in strings,
lists, nulls) must normalize identically both ways, with the memos cold and warm.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import astuple
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.ingest import normalize, record_paths
from auditseal.ingest.azure_categories import FieldMap
from auditseal.ingest.normalize import NormalizedEvent, _Reader, normalize_event
from tests.conftest import activity_event
from tests.unit.test_normalize import (
    DATADOG,
    OTEL,
    PANTHER,
    needs_corpus,
    panther_logs,
    records_of,
)


def _by_each_candidate(record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
                       ) -> NormalizedEvent:
    with monkeypatch.context() as patch:
        patch.setattr(_Reader, "first", _Reader.first_of)
        patch.setattr(normalize, "_plan", _unpruned_plan)
        return normalize_event(record)


def _unpruned_plan(reader: _Reader, fields: FieldMap) -> tuple[record_paths.Viable, ...]:
    del reader
    return tuple(record_paths.every(getattr(fields, name)) for name in normalize.PLANNED)


def _both_ways(record: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    expected = astuple(_by_each_candidate(record, monkeypatch))
    for _ in range(2):  # cold memos, then warm ones
        assert astuple(normalize_event(record)) == expected


def _corpus() -> Iterator[dict[str, Any]]:
    for path in sorted(DATADOG.rglob("*.json")) + sorted(OTEL.rglob("*.json")):
        for raw in records_of(path):
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # the pseudo-JSON records: normalize_bytes reads those leniently
            if isinstance(record, dict):
                yield record
    for path in sorted(PANTHER.rglob("*.yml")):
        yield from panther_logs(path.read_text(encoding="utf-8"))


@needs_corpus
def test_every_corpus_record_normalizes_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    records = list(_corpus())
    assert len(records) >= 400
    for record in records:
        _both_ways(record, monkeypatch)


def test_activity_events_normalize_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(50):
        _both_ways(orjson.loads(activity_event(i)), monkeypatch)


ODD = [
    {"CALLER": "a@x", "caller": "b@x", "category": "Administrative"},
    {"Caller": "", "claims": {"APPID": "app"}, "category": "administrative"},
    {"identity": "not a dict", "category": "Administrative", "caller": None},
    {"category": "kube-audit", "properties": {"log": '{"verb":"get","user":{"username":"u"},'
                                              '"sourceIPs":["10.0.0.1"]}'}},
    {"category": "kube-audit", "properties": {"log": "not json"}},
    {"category": "SignInLogs", "properties": [1, 2], "resultType": "0"},
    {"TimeGenerated": "2026-01-01T00:00:00Z", "Type": "AuditLogs",
     "InitiatedBy": {"user": {"userPrincipalName": "u@x"}}},
    {"": "empty key", "category": "Administrative"},
    # nested candidates walked as a tree (record_paths._deep_values), and what sends them
    # back to walking each path: JSON in a string, a list, case variants, empty values
    {"category": "Administrative", "identity": {"CLAIMS": {"UPN": "u@x"}, "claims": {"oid": 1}}},
    {"category": "Administrative", "identity": {"claims": '{"upn": "s@x"}'}},
    {"category": "Administrative", "identity": {"claims": [1]}, "claims": {"appid": "a"}},
    {"category": "Administrative", "identity": {"claims": {"upn": "", "name": None},
                                                 "authorization": {"evidence": {
                                                     "principalId": "p"}}}},
    {"category": "Administrative", "identity": {"claims": {"name": 5, "Name": "n"}}},
    {"category": "Administrative", "identity": {"claims": {"appid": {"value": "v"}}}},
]


@pytest.mark.parametrize("record", ODD, ids=[str(i) for i in range(len(ODD))])
def test_odd_records_normalize_as_before(record: dict[str, Any],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _both_ways(record, monkeypatch)


KEY = st.sampled_from(["caller", "Caller", "CALLER", "identity", "Identity", "claims",
                       "category", "Category", "properties", "log", "tenantId", "TENANTID",
                       "resourceId", "upn", "appid", "time", "level"])
LEAF = st.one_of(st.none(), st.just(""), st.sampled_from(["x@y", "Administrative", "Error",
                                                         "2026-01-01T00:00:00Z"]),
                 st.integers(-1, 5), st.booleans())
VALUE = st.recursive(LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(KEY, inner, max_size=4)),
                     max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEY, VALUE, max_size=8))
def test_generated_records_normalize_as_before(record: dict[str, Any]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _both_ways(record, monkeypatch)


def test_memo_tables_stay_bounded() -> None:
    for i in range(record_paths._MEMO_MAX + 10):
        normalize_event({f"k{i}": 1, "category": "Administrative", "Caller": "c"})
    assert len(record_paths._INTERNED) <= record_paths._MEMO_MAX
    assert len(record_paths._KEY_SETS) <= record_paths._MEMO_MAX
    assert normalize_event({"CALLER": "c", "category": "Administrative"}).caller == "c"


def test_tuple_ids_reused_by_other_tuples_are_noticed() -> None:
    for i in range(200):  # tuples made and freed: a new one may get a freed one's id
        paths = ((f"k{i}",), ("a",))  # built at run time: a new object each turn
        assert record_paths.candidates(paths).paths == paths
