"""SigmaHQ's Azure rules (../shared/corpus/sigmahq_sigma, copied unmodified from
github.com/SigmaHQ/sigma; SOURCES.md there names the commit): what loads, pinned, and a few
running on records of the shapes they are written for."""

from __future__ import annotations

from typing import Any

import pytest

from auditseal.alerts import __all__ as public_names
from auditseal.alerts.engine import AlertEngine, EngineConfig
from auditseal.alerts.sigma import RuleSet, load_rules
from tests.alerts.helpers import SIGMAHQ, needs_corpus


@pytest.fixture(scope="module")
def azure_rules() -> RuleSet:
    needs_corpus(SIGMAHQ)
    return load_rules([SIGMAHQ / "rules" / "cloud" / "azure"])


def test_every_sigmahq_azure_rule_loads(azure_rules: RuleSet) -> None:
    # 123 rules: activity_logs 35, audit_logs 44, signin_logs 18, identity_protection 19,
    # privileged_identity_management 7. Two name a field no Azure export carries.
    assert azure_rules.counts() == {"total": 123, "loaded": 123, "with_warnings": 2,
                                    "not_loaded": 0}
    warned = sorted(s.path.rsplit("/", 1)[-1] for s in azure_rules.report if s.warnings)
    assert warned == ["azure_app_end_user_consent.yml", "azure_app_end_user_consent_blocked.yml"]
    services = {rule.service for rule in azure_rules.rules}
    assert services == {"activitylogs", "auditlogs", "signinlogs", "riskdetection"}


def test_placeholder_rules_do_not_load_and_say_why() -> None:
    needs_corpus(SIGMAHQ)
    ruleset = load_rules([SIGMAHQ / "rules-placeholder" / "cloud" / "azure"])
    assert ruleset.counts() == {"total": 7, "loaded": 0, "with_warnings": 0, "not_loaded": 7}
    assert all("placeholder" in (s.reason or "") for s in ruleset.report)


def test_most_rules_are_indexed_by_a_gate_value(azure_rules: RuleSet) -> None:
    ungated = [rule.title for rule in azure_rules.rules if rule.gate is None]
    assert len(ungated) <= 10, ungated


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("activity-uppercase-rule-lowercase-event",
     {"category": "Administrative", "resultType": "Success",
      "operationName": "microsoft.network/networksecuritygroups/securityrules/write"},
     "Azure Network Security Configuration Modified or Deleted"),
    ("entra-audit-properties-target-resources",
     {"category": "AuditLogs", "operationName": "Add member to role",
      "resourceId": "/tenants/t/providers/Microsoft.aadiam",
      "properties": {"targetResources": [{"modifiedProperties": [
          {"displayName": "Role.DisplayName", "newValue": "\"Global Administrator\""}]}]}},
     "User Added to an Administrator's Azure AD Role"),
    ("signin-1-of-selection",
     {"category": "SignInLogs", "resultType": "50097",
      "resultDescription": "Device authentication is required"},
     "Azure Unusual Authentication Interruption"),
    ("risk-detection",
     {"category": "UserRiskEvents", "properties": {"riskEventType": "passwordSpray"}},
     "Password Spray Activity"),
]


@pytest.mark.parametrize(("event", "title"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sigmahq_rules_fire_on_azure_records(azure_rules: RuleSet, event: dict[str, Any],
                                              title: str) -> None:
    engine = AlertEngine(azure_rules, EngineConfig(0))
    assert title in {a.title for a in engine.process(0, event)}


def test_unrelated_record_fires_nothing(azure_rules: RuleSet) -> None:
    engine = AlertEngine(azure_rules, EngineConfig(0))
    event = {"category": "Administrative", "resultType": "Success",
             "operationName": "MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/READ"}
    assert engine.process(0, event) == []


def test_public_names_are_pinned() -> None:
    assert sorted(public_names) == [
        "Alert", "AlertEngine", "CompiledRule", "Dispatcher", "EngineConfig", "EventView",
        "FileSink", "LoadStatus", "LogSink", "RetryPolicy", "RuleSet", "Sink", "WebhookSink",
        "format_message", "load_rules", "load_texts", "run_history",
    ]
