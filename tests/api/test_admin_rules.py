"""Alert rules over HTTP: list, upload (validated by the engine's loader), disable, enable.

Each test runs its own service on 127.0.0.1 (uvicorn); its service counts the app's requests
to rebuild the alert engine (``reload_rules``), and ``engine_of`` builds the engine exactly
as the follower process does from the log's files. The last test checks an uploaded rule
firing end to end once the follower builds its engine with ``alert_engine``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import orjson
import pytest

from auditseal.api.rule_catalog import DISABLED_FILE, RULES_DIR
from tests.api.conftest import Api, RecordingService, admin_records, engine_of, serve_log

CUSTOM_ID = "5f1f0b6e-6c2a-4f5e-9a51-7d0c1a2b3c4d"
KEYS_LISTED = "30c69454-6352-4071-8be5-ba5db37e5214"  # a built-in rule
YAML = {"Content-Type": "application/yaml"}


def rule_yaml(rule_id: str = CUSTOM_ID, operation: str = "MICROSOFT.KEYVAULT/VAULTS/DELETE",
              title: str = "Key vault deleted (custom)", level: str = "high") -> bytes:
    return f"""title: {title}
id: {rule_id}
status: experimental
logsource:
  product: azure
  service: activitylogs
detection:
  selection:
    operationName: {operation}
  condition: selection
level: {level}
""".encode()


def vault_deleted() -> bytes:
    return orjson.dumps({
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "category": "Administrative", "resultType": "Success",
        "operationName": "MICROSOFT.KEYVAULT/VAULTS/DELETE",
        "resourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/"
                      "VAULTS/KV1", "identity": {"claims": {"upn": "mallory@contoso.com"}},
        "callerIpAddress": "203.0.113.9", "level": "Informational",
    })


@pytest.fixture
def server(make_server: Callable[..., AbstractContextManager[Api]]) -> Iterator[Api]:
    with make_server(service_class=RecordingService) as running:
        yield running


def reloads(api: Api) -> int:
    assert isinstance(api.service, RecordingService)
    return api.service.reloads


def active(api: Api) -> set[str]:
    """The ids of the rules the follower's engine raises alerts for."""
    return {r.id for r in engine_of(api).rules.rules if r.generate}


def by_id(listing: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {item["id"]: item for item in listing}


def test_listing_shows_each_rule_with_source_and_state(server: Api) -> None:
    with server.client("reader") as reader:
        answer = reader.get("/v1/rules")
    with server.client("ingest") as ingest:
        assert ingest.get("/v1/rules").status_code == 403
    assert answer.status_code == 200
    rules = by_id(answer.json()["rules"])
    assert rules[KEYS_LISTED] == {
        "id": KEYS_LISTED, "title": "Azure Storage Account Keys Listed", "level": "medium",
        "kind": "rule", "source": "built-in", "file": "azure_storage_account_keys_listed.yml",
        "enabled": True, "warnings": []}
    assert {item["kind"] for item in rules.values()} == {"rule", "correlation"}
    assert answer.json()["not_loaded"] == []
    assert KEYS_LISTED in active(server)
    assert engine_of(server).config.suppress_window_s == 600.0


def test_upload_stores_validates_applies_and_seals(server: Api) -> None:
    start = server.service.writer.size
    with server.client("admin", **YAML) as admin:
        answer = admin.post("/v1/rules", content=rule_yaml())
        listing = by_id(admin.get("/v1/rules").json()["rules"])
    with server.client("auditor", **YAML) as auditor:
        assert auditor.post("/v1/rules", content=rule_yaml()).status_code == 403
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["file"] == f"{CUSTOM_ID}.yml"
    assert body["replaced"] is False
    assert body["applied"] is True
    assert [r["id"] for r in body["rules"]] == [CUSTOM_ID]
    assert listing[CUSTOM_ID]["source"] == "custom"
    assert listing[CUSTOM_ID]["level"] == "high"
    assert listing[CUSTOM_ID]["enabled"] is True
    assert (server.log.state / RULES_DIR / f"{CUSTOM_ID}.yml").read_bytes() == rule_yaml()
    assert not [p for p in (server.log.state / RULES_DIR).iterdir() if p.name.startswith(".")]
    assert reloads(server) == 1
    engine = engine_of(server)  # what the follower now runs really fires on the event
    assert [a.rule_id for a in engine.process(7, vault_deleted())] == [CUSTOM_ID]
    added = [r for r in admin_records(server, start) if r["auditseal"] == "rule.added"]
    assert len(added) == 1
    assert added[0]["rule_ids"] == [CUSTOM_ID]
    assert base64.b64decode(added[0]["yaml_b64"]) == rule_yaml()
    assert added[0]["principal"]["role"] == "admin"


def test_upload_of_the_same_id_replaces_it(server: Api) -> None:
    with server.client("admin", **YAML) as admin:
        assert admin.post("/v1/rules", content=rule_yaml()).status_code == 201
        again = admin.post("/v1/rules", content=rule_yaml(title="Renamed", level="low"))
        listing = by_id(admin.get("/v1/rules").json()["rules"])
    assert again.status_code == 201
    assert again.json()["replaced"] is True
    assert listing[CUSTOM_ID]["title"] == "Renamed"
    assert [r.title for r in engine_of(server).rules.rules if r.id == CUSTOM_ID] == ["Renamed"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"title: [unclosed", "not valid YAML", id="not-yaml"),
        pytest.param(b"", "no rule", id="empty"),
        pytest.param(rule_yaml().replace(b"product: azure", b"product: windows"),
                     "is not Azure", id="not-azure"),
        pytest.param(rule_yaml().replace(b"service: activitylogs", b"service: dns"),
                     "not an Azure log we collect", id="unknown-service"),
        pytest.param(rule_yaml().replace(b"condition: selection", b"condition: nothere"),
                     "does not load", id="bad-condition"),
        pytest.param(b"\xff\xfe title", "not UTF-8", id="not-utf8"),
    ],
)
def test_a_rule_that_does_not_load_is_422_with_the_reason(
        server: Api, content: bytes, reason: str) -> None:
    start = server.service.writer.size
    with server.client("admin", **YAML) as admin:
        answer = admin.post("/v1/rules", content=content)
        listing = by_id(admin.get("/v1/rules").json()["rules"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_rule"
    assert reason in answer.json()["error"]["message"]
    assert CUSTOM_ID not in listing
    folder = server.log.state / RULES_DIR
    assert not folder.exists() or not list(folder.iterdir())
    assert reloads(server) == 0
    rejected = [r for r in admin_records(server, start) if r["auditseal"] == "rule.rejected"]
    assert len(rejected) == 1
    assert reason in rejected[0]["detail"]


def test_a_clashing_id_is_409_and_a_wrong_type_415(server: Api) -> None:
    with server.client("admin", **YAML) as admin:
        clash = admin.post("/v1/rules", content=rule_yaml(rule_id=KEYS_LISTED))
    with server.client("admin", **{"Content-Type": "application/json"}) as admin:
        wrong_type = admin.post("/v1/rules", content=rule_yaml())
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "rule_exists"
    assert "built-in" in clash.json()["error"]["message"]
    assert wrong_type.status_code == 415


def test_disable_and_enable_change_what_the_engine_runs_and_are_sealed(server: Api) -> None:
    start = server.service.writer.size
    with server.client("admin") as admin:
        off = admin.post(f"/v1/rules/{KEYS_LISTED}/disable")
        again = admin.post(f"/v1/rules/{KEYS_LISTED}/disable")
        listed_off = by_id(admin.get("/v1/rules").json()["rules"])[KEYS_LISTED]
        active_off = active(server)
        on = admin.post(f"/v1/rules/{KEYS_LISTED}/enable")
        missing = admin.post("/v1/rules/no-such-rule/disable")
    with server.client("reader") as reader:
        assert reader.post(f"/v1/rules/{KEYS_LISTED}/disable").status_code == 403
    assert off.json() == {"id": KEYS_LISTED, "enabled": False, "changed": True, "applied": True}
    assert again.json()["changed"] is False
    assert listed_off["enabled"] is False
    assert KEYS_LISTED not in active_off
    assert on.json()["changed"] is True
    assert KEYS_LISTED in active(server)
    assert reloads(server) == 2  # not for the calls that changed nothing
    assert missing.status_code == 404
    actions = [(r["auditseal"], r.get("changed")) for r in admin_records(server, start)
               if r["auditseal"].startswith("rule.")]
    assert actions == [("rule.disabled", True), ("rule.disabled", False),
                       ("rule.enabled", True), ("rule.disabled", False)]


def test_uploads_and_disabled_rules_survive_a_restart(
        make_server: Callable[..., AbstractContextManager[Api]]) -> None:
    with make_server(service_class=RecordingService) as first, \
            first.client("admin", **YAML) as admin:
        assert admin.post("/v1/rules", content=rule_yaml()).status_code == 201
        assert admin.post(f"/v1/rules/{KEYS_LISTED}/disable").status_code == 200
    assert orjson.loads((first.log.state / DISABLED_FILE).read_bytes()) == {
        "disabled": [KEYS_LISTED]}
    with serve_log(first.log, first.vkey, first.keys, first.service.settings,
                   service_class=RecordingService) as again, again.client("reader") as reader:
        listing = by_id(reader.get("/v1/rules").json()["rules"])
        running = active(again)
    assert listing[CUSTOM_ID]["source"] == "custom"
    assert listing[KEYS_LISTED]["enabled"] is False
    assert CUSTOM_ID in running
    assert KEYS_LISTED not in running


def test_an_uploaded_rule_fires_in_the_running_service(server: Api) -> None:
    with server.client("admin", **YAML) as admin:
        assert admin.post("/v1/rules", content=rule_yaml()).status_code == 201
    with server.client("ingest", **{"Content-Type": "application/json"}) as ingest:
        index = ingest.post("/v1/events", content=vault_deleted()).json()["entries"][0]["index"]
    deadline = time.monotonic() + 10
    with server.client("reader") as reader:
        while True:
            alerts = reader.get("/v1/alerts").json()
            if any(a["rule_id"] == CUSTOM_ID and index in a["log_indexes"] for a in alerts):
                break
            assert time.monotonic() < deadline, alerts
            time.sleep(0.05)
