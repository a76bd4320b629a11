"""The one-walk resolver gives exactly the former per-path resolution (differential).

Records: every event of the real-data corpus and every Panther labelled fixture (as
test_speedups.py gathers them), each also pretty-printed and upper-cased, the attack
records of test_speedups.py, and hand-made records aimed at the resolver's rules (keys
differing only by case, keys holding dots, JSON in strings, lists of lists, dict
subclasses). Rules: the built-in pack and SigmaHQ's Azure rules. Compared with
:mod:`tests.alerts.reference` (the former code, kept verbatim): every field's values and
lower-cased values, lazily and after the engine's one-pass walk, the record's time, and
the alerts of whole streams.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any
from unittest.mock import patch

import orjson
import pytest

from auditseal.alerts import sigma
from auditseal.alerts.checks import detection_check, item_check
from auditseal.alerts.engine import _CALLER, AlertEngine, EngineConfig
from auditseal.alerts.fields import ALIASES, EventView, FieldRef, compile_field
from auditseal.alerts.matcher import DetectionMatcher, ItemMatcher
from auditseal.alerts.sigma import RuleSet, load_rules
from tests.alerts.helpers import SIGMAHQ
from tests.alerts.reference import ReferenceEngine, ReferenceView
from tests.alerts.test_speedups import ATTACKS, _corpus_events, _upper
from tests.conftest import CORPUS

_UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
HAND_MADE: list[dict[str, Any]] = [
    {"category": "Administrative", "Level": "Error", "level": "Informational",
     "LEVEL": "Critical", "operationName": {"value": "A/B", "localizedValue": "x"}},
    {"category": "Administrative", "identity": {"claims": {_UPN: "a@b.c", "Upn": "x"}},
     "claims": {_UPN.upper(): "u@v.w"}},
    {"category": "Administrative", "identity": {"claim": {"a.b": {"c": 1}, "A.B.c": 2}}},
    {"category": "SignInLogs", "properties": {"status": {"errorCode": 50126,
                                                         "failureReason": "Bad"}}},
    {"category": "SignInLogs", "resultType": None, "properties": {
        "status": {"errorCode": "0"}, "location": {"countryOrRegion": "NL"}}},
    {"category": "AuditLogs", "resourceId": "/tenants/t/providers/Microsoft.aadiam",
     "properties": {"targetResources": [[{"type": "User"}, {"Type": "Group"}],
                                        {"modifiedProperties": [{"displayName": "Role"}]},
                                        ' {"type": "App"}', "[{\"type\": 1}]", "{bad"],
                    "initiatedBy": {"user": {"userPrincipalName": "i@j.k"}}}},
    {"category": "kube-audit", "properties": {"log": json.dumps(
        {"requestObject": {"roleRef": {"name": "cluster-admin"}}, "user": {"username": "u"}})}},
    {"category": "Administrative", "properties": {"requestbody": "[1, 2]", "message": ""},
     "callerIpAddress": "10.0.0.1", "time": "2026-01-02T03:04:05Z"},
    {"category": "Administrative", "eventTimestamp": "2026-01-02T03:04:05.1234567+01:00",
     "properties": OrderedDict([("message", "plain"), ("a.b", OrderedDict(c="dotted"))])},
    {"Type": "SigninLogs", "ResultType": "50053", "TimeGenerated": "2026-01-02T03:04:05Z"},
    # Strings that look like JSON (the resolver skips, unparsed, those not ending like it).
    {"category": "Administrative", "properties": {
        "requestbody": '{"a": 1} \n', "responseBody": '{"id": "/subscriptions/1', "message": "[x",
        "entity": '{"a": 1}x', "statusCode": "{}\u00a0", "hierarchy": "[1, [2]]\t"}},
    # Keywords of SigmaHQ's Activity Log rules, in upper case and among other text.
    {"category": "Administrative", "operationName": "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
     "properties": {"message": "x microsoft.maps/accounts/listKeys/action y"}},
    {"category": "Administrative", "properties": {"message": "microsoft.compute/snapshots/writ"}},
]


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    if not (SIGMAHQ.exists() and CORPUS.exists()):
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return load_rules([SIGMAHQ / "rules" / "cloud" / "azure"], builtin=True)


@pytest.fixture(scope="module")
def general(ruleset: RuleSet) -> RuleSet:
    """The same rules evaluated by the general matchers (no specialised checks)."""
    with patch.object(sigma, "detection_check", lambda detection: detection):
        found = load_rules([SIGMAHQ / "rules" / "cloud" / "azure"], builtin=True)
    assert [r.id for r in found.rules] == [r.id for r in ruleset.rules]
    return found


@pytest.fixture(scope="module")
def records() -> list[tuple[dict[str, Any], bytes | None]]:
    if not CORPUS.exists():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    found = _corpus_events()
    spaced = [json.dumps(orjson.loads(e), indent=1).encode() for e in found]
    upper = [orjson.dumps(_upper(orjson.loads(e))) for e in found]
    attacks = [a[3] for a in ATTACKS]
    out: list[tuple[dict[str, Any], bytes | None]] = [
        (orjson.loads(raw), raw) for raw in found + spaced + upper + attacks]
    out.extend((event, None) for event in HAND_MADE)
    return out


def _fields(ruleset: RuleSet) -> list[FieldRef]:
    refs = {_CALLER.key: _CALLER}
    names = [*ALIASES, "Level", "level", "identity.claims.upn", "identity.claim.a.b.c",
             "properties.a.b.c", "targetResources.type", "properties.log.user.username"]
    refs.update((ref.key, ref) for ref in map(compile_field, names))
    for rule in ruleset.rules:
        for detection in rule.detections.values():
            refs.update((item.field.key, item.field) for item in detection.items()
                        if item.field is not None)
        if rule.new_value is not None:
            for name in (rule.new_value.field, *rule.new_value.group_by):
                refs.setdefault(name.lower(), compile_field(name))
    for spec in ruleset.correlations:
        for name, mapping in spec.group_by:
            for each in (name, *mapping.values()):
                refs.setdefault(each.lower(), compile_field(each))
    return list(refs.values())


def test_every_field_resolves_as_before(ruleset: RuleSet,
                                        records: list[tuple[dict[str, Any], bytes | None]]
                                        ) -> None:
    refs = _fields(ruleset)
    engine = AlertEngine(ruleset, EngineConfig(0))
    compared = found = 0
    for event, raw in records:
        reference = ReferenceView(event, raw)
        lazy = EventView(event, raw)
        walked = EventView(event, raw)
        table = engine._tables.get(walked.service) or engine._tables[None]
        walked.prefetch(table.program)
        for ref in refs:
            expected = reference.values(ref)
            assert lazy.values(ref) == expected, (ref.name, event)
            assert walked.values(ref) == expected, (ref.name, event)
            assert walked.lowered(ref) == reference.lowered(ref), (ref.name, event)
            compared += 1
            found += bool(expected)
        assert lazy.time() == walked.time() == reference.time()
        assert lazy.service == reference.service
    assert compared > 50_000
    assert found > 10_000  # the comparison saw real values, not only absent fields


def test_gate_candidates_are_as_before(ruleset: RuleSet,
                                       records: list[tuple[dict[str, Any], bytes | None]]
                                       ) -> None:
    engine = AlertEngine(ruleset, EngineConfig(0))
    reference = ReferenceEngine(ruleset, EngineConfig(0))
    evaluated = 0
    for event, raw in records:
        expected = reference.candidates(ReferenceView(event, raw))
        assert engine.candidates(EventView(event, raw)) == expected
        evaluated += len(expected)
    assert evaluated > 1000


def _detections(parts: list[ItemMatcher | DetectionMatcher]) -> list[DetectionMatcher]:
    nested = [part for part in parts if isinstance(part, DetectionMatcher)]
    return nested + [d for part in nested for d in _detections(part.parts)]


def test_specialised_checks_agree_with_the_general_matchers(
        ruleset: RuleSet, records: list[tuple[dict[str, Any], bytes | None]]) -> None:
    detections = [d for rule in ruleset.rules for top in rule.detections.values()
                  for d in (top, *_detections(top.parts))]
    checks = [(d, detection_check(d)) for d in detections]
    items = [(item, item_check(item)) for d in detections for item in d.parts
             if isinstance(item, ItemMatcher)]
    assert sum(check is not item for item, check in items) > 200  # most items specialised
    matched = 0
    for event, raw in records:
        view = EventView(event, raw)
        for detection, check in checks:
            assert check(view) == detection(view), (detection.name, event)
        for item, check in items:
            expected = item(view)
            assert check(view) == expected, (item.field, item.modifiers, event)
            matched += expected
    assert matched > 1000


@pytest.mark.parametrize("suppress", [0.0, 600.0])
def test_engine_fires_the_same_alerts(ruleset: RuleSet, general: RuleSet, suppress: float,
                                      records: list[tuple[dict[str, Any], bytes | None]]
                                      ) -> None:
    stream = [raw if raw is not None else event for event, raw in records]
    stream = stream + stream  # twice: suppression, new values and correlations see repeats
    engine = AlertEngine(ruleset, EngineConfig(suppress))
    reference = ReferenceEngine(general, EngineConfig(suppress))
    got = [a.to_json() for a in engine.feed(enumerate(stream)) + engine.flush()]
    expected = [a.to_json() for a in reference.feed(enumerate(stream)) + reference.flush()]
    assert got == expected
    assert len(expected) > (50 if suppress else 200)
    assert engine.stats == reference.stats
