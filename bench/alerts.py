"""Benchmark: streaming alert evaluation, built-in pack + SigmaHQ Azure rules, per event.

Workload: a mix shaped like an Azure tenant's audit stream: 70 % Activity Log records from
``bench.data`` (1-5 KB, the operations include role assignments, diagnostic settings, key
listings and NSG writes, so gates do hit), 15 % Entra sign-ins (a fifth of them failed
credentials), 10 % Key Vault ``SecretGet`` and 5 % Entra audit records, in that order of
index. Every record goes through ``AlertEngine.process(index, bytes)`` exactly as the
service calls it: JSON decode, log classification, gate lookups, rule evaluation,
correlations, suppression. Beside it, on the same records: ``orjson.loads`` alone (the floor
any evaluator pays) and the same engine with gates disabled (every rule of the record's log
evaluated), to show what indexing buys. Goal (issue 4): <= 20 us per event.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from auditseal.alerts.engine import AlertEngine, EngineConfig
from auditseal.alerts.sigma import RuleSet, load_rules
from bench.data import Profile, Result, build_records, print_table

SIGMAHQ_AZURE = Path("/work/shared/corpus/sigmahq_sigma/rules/cloud/azure")
GOAL_US = 20.0

_SIGNIN: dict[str, Any] = {
    "time": "2026-03-14T02:14:33.1234567Z",
    "resourceId": "/tenants/11111111-2222-3333-4444-555555555555/providers/Microsoft.aadiam",
    "operationName": "Sign-in activity", "category": "SignInLogs", "resultType": "0",
    "callerIpAddress": "198.51.100.77", "Level": "4", "location": "NL",
    "properties": {"userPrincipalName": "alice@contoso.example", "ipAddress": "198.51.100.77",
                   "appDisplayName": "Azure Portal", "status": {"errorCode": 0},
                   "clientAppUsed": "Browser", "userAgent": "Mozilla/5.0",
                   "deviceDetail": {"deviceId": "", "operatingSystem": "Linux"},
                   "location": {"city": "Amsterdam", "countryOrRegion": "NL"},
                   "conditionalAccessStatus": "notApplied",
                   "authenticationRequirement": "singleFactorAuthentication",
                   "riskState": "none", "isInteractive": True}}
_KEYVAULT: dict[str, Any] = {
    "time": "2026-03-14T02:31:44.9876543Z",
    "resourceId": "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG-SEC/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV",
    "operationName": "SecretGet", "category": "AuditEvent", "resultType": "Success",
    "identity": {"claim": {"oid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                           "upn": "app@contoso.example"}},
    "properties": {"id": "https://kv.vault.azure.net/secrets/db/1", "httpStatusCode": 200}}
_AUDIT: dict[str, Any] = {
    "time": "2026-03-14T02:20:11.0000000Z",
    "resourceId": "/tenants/11111111-2222-3333-4444-555555555555/providers/Microsoft.aadiam",
    "operationName": "Update user", "category": "AuditLogs",
    "properties": {"category": "UserManagement", "result": "success",
                   "activityDisplayName": "Update user", "loggedByService": "Core Directory",
                   "initiatedBy": {"user": {"userPrincipalName": "alice@contoso.example"}},
                   "targetResources": [{"type": "User", "modifiedProperties": []}]}}


def workload(count: int) -> list[bytes]:
    """``count`` records in the mix described above, deterministic."""
    activity = build_records(max(1, count * 7 // 10), distinct=min(count, 5_000))
    out: list[bytes] = []
    a = 0
    for i in range(count):
        slot = i % 20
        if slot < 14:
            out.append(activity[a % len(activity)])
            a += 1
            continue
        template = _SIGNIN if slot < 17 else _KEYVAULT if slot < 19 else _AUDIT
        record = copy.deepcopy(template)
        record["correlationId"] = f"{i:032x}"
        if template is _SIGNIN:
            record["properties"]["userPrincipalName"] = f"user{i % 500}@contoso.example"
            if i % 5 == 0:
                record["resultType"] = "50126"
        out.append(orjson.dumps(record))
    return out


def _time_per_event(records: list[bytes], step: Callable[[int, bytes], object]) -> float:
    started = time.perf_counter()
    for index, record in enumerate(records):
        step(index, record)
    return (time.perf_counter() - started) / len(records) * 1e6


def _ungated(ruleset: RuleSet) -> RuleSet:
    from dataclasses import replace  # noqa: PLC0415

    return RuleSet([replace(rule, gate=None) for rule in ruleset.rules], ruleset.correlations,
                   ruleset.report)


def run(profile: Profile) -> list[Result]:
    """Measure and print the table; return the summary rows."""
    count = profile.append_events
    ruleset = load_rules([SIGMAHQ_AZURE] if SIGMAHQ_AZURE.exists() else [], builtin=True)
    records = workload(count)
    engine = AlertEngine(ruleset, EngineConfig())
    _time_per_event(records[:2000], AlertEngine(ruleset).process)  # warm caches
    ours = _time_per_event(records, engine.process)
    decode = _time_per_event(records, lambda _i, r: orjson.loads(r))
    naive_engine = AlertEngine(_ungated(ruleset), EngineConfig())
    naive = _time_per_event(records, naive_engine.process)
    stats = engine.stats
    counts = ruleset.counts()
    print_table(
        f"6. Streaming alert evaluation ({count:,} events; {len(ruleset.rules)} rules + "
        f"{len(ruleset.correlations)} correlations: built-in pack and SigmaHQ Azure)",
        ["measure", "us/event", "note"],
        [
            ("engine.process (indexed by gate values)", f"{ours:.2f}",
             f"{stats.evaluated / max(stats.records, 1):.1f} rules evaluated per event, "
             f"{stats.fired:,} alerts, {stats.suppressed:,} suppressed"),
            ("orjson.loads alone", f"{decode:.2f}", "the floor every evaluator pays"),
            ("engine.process, no gates", f"{naive:.2f}",
             f"{naive_engine.stats.evaluated / max(naive_engine.stats.records, 1):.1f} rules "
             "evaluated per event"),
            ("rules loaded", str(counts["loaded"]), f"of {counts['total']}"),
        ],
    )
    return [
        Result("alerts: streaming eval per event", ours, GOAL_US, "us", "<= 20 us",
               ours <= GOAL_US, "goal"),
        Result("alerts: same without gate index", naive, ours, "us", "-", None, "indexed"),
    ]
