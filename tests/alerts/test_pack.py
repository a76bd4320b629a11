"""The built-in Azure pack: each rule fires on real-shaped events and stays quiet on others.

Fixtures: Panther's labelled Tests[].Log events (vendor tests, copied unmodified into
../shared/corpus/panther-labs_panther-analysis) where their rule means the same as ours, and
records shaped like docs/azure.md section 3.5 where Panther has none.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from auditseal.alerts.engine import Alert, AlertEngine, EngineConfig
from auditseal.alerts.fields import EventView
from tests.alerts.helpers import PANTHER, builtin, needs_corpus, panther_tests

PACK = builtin()
NSG_OPEN = "Azure Network Security Group Opened To The Internet"
AKS_ADMIN = "AKS Cluster-Admin Role Binding"
ENTRA_ROLE = "Entra ID Privileged Role Added"
TITLES = {rule.id: rule.title for rule in PACK.rules} | {c.id: c.title for c in PACK.correlations}


def fired_titles(event: dict[str, Any]) -> set[str]:
    view = EventView(event)
    return {rule.title for rule in PACK.rules if rule.generate and rule.matches(view)}


# (Panther rule file, our rule title, names of Panther tests whose label differs from ours)
PANTHER_CASES = [
    ("azure_activity_rules/azure_storage_immutability_policy_deleted.yml",
     "Azure Blob Immutability Policy Deleted Or Changed, Or Legal Hold Cleared", set()),
    ("azure_activity_rules/azure_storage_account_keys_listed.yml",
     "Azure Storage Account Keys Listed", set()),
    ("azure_activity_rules/azure_role_assignment_privileged_or_elevated.yml",
     "Azure Privileged Role Assigned", set()),
    # Ours also alerts on a changed diagnostic setting ("silencing the logs" includes edits).
    ("azure_activity_rules/azure_diagnostic_settings_deleted.yml",
     "Azure Diagnostic Setting Deleted Or Changed", {"Different Operation"}),
]


@pytest.mark.parametrize(("relative", "title", "differs"), PANTHER_CASES,
                         ids=[c[1] for c in PANTHER_CASES])
def test_pack_agrees_with_panther_labels(relative: str, title: str, differs: set[str]) -> None:
    needs_corpus(PANTHER)
    cases = panther_tests(relative)
    assert any(expected for _, expected, _ in cases)
    assert any(not expected for _, expected, _ in cases)
    for name, expected, event in cases:
        assert (title in fired_titles(event)) is (expected != (name in differs)), name


def test_nsg_panther_events_without_a_request_body_are_not_open_to_the_internet() -> None:
    needs_corpus(PANTHER)
    for name, _, event in panther_tests("azure_activity_rules/azure_nsg_deleted_or_modified.yml"):
        assert NSG_OPEN not in fired_titles(event), name


def _nsg_rule_write(source: str, access: str = "Allow", result: str = "Start") -> dict[str, Any]:
    body = {"properties": {"protocol": "Tcp", "sourcePortRange": "*",
                           "destinationPortRange": "3389",
                           "sourceAddressPrefix": source, "destinationAddressPrefix": "*",
                           "access": access, "priority": 100, "direction": "Inbound"}}
    return {
        "time": "2026-03-14T09:30:00.0000000Z",
        "resourceId": "/SUBSCRIPTIONS/00000000-1111-2222-3333-444444444444/RESOURCEGROUPS/RG/"
                      "PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/NSG-WEB/"
                      "SECURITYRULES/RDP",
        "operationName": "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE",
        "category": "Administrative", "resultType": result, "callerIpAddress": "203.0.113.45",
        "identity": {"claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":
                                "mallory@contoso.example"}},
        "properties": {"requestbody": orjson.dumps(body).decode(),
                       "eventCategory": "Administrative"},
    }


def _kube_audit(username: str, role: str, verb: str = "create") -> dict[str, Any]:
    log = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
           "verb": verb, "user": {"username": username, "groups": ["system:authenticated"]},
           "sourceIPs": ["203.0.113.45"],
           "objectRef": {"resource": "clusterrolebindings", "name": "pwn-admin",
                         "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
           "requestObject": {"kind": "ClusterRoleBinding",
                             "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                         "kind": "ClusterRole", "name": role},
                             "subjects": [{"kind": "User", "name": "mallory@contoso.example"}]},
           "responseStatus": {"code": 201}}
    return {"time": "2026-03-14T02:45:10.0000000Z",
            "resourceId": "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG-K8S/PROVIDERS/"
                          "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD",
            "category": "kube-audit-admin",
            "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
            "properties": {"pod": "kube-apiserver-1", "stream": "stdout",
                           "log": orjson.dumps(log).decode()}}


def _entra_role_added(role: str) -> dict[str, Any]:
    # docs/azure.md 3.5 "Entra ID audit (AuditLogs), diagnostic export"
    return {"time": "2026-03-14T02:20:11.0000000Z",
            "resourceId": "/tenants/11111111-2222-3333-4444-555555555555/providers/"
                          "Microsoft.aadiam",
            "operationName": "Add member to role", "category": "AuditLogs",
            "properties": {"category": "RoleManagement", "result": "success",
                           "initiatedBy": {"user": {"userPrincipalName": "alice@contoso.example"}},
                           "targetResources": [{"type": "User", "modifiedProperties": [
                               {"displayName": "Role.DisplayName", "oldValue": None,
                                "newValue": f'"{role}"'}]}]}}


SINGLE_CASES = [
    ("nsg-any-source", _nsg_rule_write("*"), NSG_OPEN, True),
    ("nsg-internet-tag", _nsg_rule_write("Internet"), NSG_OPEN, True),
    ("nsg-office-range", _nsg_rule_write("198.51.100.0/24"), NSG_OPEN, False),
    ("nsg-deny-any", _nsg_rule_write("*", access="Deny"), NSG_OPEN, False),
    ("nsg-failed", _nsg_rule_write("*", result="Failure"), NSG_OPEN, False),
    ("aks-cluster-admin", _kube_audit("mallory@contoso.example", "cluster-admin"), AKS_ADMIN, True),
    ("aks-view-role", _kube_audit("mallory@contoso.example", "view"), AKS_ADMIN, False),
    ("aks-system-user", _kube_audit("system:serviceaccount:kube-system:x", "cluster-admin"),
     AKS_ADMIN, False),
    ("entra-global-admin", _entra_role_added("Global Administrator"), ENTRA_ROLE, True),
    ("entra-reader", _entra_role_added("Directory Readers"), ENTRA_ROLE, False),
]


@pytest.mark.parametrize(("event", "title", "expected"), [c[1:] for c in SINGLE_CASES],
                         ids=[c[0] for c in SINGLE_CASES])
def test_single_event_rules(event: dict[str, Any], title: str, expected: bool) -> None:
    assert (title in fired_titles(event)) is expected


def _stream(events: list[dict[str, Any]], window_s: float = 0) -> list[Alert]:
    engine = AlertEngine(PACK, EngineConfig(window_s))
    alerts = engine.feed(enumerate(events))
    return alerts + engine.flush()


def _at(event: dict[str, Any], minute: float, **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(event)
    when = datetime(2026, 3, 14, 9, 0, tzinfo=UTC) + timedelta(minutes=minute)
    out["time"] = when.isoformat().replace("+00:00", "Z")
    for path, value in changes.items():
        node = out
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return out


DELETE = {"operationName": "MICROSOFT.COMPUTE/VIRTUALMACHINES/DELETE", "category": "Administrative",
          "resultType": "Success", "caller": "mallory@contoso.example",
          "resourceId": "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/VM"}


def test_mass_deletion_fires_on_ten_deletes_in_ten_minutes() -> None:
    alerts = _stream([_at(DELETE, i * 0.5) for i in range(12)])
    mass = [a for a in alerts if a.title == "Azure Mass Resource Deletion"]
    assert len(mass) == 1
    assert mass[0].indexes == tuple(range(10))
    assert mass[0].group == (("Caller", "mallory@contoso.example"),)


@pytest.mark.parametrize("events", [
    [_at(DELETE, i * 2) for i in range(12)],  # spread over 22 minutes
    [_at(DELETE, i * 0.5, caller=f"user{i}@contoso.example") for i in range(12)],  # 12 callers
    [_at(DELETE, i * 0.5, resultType="Start") for i in range(12)],  # not completed
], ids=["too-slow", "different-callers", "only-started"])
def test_mass_deletion_stays_quiet(events: list[dict[str, Any]]) -> None:
    assert not [a for a in _stream(events) if a.title == "Azure Mass Resource Deletion"]


KV_READ = {  # docs/azure.md 3.5, Key Vault AuditEvent
    "resourceId": "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG-SEC/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV",
    "operationName": "SecretGet", "category": "AuditEvent", "resultType": "Success",
    "identity": {"claim": {"oid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                           "upn": "mallory@contoso.example"}},
    "properties": {"httpStatusCode": 200}}


@pytest.mark.parametrize(("count", "spread_min", "status", "expected"), [
    (30, 1, 200, True), (20, 1, 200, False), (30, 5, 200, False), (30, 1, 403, False),
], ids=["spike", "below-threshold", "over-2.5-hours", "forbidden-reads"])
def test_key_vault_secret_read_spike(count: int, spread_min: float, status: int,
                                     expected: bool) -> None:
    events = [_at(KV_READ, i * spread_min, properties__httpStatusCode=status)
              for i in range(count)]
    titles = {a.title for a in _stream(events)}
    assert ("Azure Key Vault Secret Reads Spiking" in titles) is expected
    assert "Azure Key Vault Secret Read" not in titles  # a base rule: no alert of its own


SIGNIN = {  # docs/azure.md 3.5, Entra sign-in (diagnostic export)
    "operationName": "Sign-in activity", "category": "SignInLogs", "resultType": "50126",
    "callerIpAddress": "198.51.100.77",
    "properties": {"userPrincipalName": "alice@contoso.example", "ipAddress": "198.51.100.77",
                   "status": {"errorCode": 50126},
                   "location": {"city": "Amsterdam", "countryOrRegion": "NL"}}}


def test_failed_sign_in_burst_and_password_spray() -> None:
    burst = [_at(SIGNIN, i * 0.3) for i in range(10)]
    spray = [_at(SIGNIN, 5 + i * 0.3, properties__userPrincipalName=f"u{i}@contoso.example",
                 properties__ipAddress="203.0.113.9") for i in range(6)]
    titles = [a.title for a in _stream(burst + spray)]
    assert titles.count("Entra ID Failed Sign-In Burst") == 1
    assert titles.count("Entra ID Password Spray") == 1


def test_successful_sign_ins_are_not_a_burst_or_spray() -> None:
    events = [_at(SIGNIN, i * 0.1, resultType="0",
                  properties__userPrincipalName=f"u{i % 7}@contoso.example") for i in range(30)]
    titles = {a.title for a in _stream(events)}
    assert not titles & {"Entra ID Failed Sign-In Burst", "Entra ID Password Spray"}


def test_sign_in_from_a_new_country() -> None:
    ok = _at(SIGNIN, 0, resultType="0")
    events = [ok, _at(ok, 60), _at(ok, 120, properties__location={"countryOrRegion": "KP"}),
              _at(ok, 180, properties__userPrincipalName="bob@contoso.example")]
    alerts = [a for a in _stream(events) if a.kind == "new_value"]
    assert [(a.indexes, dict(a.group)["Location"]) for a in alerts] == [((2,), "kp")]


def test_suppression_window_per_rule_and_caller() -> None:
    needs_corpus(PANTHER)
    listed = next(e for n, x, e in panther_tests(
        "azure_activity_rules/azure_storage_account_keys_listed.yml") if x)
    events = [_at(listed, m) for m in (0, 1, 2, 30)]
    assert len(_stream(events, window_s=0)) == 4
    assert [a.indexes for a in _stream(events, window_s=600)] == [(0,), (3,)]
