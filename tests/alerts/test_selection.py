"""The memoized candidate selection and the shared keyword scan give each rule's own verdict.

:class:`~auditseal.alerts.selection.Selector` keys its memo on what the key fields reach and
settles the rules that read nothing else; :mod:`auditseal.alerts.keywords` finds every
rule's keywords in one scan. Each test feeds records that attack one exactness argument
(``True == 1`` in Python, values of one field in several spellings, objects and lists
where a scalar usually is, overlapping keywords) through one engine, in both orders, and
compares the rules it fired with every rule evaluated alone on a fresh view by the general
matchers (no specialised check, no shared keyword scan).
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import orjson
import pytest

from auditseal.alerts import sigma
from auditseal.alerts.engine import AlertEngine, EngineConfig
from auditseal.alerts.fields import EventView
from auditseal.alerts.keywords import Keywords
from auditseal.alerts.sigma import RuleSet, load_texts


def _rules(*bodies: tuple[str, str]) -> tuple[RuleSet, RuleSet]:
    """The rules as the engine compiles them, and evaluated by the general matchers."""
    texts = [(f"r{i}", f"title: r{i}\nid: 5d0c5d2e-0000-4000-8000-{i:012d}\nlogsource:\n"
                       f"  product: azure\n  service: {service}\ndetection:\n{body}\n")
             for i, (service, body) in enumerate(bodies)]
    ruleset = load_texts(texts)
    assert len(ruleset.rules) == len(bodies), ruleset.report
    with patch.object(sigma, "detection_check", lambda detection: detection):
        general = load_texts(texts)
    return ruleset, general


def _agree(rulesets: tuple[RuleSet, RuleSet], events: list[dict[str, Any]]) -> int:
    """Engine verdicts == each rule alone, records in both orders; the number of matches."""
    ruleset, general = rulesets
    fired = 0
    for ordered in (events, events[::-1]):
        engine = AlertEngine(ruleset, EngineConfig(suppress_window_s=0))
        for index, event in enumerate(ordered):
            raw = orjson.dumps(event)
            got = sorted(a.rule_id for a in engine.process(index, raw) if a.kind == "rule")
            view = EventView(orjson.loads(raw), raw)
            expected = sorted(r.id for r in general.rules if r.matches(view))
            assert got == expected, event
            fired += len(got)
    return fired


def _signin(**fields: object) -> dict[str, Any]:
    return {"category": "SignInLogs", "time": "2026-03-14T02:14:33Z", **fields}


def test_numbers_and_booleans_are_not_confused() -> None:
    ruleset = _rules(("signinlogs", "  selection:\n    ResultType: 1\n  condition: selection"),
                     ("signinlogs", "  selection:\n    ResultType: 'true'\n"
                                    "  condition: selection"))
    events = [_signin(resultType=True), _signin(resultType=1), _signin(resultType=1.0),
              _signin(resultType="1"), _signin(resultType=False), _signin(resultType=0),
              _signin(resultType=None), _signin()]
    assert _agree(ruleset, events) == 2 * 4  # 1, 1.0, "1" and true, each order


def test_settled_rules_follow_every_spelling_of_their_fields() -> None:
    ruleset = _rules(
        ("signinlogs", "  selection:\n    Status: Success\n"
                       "    AuthenticationRequirement: singleFactorAuthentication\n"
                       "  condition: selection"),
        ("signinlogs", "  selection:\n    ResultType: 0\n  filter:\n    Status: Failure\n"
                       "  condition: selection and not filter"))
    events = [_signin(resultType="0", properties={"authenticationRequirement": req})
              for req in ("singleFactorAuthentication", "SINGLEFACTORAUTHENTICATION",
                          "multiFactorAuthentication", None, ["singleFactorAuthentication"])]
    events += [_signin(resultType=code, properties={
        "AuthenticationRequirement": "singleFactorAuthentication",
        "status": {"errorCode": code, "failureReason": reason}})
        for code in (0, "0", 50126, "50126") for reason in ("Other.", None)]
    events += [_signin(properties={"authenticationRequirement": "singleFactorAuthentication",
                                   "result": result}) for result in ("success", "failure")]
    assert _agree(ruleset, events) > 10


def test_key_fields_holding_objects_or_lists() -> None:
    ruleset = _rules(
        ("auditlogs", "  selection:\n    operationName: Add member to role\n"
                      "    Initiatedby|contains: admin\n  condition: selection"),
        ("auditlogs", "  selection:\n    properties.message:\n      - Add user\n"
                      "      - Delete user\n  condition: selection"))

    def audit(**properties: object) -> dict[str, Any]:
        return {"category": "AuditLogs", "operationName": properties.pop("op", "Add user"),
                "properties": properties}

    events = [audit(message="Add user"), audit(message=["Delete user", "x"]),
              audit(message={"value": "Add user"}), audit(message=["x"]),
              audit(op="Add member to role", initiatedBy={"user": {"upn": "admin@x"}}),
              audit(op="Add member to role", initiatedBy={"user": {"upn": "bob@x"}}),
              audit(op="Add member to role", initiatedBy=[{"upn": "admin@x"}]),
              audit(op="Add member to role", initiatedBy="root admin"),
              audit(message="Delete user")]
    assert _agree(ruleset, events) > 8


def test_overlapping_keywords_are_all_found() -> None:
    ruleset = _rules(("activitylogs", "  keywords:\n    - abcd\n  condition: keywords"),
                     ("activitylogs", "  keywords:\n    - cdef\n  condition: keywords"),
                     ("activitylogs", "  keywords:\n    - bc\n    - zz\n"
                                      "  condition: keywords"),
                     ("activitylogs", "  keywords:\n    - 'write'\n  filter:\n"
                                      "    operationName: x\n"
                                      "  condition: keywords and not filter"))
    events = [{"category": "Administrative", "operationName": text}
              for text in ("ABCDEF", "abcd", "xcdef", "bc", "zzz", "x/write", "a/WRITE", "",
                           "ÀBCDEF x/WRITE", "ABCDE\u212aF")]  # non-ASCII: the text path
    assert _agree(ruleset, events) > 10


@pytest.mark.parametrize(("needles", "text", "found", "hideable"), [
    (["abcd", "cdef"], "abcdef", {"abcd"}, {"cdef"}),  # "abcd" cannot hide in "cdef"
    (["ab", "abc"], "xabcx", {"abc"}, {"ab", "abc"}),
    (["microsoft.a/write", "microsoft.b/write"], "microsoft.b/write microsoft.a/write",
     {"microsoft.a/write", "microsoft.b/write"}, set()),
    (["bc", "zz"], "abcd", {"bc"}, set()),
])
def test_keyword_scan(needles: list[str], text: str, found: set[str], hideable: set[str]
                      ) -> None:
    registry = Keywords()
    registry.register(tuple(needles))
    assert registry.scan(text) == found
    assert registry.hideable == hideable
    assert all(registry.settles(n) == (n not in hideable) for n in needles)
    assert not registry.settles("never registered")


def test_settled_rules_on_fields_keyed_by_what_they_add() -> None:
    """A key field met holding a list or an object is keyed by the rules its values add to
    the candidates; a rule settled by that field must then be evaluated per record: here
    both records add the same rule, yet only the first matches."""
    ruleset = _rules(
        ("auditlogs", "  selection:\n    Initiatedby: upn\n  filter:\n"
                      "    Initiatedby|contains: x\n  condition: selection and not filter"),
        ("auditlogs", "  selection:\n    Initiatedby:\n      - upn\n      - app\n"
                      "  condition: selection"))

    def audit(initiated: object) -> dict[str, Any]:
        return {"category": "AuditLogs", "operationName": "Update user",
                "properties": {"initiatedBy": initiated}}

    events = [audit(["upn"]), audit(["upn", "xx"]), audit(["upn", "y"]), audit(["app"]),
              audit(["APP", "x"]), audit({"value": "upn"}), audit({"value": "upn", "x": 1}),
              audit({"value": "App"}), audit({"other": "upn"}), audit([]), audit("upn"),
              audit("xupn"), audit(None), audit(["zz"])]
    assert _agree(ruleset, events) > 10


def test_list_key_fields_with_affix_gates() -> None:
    """Lists of values under a gate with prefixes and suffixes: the rules they add differ
    record by record though the records have the same shape."""
    ruleset = _rules(
        ("auditlogs", "  selection:\n    targetResources.type|startswith: serv\n"
                      "  condition: selection"),
        ("auditlogs", "  selection:\n    targetResources.type|endswith: ipal\n"
                      "  condition: selection"),
        ("auditlogs", "  selection:\n    targetResources.type: user\n  condition: selection"))

    def audit(*types: str) -> dict[str, Any]:
        return {"category": "AuditLogs", "operationName": "Update user",
                "properties": {"targetResources": [{"type": t} for t in types]}}

    events = [audit("Service Principal"), audit("User"), audit("principal"),
              audit("User", "ServicePrincipal"), audit("x", "y"), audit(), audit("USER"),
              audit("serv", "x")]
    assert _agree(ruleset, events) > 8


def test_list_key_fields_keyed_by_every_string() -> None:
    """Strings reached through a list key the combination all together, in order, as
    written: records sharing a first value or differing only in case must not share it."""
    ruleset = _rules(
        ("auditlogs", "  selection:\n    targetResources.type: serviceprincipal\n"
                      "  condition: selection"),
        ("auditlogs", "  selection:\n    targetResources.type|endswith: ipal\n"
                      "  condition: selection"),  # and one tried on every record: no screen
        ("auditlogs", "  selection:\n    Initiatedby|contains: zzz\n  condition: selection"))

    def audit(*types: object) -> dict[str, Any]:
        return {"category": "AuditLogs", "operationName": "Update user",
                "properties": {"targetResources": [{"type": t} for t in types]}}

    events = [audit("User", "x"), audit("User", "ServicePrincipal"), audit("User"),
              audit("x", "SERVICEPRINCIPAL"), audit("x", "servicePrincipal"), audit("x", 1),
              audit("User", "ServicePrincipal", "y"), audit("user", "x")]
    assert _agree(ruleset, events) == 2 * 2 * 4  # both rules on four records, each order
