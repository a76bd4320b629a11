"""Sigma semantics of the evaluator and the Azure field mapping, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from auditseal.alerts.fields import EventView, compile_field, event_service
from auditseal.alerts.sigma import load_texts
from tests.alerts.helpers import matches, rule

EVENT: dict[str, Any] = {
    "time": "2026-03-14T09:21:07.5530000Z",
    "operationName": "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
    "category": "Administrative",
    "resultType": "Success",
    "callerIpAddress": "203.0.113.45",
    "durationMs": "78",
    "identity": {"claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":
                            "mallory@contoso.example"}},
    "properties": {
        "message": "Microsoft.Authorization/roleAssignments/write",
        "requestbody": '{"properties":{"roleDefinitionId":'
                       '"/x/8e3af657-a8ff-443c-a75c-2fe8c4bcb635",'
                       '"principalType":"ServicePrincipal"}}',
        "tags": ["prod", "pci"],
        "empty": [],
        "nothing": None,
        "isRbac": True,
        "statusCode": 201,
    },
}

def sel(item: str) -> str:
    """A detection with one selection ``s`` holding ``item``."""
    return f"  s:\n    {item}\n  condition: s"


CASES = [
    # (id, detection YAML body, expected)
    ("plain-value-any-case",
     sel("operationName: microsoft.authorization/roleassignments/write"), True),
    ("field-name-any-case",
     sel("OPERATIONNAME: MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"), True),
    ("value-list-is-or", sel("resultType: [Failed, success]"), True),
    ("wildcard-star", sel("operationName: 'microsoft.authorization/*/write'"), True),
    ("wildcard-question", sel("resultType: 'succ?ss'"), True),
    ("wildcard-no-match", sel("resultType: 'fail*'"), False),
    ("escaped-star-is-literal", sel("resultType: 'Succ\\*'"), False),
    ("contains", sel("operationName|contains: RoleAssign"), True),
    ("startswith", sel("operationName|startswith: microsoft.auth"), True),
    ("endswith", sel("operationName|endswith: /WRITE"), True),
    ("endswith-miss", sel("operationName|endswith: /delete"), False),
    ("contains-all-both", sel("operationName|contains|all: [authorization, write]"), True),
    ("contains-all-one-missing", sel("operationName|contains|all: [authorization, delete]"), False),
    ("re-search", sel("operationName|re: 'ROLE[A-Z]+/WRITE$'"), True),
    ("re-is-case-sensitive", sel("operationName|re: 'role[a-z]+/write$'"), False),
    ("re-i-flag", sel("operationName|re|i: 'role[a-z]+/write$'"), True),
    ("cidr-in", sel("callerIpAddress|cidr: 203.0.113.0/24"), True),
    ("cidr-out", sel("callerIpAddress|cidr: 10.0.0.0/8"), False),
    ("number-equals-string", sel("durationMs: 78"), True),
    ("gte", sel("properties.statusCode|gte: 200"), True),
    ("lt", sel("properties.statusCode|lt: 200"), False),
    ("bool", sel("properties.isRbac: true"), True),
    ("null-missing-field", sel("properties.absent: null"), True),
    ("null-json-null", sel("properties.nothing: null"), True),
    ("null-present-field", sel("resultType: null"), False),
    ("exists-true", sel("callerIpAddress|exists: true"), True),
    ("exists-false", sel("callerIpAddress|exists: false"), False),
    ("neq", sel("resultType|neq: Failed"), True),
    ("cased-mismatch", sel("resultType|cased: success"), False),
    ("cased-match", sel("resultType|cased: Success"), True),
    ("fieldref", sel("properties.message|fieldref: operationName"), True),
    ("windash-expansion", sel("properties.message|windash|contains: '-roleAssignments'"), True),
    ("base64offset-no-match", sel("properties.message|base64offset|contains: secret"), False),
    ("list-element", sel("properties.tags: pci"), True),
    ("empty-list-text", sel("properties.empty: '[]'"), True),
    ("json-in-string",
     sel("properties.requestbody.properties.principalType: serviceprincipal"), True),
    ("object-as-text", sel("properties|contains: '\"pci\"'"), True),
    ("claim-key-with-dots",
     sel("identity.claims.http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn: "
         "mallory@contoso.example"),
     True),
    ("la-alias-caller", sel("Caller: mallory@contoso.example"), True),
    ("properties-fallback", sel("StatusCode: 201"), True),
    ("keyword", "  k:\n    - roleassignments/WRITE\n  condition: k", True),
    ("keyword-miss", "  k:\n    - virtualMachines\n  condition: k", False),
    ("and-not",
     "  a:\n    resultType: Success\n"
     "  b:\n    callerIpAddress: 203.0.113.45\n"
     "  condition: a and not b",
     False),
    ("or-parentheses",
     "  a:\n    resultType: Failed\n"
     "  b:\n    callerIpAddress: 1.1.1.1\n"
     "  c:\n    category: Administrative\n"
     "  condition: (a or b) or c",
     True),
    ("one-of-pattern",
     "  sel_a:\n    resultType: Failed\n"
     "  sel_b:\n    category: Administrative\n"
     "  condition: 1 of sel_*",
     True),
    ("all-of-pattern",
     "  sel_a:\n    resultType: Failed\n"
     "  sel_b:\n    category: Administrative\n"
     "  condition: all of sel_*",
     False),
    ("all-of-them",
     "  a:\n    resultType: Success\n  b:\n    category: Administrative\n  condition: all of them",
     True),
    ("list-of-maps-is-or", sel("- resultType: Failed\n    - category: administrative"), True),
    ("map-is-and", sel("resultType: Success\n    category: Write"), False),
    ("condition-list-is-or",
     "  a:\n    resultType: Failed\n  b:\n    resultType: Success\n  condition:\n    - a\n    - b",
     True),
]


@pytest.mark.parametrize(("detection", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_sigma_semantics(detection: str, expected: bool) -> None:
    assert matches(rule(detection), EVENT) is expected


def test_logsource_gates_the_rule() -> None:
    compiled = rule(sel("resultType: Success"), service="signinlogs")
    assert not matches(compiled, EVENT)


@pytest.mark.parametrize(("event", "service"), [
    ({"category": "Administrative"}, "activitylogs"),
    ({"category": {"value": "Administrative"}, "eventTimestamp": "x"}, "activitylogs"),
    ({"category": "SignInLogs"}, "signinlogs"),
    ({"category": "NonInteractiveUserSignInLogs"}, "signinlogs"),
    ({"category": "RoleManagement", "resourceId": "/tenants/t/providers/Microsoft.aadiam"},
     "auditlogs"),
    ({"category": "AuditEvent"}, "keyvault"),
    ({"category": "kube-audit-admin"}, "kubernetes"),
    ({"Type": "SigninLogs"}, "signinlogs"),
    ({"category": "FunctionAppLogs"}, None),
], ids=["activity", "rest", "signin", "noninteractive", "entra-audit-subcategory", "keyvault",
        "aks", "log-analytics", "other"])
def test_event_service(event: dict[str, Any], service: str | None) -> None:
    assert event_service(event) == service


def test_rest_shape_value_objects_match_as_their_value() -> None:
    rest = {"operationName": {"value": "Microsoft.Storage/storageAccounts/delete",
                              "localizedValue": "Delete Storage Account"},
            "category": {"value": "Administrative"}, "eventTimestamp": "2026-01-01T00:00:00Z"}
    compiled = rule("  s:\n    operationName: MICROSOFT.STORAGE/STORAGEACCOUNTS/DELETE\n"
                    "  condition: s")
    assert matches(compiled, rest)


def test_status_alias_reads_the_signin_result_and_failure_reason() -> None:
    view = EventView({"category": "SignInLogs", "resultType": "500121",
                      "properties": {"status": {"errorCode": 500121,
                                                "failureReason": "MFA denied by user"}}})
    assert view.values(compile_field("Status")) == ("Failure", "MFA denied by user")


@pytest.mark.parametrize(("detection", "reason"), [
    (sel("f|expand: '%Placeholder%'"), "placeholder"),
    ("  s:\n    f: x\n  condition: s and missing", "not a detection"),
    ("  s:\n    f: x\n  condition: 1 of nothing_*", "matches no detection"),
    (sel("f|nosuchmodifier: x"), "modifier"),
    (sel("f|re: '(unclosed'"), "invalid"),
], ids=["placeholder-without-value", "unknown-detection", "empty-selector", "unknown-modifier",
        "bad-regex"])
def test_rules_that_cannot_load_say_why(detection: str, reason: str) -> None:
    text = ("title: bad\nid: 5d0c5d2e-0000-4000-8000-000000000002\nlogsource:\n"
            f"  product: azure\n  service: activitylogs\ndetection:\n{detection}\n")
    ruleset = load_texts([("bad.yml", text)])
    assert not ruleset.rules
    assert not any(s.loaded for s in ruleset.report)
    assert any(reason.lower() in (s.reason or "").lower() for s in ruleset.report), ruleset.report


@pytest.mark.parametrize(("text", "reason"), [
    ("title: w\nlogsource:\n  product: windows\ndetection:\n  s:\n    a: b\n  condition: s\n",
     "not Azure"),
    ("title: w\nlogsource:\n  product: azure\n  service: nosuch\ndetection:\n  s:\n    a: b\n"
     "  condition: s\n", "not an Azure log"),
    ("title: [unclosed\n", "yaml"),
], ids=["other-product", "unknown-service", "not-yaml"])
def test_files_that_cannot_load_say_why(text: str, reason: str) -> None:
    ruleset = load_texts([("f.yml", text)])
    assert not ruleset.rules
    assert any(reason.lower() in (s.reason or "").lower() for s in ruleset.report), ruleset.report
