"""Search, timeline, alerts, integrity and OTLP over HTTP: the documented shapes."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from tests.api.conftest import Api

NOW = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
LIST_KEYS = orjson.dumps({
    "time": NOW, "category": "Administrative", "resultType": "Success",
    "operationName": "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION",
    "resourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.STORAGE/"
                  "STORAGEACCOUNTS/ACCT", "identity": {"claims": {"upn": "mallory@contoso.com"}},
    "callerIpAddress": "203.0.113.9", "level": "Informational",
})


@pytest.fixture(scope="module")
def seeded(api: Api) -> tuple[Api, int]:
    """The shared service with one event that fires the built-in 'keys listed' rule."""
    with api.client("ingest", **{"Content-Type": "application/json"}) as client:
        index: int = client.post("/v1/events", content=LIST_KEYS).json()["entries"][0]["index"]
    # the alert it fires is sealed by the follower after the event: wait for it, then index
    deadline = time.monotonic() + 10
    while api.service.alerted <= index:
        assert time.monotonic() < deadline, "not alerted in time"
        time.sleep(0.01)
    api.wait_indexed()
    return api, index


def _poll(api: Api, path: str, ready: object, timeout_s: float = 5.0) -> object:
    deadline = time.monotonic() + timeout_s
    with api.client("auditor") as client:
        while True:
            body = client.get(path).json()
            if callable(ready) and ready(body):
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.05)


def test_search_kql_and_sql(seeded: tuple[Api, int]) -> None:
    api, index = seeded
    with api.client("reader") as client:
        kql = client.post("/v1/search", json={
            "query": "AzureActivity | where OperationNameValue contains 'LISTKEYS' "
                     "| project _LogIndex, OperationNameValue"}).json()
        sql = client.post("/v1/search", json={
            "query": "SELECT _LogIndex FROM AuditEvents ORDER BY _LogIndex", "language": "sql",
            "max_rows": 1}).json()
        bad = client.post("/v1/search", json={"query": "AzureActivity | wher x"})
        write = client.post("/v1/search", json={"query": "DROP TABLE _events",
                                                "language": "sql"})
    assert kql["columns"] == ["_LogIndex", "OperationNameValue"]
    assert {"_LogIndex": index,
            "OperationNameValue": "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION"
            } in kql["rows"]
    assert sql == {"columns": ["_LogIndex"], "rows": [{"_LogIndex": 0}], "truncated": True}
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_query"
    assert bad.json()["position"]["line"] == 1
    assert write.status_code == 400


def test_timeline_counts_events_per_hour_and_category(seeded: tuple[Api, int]) -> None:
    api, _ = seeded
    with api.client("reader") as client:
        timeline = client.get("/v1/stats/timeline", params={"hours": 2}).json()
    assert timeline
    assert set(timeline[0]) == {"hour", "category", "count"}
    assert any(row["category"] == "Administrative" and row["count"] >= 1 for row in timeline)


def test_alert_fires_is_sealed_and_listed(seeded: tuple[Api, int]) -> None:
    api, index = seeded

    def fired(body: object) -> bool:
        return isinstance(body, list) and any(index in a["log_indexes"] for a in body)

    alerts = _poll(api, "/v1/alerts?limit=10", fired)
    assert isinstance(alerts, list)
    alert = next(a for a in alerts if index in a["log_indexes"])
    assert alert["rule_id"] == "30c69454-6352-4071-8be5-ba5db37e5214"
    assert alert["severity"] == "medium"
    assert alert["title"] == "Azure Storage Account Keys Listed"
    with api.client("reader") as client:
        sealed = client.get(f"/v1/entries/{alert['index']}").json()
    assert sealed["kind"] == "alert"
    assert orjson.loads(base64.b64decode(sealed["event_b64"]))["indexes"] == [index]


def test_integrity_and_a_verification_run(seeded: tuple[Api, int]) -> None:
    api, _ = seeded
    with api.client("auditor") as client:
        status = client.get("/v1/integrity").json()
        started = client.post("/v1/integrity/verify")
        assert client.get("/v1/integrity/verify/nope").status_code == 404
    assert set(status) >= {"checkpoint", "last_verification", "last_probe", "storage",
                           "publish_error", "index", "alerts", "durable_size"}
    assert 0 < status["index"]["size"] <= status["durable_size"]  # seeded waited for the index
    assert 0 <= status["alerts"]["size"] <= status["durable_size"]
    assert status["checkpoint"]["origin"] == "test.local/api"
    assert len(status["checkpoint"]["root_hash"]) == 64
    assert started.status_code == 202
    run_id = started.json()["id"]
    run = _poll(api, f"/v1/integrity/verify/{run_id}", lambda b: b["status"] != "running")
    assert isinstance(run, dict)
    assert run["status"] == "done", run
    assert run["report"]["ok"] is True
    after = _poll(api, "/v1/integrity", lambda b: b["last_verification"] is not None)
    assert isinstance(after, dict)
    assert after["last_verification"]["id"] == run_id


def test_otlp_json_logs_are_sealed(api: Api) -> None:
    body = orjson.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "shop"}}]},
        "scopeLogs": [{"scope": {"name": "audit"}, "logRecords": [
            {"timeUnixNano": "1764230400000000000", "body": {"stringValue": "login"}},
            {"timeUnixNano": "1764230400000000001", "traceId": "zz",
             "body": {"stringValue": "bad id"}},
        ]}]}]})
    with api.client("ingest", **{"Content-Type": "application/json"}) as client:
        before = api.service.writer.size
        answer = client.post("/v1/otlp/v1/logs", content=body)
        wrong = client.post("/v1/otlp/v1/logs", content=body,
                            headers={"Content-Type": "text/plain"})
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedLogRecords"] in (1, "1")
    assert api.service.writer.size == before + 1
    assert wrong.status_code == 415


def _count(client: httpx.Client) -> int:
    answer = client.post("/v1/search", json={"query": "SELECT count(*) AS n FROM AuditEvents",
                                             "language": "sql"})
    assert answer.status_code == 200, answer.text
    count: int = answer.json()["rows"][0]["n"]
    return count


def test_search_sees_each_feed_and_never_fails_during_one(api: Api) -> None:
    """The service keeps one searcher open; feeding closes it, the next search reopens it."""
    api.wait_indexed()
    batch = b"\n".join(orjson.dumps({"time": NOW, "category": "Feed", "n": i})
                       for i in range(50))
    with api.client("reader") as reader, \
            api.client("ingest", **{"Content-Type": "application/x-ndjson"}) as ingest:
        before = _count(reader)
        for _ in range(5):  # searches race the follower's feeds
            assert ingest.post("/v1/events", content=batch).status_code == 200
            for _ in range(5):
                assert before <= _count(reader) <= api.service.writer.size
        api.wait_indexed()
        assert _count(reader) == api.service.indexed >= before + 250
