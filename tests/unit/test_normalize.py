"""Tests for auditseal.ingest.normalize over the real Azure records of the shared corpus.

Corpus provenance is in /work/shared/corpus/SOURCES.md: DataDog/azure-log-forwarding-
orchestration forwarder/internal/logs/fixtures (commit b453a885cf9d5eeecff8b4ec7bdad3b450e9fd49,
law_logs.json from 23ca14ba), open-telemetry/opentelemetry-collector-contrib
pkg/translator/azurelogs/testdata/administrative/valid_1.json (f004dd36) and the Tests[].Log
events of panther-labs/panther-analysis rules (daa10c888566839e9918dfba1cd652743781e5fe).
Hand-made vectors and their provenance: tests/vectors/normalize/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.errors import IngestError
from auditseal.ingest.jsliteral import MISSING as _MISSING
from auditseal.ingest.jsliteral import read_js_literal as _lenient_json
from auditseal.ingest.normalize import NormalizedEvent, normalize_bytes, normalize_event

CORPUS = Path("/work/shared/corpus")
DATADOG = CORPUS / "datadog_azure-log-forwarding-orchestration"
FIXTURES = DATADOG / "forwarder/internal/logs/fixtures"
OTEL = CORPUS / "otel_collector_contrib/pkg/translator/azurelogs/testdata/administrative"
PANTHER = CORPUS / "panther-labs_panther-analysis"
VECTORS = Path(__file__).parents[1] / "vectors" / "normalize"

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not present at {CORPUS}")


def records_of(path: Path) -> list[bytes]:
    """One file's records as bytes: JSON lines, or the records of a {"records": [...]} file.

    A stand-in for the real splitter (written elsewhere): enough for these fixtures.
    """
    data = path.read_bytes()
    if re.match(rb'\s*\{\s*"records"\s*:', data):
        return [orjson.dumps(record) for record in orjson.loads(data)["records"]]
    return [line for line in data.splitlines() if line.strip()]


def normalized(path: Path) -> list[NormalizedEvent]:
    return [normalize_bytes(record) for record in records_of(path)]


# --- the corpus, file by file ----------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What every record of one corpus file must normalize to."""

    file: str
    count: int
    table: str
    caller: bool = True
    caller_ip: bool = False
    result: str | None = None
    tenant: str | None = None
    subscription: str | None = None


TENANT = "4d3bac44-0230-4732-9e70-cc00736f0a97"
SUB = "0b62a232-b8db-4380-9da6-640f7272ed6d"
AD = "activedirectory/"
EXPECTED = [
    Expect(AD + "sign_in_logs.json", 5, "SigninLogs", True, True, "Success", TENANT),
    Expect(
        AD + "non_interactive_user_sign_in_logs.json",
        14,
        "AADNonInteractiveUserSignInLogs",
        True,
        True,
        "Success",
        TENANT,
    ),
    Expect(
        AD + "service_principal_sign_in_logs.json",
        25,
        "AADServicePrincipalSignInLogs",
        True,
        True,
        "Success",
        TENANT,
    ),
    Expect(AD + "managed_identity_sign_in_logs.json", 24, "AADManagedIdentitySignInLogs", True),
    Expect(AD + "audit_logs.json", 22, "AuditLogs", True, False, None, TENANT),
    Expect(AD + "ms_graph_activity_logs.json", 25, "MicrosoftGraphActivityLogs", True, True),
    Expect(AD + "risky_users_logs.json", 1, "AADRiskyUsers", True, False, None, TENANT),
    Expect(AD + "user_risk_event_logs.json", 1, "AADUserRiskEvents", True, True, None, TENANT),
    Expect("aks_logs.json", 21, "AKSAudit", True, True, None, None, SUB),
    Expect("function_app_logs.json", 20, "FunctionAppLogs", False, False, None, None, SUB),
    Expect(
        "function_app_logs_with_usa_short_timestamp.json",
        5,
        "FunctionAppLogs",
        False,
        False,
        None,
        None,
        SUB,
    ),
    Expect(
        "networksecuritygroupflowevent_logs.json",
        2,
        "AzureDiagnostics",
        False,
        False,
        None,
        None,
        SUB,
    ),
    Expect("workflowruntime_logs.json", 7, "LogicAppWorkflowRuntime", False),
]


@needs_corpus
@pytest.mark.parametrize("expect", EXPECTED, ids=[e.file for e in EXPECTED])
def test_corpus_file(expect: Expect) -> None:
    events = normalized(FIXTURES / expect.file)
    assert len(events) == expect.count
    for event in events:
        assert event.table == expect.table
        assert event.time is not None
        assert event.time.tzinfo is UTC
        assert event.operation
        assert event.category
        assert event.resource_id
        assert (event.caller is not None) == expect.caller, event
        if expect.caller_ip:
            assert event.caller_ip is not None
        if expect.result:
            assert event.result == expect.result
        if expect.tenant:
            assert event.tenant_id == expect.tenant
        if expect.subscription:
            assert event.subscription_id == expect.subscription


@needs_corpus
def test_corpus_record_count() -> None:
    """Every JSON file of the two JSON folders is covered by a test below or above."""
    files = sorted(DATADOG.rglob("*.json")) + sorted(OTEL.rglob("*.json"))
    assert len(files) == 15
    assert sum(len(records_of(f)) for f in files) == 175


@needs_corpus
def test_sign_in_caller_is_the_upn() -> None:
    events = normalized(FIXTURES / AD / "sign_in_logs.json")
    # properties.userPrincipalName, not the display name in "identity" ("Harry Potter")
    assert {e.caller for e in events} == {
        "harry.potter@hogwarts.com",
        "harry-potter-hogwarts.onmicrosoft.com",
    }
    assert all(e.level == "Informational" for e in events)  # "Level": 4 (a number)


@needs_corpus
def test_aks_fields_come_from_the_embedded_log_json() -> None:
    first, second = normalized(FIXTURES / "aks_logs.json")[:2]
    assert first.caller == "readinessChecker"
    assert first.operation == "get /readyz"
    assert first.caller_ip == "10.200.0.38"
    assert first.result == "Success"  # responseStatus.code 200
    assert second.caller == "aksService"
    assert second.operation == "update leases kube-system/kube-controller-manager"
    assert second.time == datetime(2024, 11, 15, 21, 0, 0, 613024, tzinfo=UTC)


@needs_corpus
@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("risky_users_logs.json", datetime(2025, 4, 14, 11, 35, 37, tzinfo=UTC)),
        ("user_risk_event_logs.json", datetime(2025, 4, 14, 11, 17, 5, tzinfo=UTC)),
    ],
    ids=["risky-users-4/14/2025-11:35:37-AM", "risk-event-4/14/2025-11:17:05-AM"],
)
def test_us_locale_time_parses_exactly(file: str, expected: datetime) -> None:
    (event,) = normalized(FIXTURES / AD / file)
    assert event.time == expected
    assert event.caller == "draco.malfoy@hogwarts.com"
    assert event.level == "Informational"  # "Level": "Information" (a string)


@needs_corpus
def test_usa_short_timestamp_without_zone() -> None:
    events = normalized(FIXTURES / "function_app_logs_with_usa_short_timestamp.json")
    assert {e.time for e in events} == {datetime(2025, 5, 28, 1, 15, 14, tzinfo=UTC)}
    assert all(e.problems == () for e in events)


@needs_corpus
def test_single_quoted_pseudo_json_records_are_read_and_flagged() -> None:
    events = normalized(FIXTURES / "function_app_logs.json")
    assert all(e.level == "Informational" for e in events)
    assert all(any("not valid JSON" in p for p in e.problems) for e in events)


@needs_corpus
def test_graph_operation_is_method_and_uri() -> None:
    event = normalized(FIXTURES / AD / "ms_graph_activity_logs.json")[0]
    assert event.operation == "POST https://graph.microsoft.com/v1.0/$batch"
    assert event.caller == "5a807f24-c9de-44ee-a3a7-329e88a00ffc"  # app-only call: the app id
    assert event.result == "Success"
    assert (
        event.resource_id
        == "/TENANTS/4D3BAC44-0230-4732-9E70-CC00736F0A97/PROVIDERS/MICROSOFT.AADIAM"
    )


@needs_corpus
def test_log_analytics_syslog_rows() -> None:
    path = DATADOG / "_index_version_23ca14ba/forwarder/internal/logs/fixtures/law_logs.json"
    events = normalized(path)
    assert [e.table for e in events] == ["Syslog", "Syslog"]
    assert events[0].time == datetime(2026, 2, 24, 10, 59, 28, 289831, tzinfo=UTC)
    assert events[0].operation == "sshd"
    assert events[0].level == "Error"
    assert events[0].subscription_id == SUB
    assert events[0].tenant_id is None  # LA TenantId is the workspace, not the Entra tenant


@needs_corpus
def test_otel_administrative_record() -> None:
    (event,) = normalized(OTEL / "valid_1.json")
    assert event.table == "AzureActivity"
    assert event.caller == "user@example.com"
    assert event.result == "Started"
    assert event.tenant_id == "22222222-2222-2222-2222-222222222222"


# --- panther Tests[].Log events (YAML read without a YAML library) ---------------------------


def panther_logs(text: str) -> Iterator[dict[str, Any]]:
    """The JSON flow mappings under ``Log:`` keys, cut out by brace matching.

    PyYAML is not in the venv; these Log values are JSON written as YAML flow mappings, which
    may carry trailing commas (allowed in YAML, not JSON).
    """
    for match in re.finditer(r"^\s*Log:\s*\n", text, re.MULTILINE):
        start = text.index("{", match.end())
        depth, in_string, escaped = 0, False, False
        for pos in range(start, len(text)):
            char = text[pos]
            if in_string:
                escaped = not escaped and char == "\\"
                in_string = escaped or char != '"'
            elif char == '"':
                in_string = True
            elif char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth == 0:
                    block = re.sub(r",(\s*[}\]])", r"\1", text[start : pos + 1])
                    yield orjson.loads(block)
                    break


@needs_corpus
def test_panther_test_events() -> None:
    events = [
        normalize_event(log)
        for path in sorted(PANTHER.rglob("*.yml"))
        for log in panther_logs(path.read_text(encoding="utf-8"))
    ]
    assert len(events) >= 255
    assert all(e.time is not None and e.operation for e in events)
    assert all(e.problems == () for e in events)
    tables = {e.table for e in events}
    assert tables == {
        "AzureActivity",
        "StorageBlobLogs",
        "AuditLogs",
        "SigninLogs",
        "AADServicePrincipalSignInLogs",
        "AADNonInteractiveUserSignInLogs",
    }
    storage = [e for e in events if e.table == "StorageBlobLogs"]
    assert all(e.caller_ip and ":" not in e.caller_ip for e in storage)  # port stripped
    entra = [e for e in events if e.table in ("SigninLogs", "AuditLogs")]
    assert all(e.caller for e in entra)


# --- one Activity Log event, three shapes ----------------------------------------------------

SHAPES = orjson.loads((VECTORS / "activity_three_shapes.json").read_bytes())


@pytest.mark.parametrize("shape", ["diagnostic", "rest", "analytics"])
def test_activity_event_in_three_shapes(shape: str) -> None:
    event = normalize_event(SHAPES[shape])
    assert event.table == "AzureActivity"
    assert event.time == datetime(2025, 4, 15, 10, 16, 32, 987344, tzinfo=UTC)
    assert event.category == "Administrative"
    assert event.operation is not None
    assert event.operation.lower() == "microsoft.insights/diagnosticsettings/write"
    assert event.caller == "user@example.com"
    assert event.caller_ip == "203.0.113.10"
    assert event.result == "Started"  # "Start" (diagnostic, LA) and "Started" (REST)
    assert event.subscription_id == "11111111-1111-1111-1111-111111111111"
    assert event.correlation_id == "aaaaaaaa-bbbb-cccc-dddd-111111111111"
    assert event.level == "Informational"
    assert event.resource_id is not None
    assert event.resource_id.lower().endswith("/diagnosticsettings/example-collect-sample-logs")
    assert event.problems == ()
    expected_tenant = None if shape == "analytics" else "22222222-2222-2222-2222-222222222222"
    assert event.tenant_id == expected_tenant


# --- other resource logs ---------------------------------------------------------------------

RESOURCE = orjson.loads((VECTORS / "resource_logs.json").read_bytes())


def test_key_vault_audit_event() -> None:
    event = normalize_event(RESOURCE["keyvault_audit_event"])
    assert (event.table, event.operation, event.result) == (
        "AzureDiagnostics",
        "SecretGet",
        "Success",
    )
    assert event.caller == "mallory@contoso.example"
    assert event.caller_ip == "203.0.113.45"
    assert event.subscription_id == "00000000-1111-2222-3333-444444444444"


def test_sql_audit_event() -> None:
    event = normalize_event(RESOURCE["sql_security_audit_event"])
    assert (event.table, event.operation, event.result) == (
        "AzureDiagnostics",
        "BATCH COMPLETED",
        "Success",
    )
    assert (event.caller, event.caller_ip) == ("dba_admin", "203.0.113.45")


def test_storage_blob_write_with_ipv6_and_port() -> None:
    event = normalize_event(RESOURCE["storage_blob_write"])
    assert (event.table, event.operation, event.result) == ("StorageBlobLogs", "PutBlob", "Success")
    assert event.caller == "mallory@contoso.example"
    assert event.caller_ip == "2001:db8::7"


@pytest.mark.parametrize(
    ("resource_marker", "table"),
    [
        ("blobServices", "StorageBlobLogs"),
        ("fileServices", "StorageFileLogs"),
        ("queueServices", "StorageQueueLogs"),
        ("tableServices", "StorageTableLogs"),
    ],
)
def test_storage_table_follows_the_service(resource_marker: str, table: str) -> None:
    record = {
        "category": "StorageDelete",
        "resourceId": f"/subscriptions/x/providers/Microsoft.Storage/storageAccounts/a/"
        f"{resource_marker}/default",
    }
    assert normalize_event(record).table == table


def test_aks_audit_admin_with_object_ref_and_subresource() -> None:
    log = {
        "verb": "create",
        "user": {"username": "alice@contoso.example"},
        "sourceIPs": ["198.51.100.7"],
        "objectRef": {
            "resource": "pods",
            "subresource": "exec",
            "namespace": "kube-system",
            "name": "p1",
        },
        "responseStatus": {"code": 403},
    }
    record = {
        "category": "kube-audit-admin",
        "time": "2025-01-01T00:00:00Z",
        "properties": {"log": orjson.dumps(log).decode()},
    }
    event = normalize_event(record)
    assert event.table == "AKSAuditAdmin"
    assert event.operation == "create pods/exec kube-system/p1"
    assert (event.caller, event.caller_ip, event.result) == (
        "alice@contoso.example",
        "198.51.100.7",
        "Failure",
    )


def test_aks_log_that_is_not_json_is_a_problem() -> None:
    record = {
        "category": "kube-audit",
        "time": "2025-01-01T00:00:00Z",
        "properties": {"log": "{truncated"},
    }
    event = normalize_event(record)
    assert event.table == "AKSAudit"
    assert event.caller is None
    assert "properties.log is not valid JSON" in event.problems


# --- levels, results, casing -----------------------------------------------------------------

LEVELS = [
    ("int-4", 4, "Informational"),
    ("string-4", "4", "Informational"),
    ("int-3", 3, "Warning"),
    ("int-2", 2, "Error"),
    ("int-1", 1, "Critical"),
    ("int-5", 5, "Verbose"),
    ("Information", "Information", "Informational"),
    ("Informational", "Informational", "Informational"),
    ("warning-lower", "warning", "Warning"),
    ("ERROR-upper", "ERROR", "Error"),
    ("syslog-err", "err", "Error"),
    ("syslog-crit", "crit", "Critical"),
    ("unknown-kept", "Chatty", "Chatty"),
    ("unknown-number-kept", 9, "9"),
]


@pytest.mark.parametrize(("value", "expected"), [x[1:] for x in LEVELS], ids=[x[0] for x in LEVELS])
@pytest.mark.parametrize("key", ["Level", "level"])
def test_level_mapping(key: str, value: object, expected: str) -> None:
    assert normalize_event({"category": "AuditEvent", key: value}).level == expected


RESULTS = [
    ("activity-start", {"category": "Administrative", "resultType": "Start"}, "Started"),
    ("activity-success", {"category": "Administrative", "resultType": "Success"}, "Success"),
    ("activity-failure", {"category": "Administrative", "resultType": "Failure"}, "Failure"),
    ("activity-accept", {"category": "Administrative", "resultType": "Accept"}, "Accepted"),
    ("activity-other-kept", {"category": "Administrative", "resultType": "Active"}, "Active"),
    ("rest-failed", {"eventTimestamp": "2025-01-01", "status": {"value": "Failed"}}, "Failure"),
    ("signin-0", {"category": "SignInLogs", "resultType": "0"}, "Success"),
    ("signin-50126", {"category": "SignInLogs", "resultType": "50126"}, "Failure"),
    ("signin-int-code", {"category": "SignInLogs", "resultType": 50053}, "Failure"),
    ("audit-success", {"category": "AuditLogs", "properties": {"result": "success"}}, "Success"),
    ("audit-failure", {"category": "AuditLogs", "properties": {"result": "failure"}}, "Failure"),
    (
        "storage-403",
        {"category": "StorageRead", "statusCode": 403, "statusText": "AuthorizationFailure"},
        "Failure",
    ),
    ("storage-text-only", {"category": "StorageRead", "statusText": "Success"}, "Success"),
    (
        "sql-false",
        {"category": "SQLSecurityAuditEvents", "properties": {"succeeded": "false"}},
        "Failure",
    ),
    (
        "sql-bool",
        {"category": "SQLSecurityAuditEvents", "properties": {"succeeded": True}},
        "Success",
    ),
    (
        "la-activity",
        {"Type": "AzureActivity", "TimeGenerated": "2025-01-01", "ActivityStatusValue": "Failure"},
        "Failure",
    ),
    (
        "la-signin",
        {"Type": "SigninLogs", "TimeGenerated": "2025-01-01", "ResultType": "0"},
        "Success",
    ),
]


@pytest.mark.parametrize(
    ("record", "expected"), [r[1:] for r in RESULTS], ids=[r[0] for r in RESULTS]
)
def test_result_spellings(record: dict[str, object], expected: str) -> None:
    assert normalize_event(record).result == expected


CASINGS = [
    (
        "camel",
        {
            "operationName": "X/Y/WRITE",
            "category": "Administrative",
            "callerIpAddress": "192.0.2.1",
        },
    ),
    (
        "pascal",
        {
            "OperationName": "X/Y/WRITE",
            "Category": "Administrative",
            "CallerIpAddress": "192.0.2.1",
        },
    ),
    (
        "lower",
        {
            "operationname": "X/Y/WRITE",
            "category": "administrative",
            "calleripaddress": "192.0.2.1",
        },
    ),
    (
        "upper",
        {
            "OPERATIONNAME": "X/Y/WRITE",
            "CATEGORY": "ADMINISTRATIVE",
            "CALLERIPADDRESS": "192.0.2.1",
        },
    ),
]


@pytest.mark.parametrize("record", [c[1] for c in CASINGS], ids=[c[0] for c in CASINGS])
def test_field_names_match_in_any_case(record: dict[str, object]) -> None:
    event = normalize_event(record)
    assert (event.table, event.operation, event.caller_ip) == (
        "AzureActivity",
        "X/Y/WRITE",
        "192.0.2.1",
    )


# --- malformed input -------------------------------------------------------------------------

NOT_OBJECTS = [
    ("array", b"[1, 2]"),
    ("string", b'"time"'),
    ("number", b"42"),
    ("null", b"null"),
    ("empty", b""),
    ("truncated", b'{"time": "2025-01-01'),
    ("garbage", b"\x00\xff not json"),
    ("envelope", b'{"records": [{"time": "2025-01-01T00:00:00Z"}]}'),
]


@pytest.mark.parametrize("data", [n[1] for n in NOT_OBJECTS], ids=[n[0] for n in NOT_OBJECTS])
def test_normalize_bytes_rejects_non_objects(data: bytes) -> None:
    with pytest.raises(IngestError):
        normalize_bytes(data)


def test_normalize_bytes_rejects_str() -> None:
    with pytest.raises(IngestError, match="must be bytes"):
        normalize_bytes("{}")  # type: ignore[arg-type]


def test_normalize_bytes_accepts_bom_and_crlf() -> None:
    event = normalize_bytes(
        b'\xef\xbb\xbf{"category": "AuditEvent", "time": "2025-01-01T00:00:00Z"}\r\n'
    )
    assert event.table == "AzureDiagnostics"
    assert event.time == datetime(2025, 1, 1, tzinfo=UTC)


def test_javascript_literal_record_is_read_and_flagged() -> None:
    data = (
        b'{ "time": "2024-11-11T18:59:51Z", "category": "FunctionAppLogs",'
        b" \"properties\": {'appName':'x','level':'Warning','levelId':3}}"
    )
    event = normalize_bytes(data)
    assert (event.table, event.time) == (
        "FunctionAppLogs",
        datetime(2024, 11, 11, 18, 59, 51, tzinfo=UTC),
    )
    assert event.level == "Warning"  # from properties.level: no top-level level here
    assert event.problems == ("record is not valid JSON; read it as a JavaScript object literal",)


def test_javascript_literal_in_a_string_field_is_read_and_flagged() -> None:
    record = {"category": "FunctionAppLogs", "properties": "{'level':'Error','levelId':4}"}
    event = normalize_event(record)
    assert event.level == "Error"
    assert event.problems == ("properties is not valid JSON; read it leniently",)


LITERALS = [
    ("single-quotes", "{'a':'b'}", {"a": "b"}),
    ("bare-keys", "{a:1,b_2:null}", {"a": 1, "b_2": None}),
    ("escaped-quote", "{'a':'it\\'s'}", {"a": "it's"}),
    ("double-quote-inside", "{'a':'say \"hi\"'}", {"a": 'say "hi"'}),
    ("js-escapes", "{'a':'x\\ny\\u0041\\x42'}", {"a": "x\nyAB"}),
    ("trailing-commas", "{'l':[1,2,],'m':{},}", {"l": [1, 2], "m": {}}),
    ("numbers", "{'i':-2,'f':2.5e1}", {"i": -2, "f": 25.0}),
    ("constants", "{'t':true,'f':false,'n':null}", {"t": True, "f": False, "n": None}),
    ("nested", "{'a':{'b':['c',{'d':1}]}}", {"a": {"b": ["c", {"d": 1}]}}),
]


@pytest.mark.parametrize(
    ("text", "expected"), [x[1:] for x in LITERALS], ids=[x[0] for x in LITERALS]
)
def test_javascript_literal_reader(text: str, expected: object) -> None:
    assert _lenient_json(text) == expected


BAD_LITERALS = [
    ("unterminated-string", "{'a':'b}"),
    ("unbalanced", "{'a':1"),
    ("stray-character", "{'a':1}#"),
    ("function-call", "{'a':f(1)}"),
    ("missing-colon", "{'a' 1}"),
]


@pytest.mark.parametrize("text", [x[1] for x in BAD_LITERALS], ids=[x[0] for x in BAD_LITERALS])
def test_javascript_literal_reader_rejects(text: str) -> None:
    assert _lenient_json(text) is _MISSING


WEIRD = [
    ("time-list", {"category": "AuditEvent", "time": ["2025"]}, "time not parseable"),
    ("time-garbage", {"category": "AuditEvent", "time": "soon"}, "time not parseable: 'soon'"),
    (
        "operation-object",
        {"category": "AuditEvent", "operationName": {"x": 1}},
        "operation: expected text",
    ),
    (
        "caller-ip-not-ip",
        {"category": "AuditEvent", "callerIpAddress": "<Redacted>"},
        "not an IP address",
    ),
    ("caller-ip-bool", {"category": "AuditEvent", "callerIpAddress": True}, "expected text"),
    ("level-list", {"category": "AuditEvent", "Level": [4]}, "level: expected text"),
    ("subscription-not-guid", {"category": "AuditEvent", "subscriptionId": "abc"}, "not a GUID"),
    ("category-number", {"category": 7}, ""),
    ("envelope", {"records": []}, "envelope"),
]


@pytest.mark.parametrize(("record", "problem"), [w[1:] for w in WEIRD], ids=[w[0] for w in WEIRD])
def test_weird_field_types_are_problems_not_crashes(record: dict[str, Any], problem: str) -> None:
    event = normalize_event(record)
    assert any(problem in p for p in event.problems) or not problem
    assert event.time is None or isinstance(event.time, datetime)


def test_normalize_event_on_non_mapping_does_not_raise() -> None:
    event = normalize_event([1, 2])  # type: ignore[arg-type]
    assert event.table == "AzureEvent"
    assert event.problems == ("event is a array",)


def test_unknown_record_falls_back() -> None:
    assert normalize_event({}) == NormalizedEvent(table="AzureEvent")


FIELD_NAMES = st.sampled_from(
    [
        "time",
        "Level",
        "level",
        "category",
        "operationName",
        "resourceId",
        "callerIpAddress",
        "identity",
        "claims",
        "properties",
        "log",
        "resultType",
        "status",
        "value",
        "tenantId",
        "TimeGenerated",
        "Type",
        "_ResourceId",
        "verb",
        "objectRef",
        "user",
        "username",
        "sourceIPs",
        "initiatedBy",
        "claim",
        "requester",
        "records",
        "eventTimestamp",
    ]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["kube-audit", "SignInLogs", "{", "{'a':1}", '{"verb":"get"}', "4", "[1]"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(FIELD_NAMES, children, max_size=6)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=10))
def test_never_raises_on_any_json_object(record: dict[str, Any]) -> None:
    event = normalize_event(record)
    assert isinstance(event.table, str)
    if list(record) == ["records"] and isinstance(record["records"], list):
        with pytest.raises(IngestError, match="envelope"):
            normalize_bytes(orjson.dumps(record))
    else:
        assert normalize_bytes(orjson.dumps(record)) == event


def test_envelope_bytes_are_rejected_with_a_reason() -> None:
    with pytest.raises(IngestError, match="split it into records first"):
        normalize_bytes(b'{"records": []}')
