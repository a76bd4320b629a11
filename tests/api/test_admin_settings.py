"""Run-time settings over HTTP: read, change (validated, 422 otherwise), applied, sealed, kept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditseal.api.runtime_settings import SETTINGS_FILE, RuntimeSettings, SettingsStore
from auditseal.errors import ConfigError
from tests.api.conftest import Api, RecordingService, admin_records, engine_of, serve_log

DEFAULTS = {"alert_suppress_window_s": 600.0, "rate_limit_events_per_s": 0.0,
            "rate_limit_burst_s": 2.0}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server(make_server: Callable[..., AbstractContextManager[Api]]) -> Iterator[Api]:
    with make_server(service_class=RecordingService) as running:
        yield running


def test_only_admins_read_settings(server: Api) -> None:
    with server.client("admin") as admin:
        answer = admin.get("/v1/settings")
    assert answer.json() == {"settings": DEFAULTS, "overridden": [], "defaults": DEFAULTS}
    for role in ("ingest", "reader", "auditor"):
        with server.client(role, **JSON) as client:
            assert client.get("/v1/settings").status_code == 403
            assert client.patch("/v1/settings", json={"rate_limit_burst_s": 1}).status_code == 403


def test_suppression_window_reaches_the_engine_and_is_sealed(server: Api) -> None:
    start = server.service.writer.size
    with server.client("admin", **JSON) as admin:
        answer = admin.patch("/v1/settings", json={"alert_suppress_window_s": 60})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["settings"]["alert_suppress_window_s"] == 60
    assert body["overridden"] == ["alert_suppress_window_s"]
    assert body["changed"] == ["alert_suppress_window_s"]
    assert body["applied"] is True
    assert isinstance(server.service, RecordingService)
    assert server.service.reloads == 1
    assert engine_of(server).config.suppress_window_s == 60
    [record] = [r for r in admin_records(server, start) if r["auditseal"] == "settings.changed"]
    assert record["changes"] == {"alert_suppress_window_s": {"from": 600.0, "to": 60}}
    assert record["principal"]["role"] == "admin"


def test_rate_limit_applies_at_once_and_null_resets_it(server: Api) -> None:
    event = b'{"operationName": "x"}'
    with server.client("admin", **JSON) as admin, server.client("ingest", **JSON) as ingest:
        assert admin.patch("/v1/settings", json={"rate_limit_events_per_s": 1,
                                                 "rate_limit_burst_s": 1}).status_code == 200
        batch = b"[" + b",".join([event] * 30) + b"]"  # takes the bucket 29 s into debt
        assert ingest.post("/v1/events", content=batch).status_code == 200
        limited = ingest.post("/v1/events", content=event)
        reset = admin.patch("/v1/settings", json={"rate_limit_events_per_s": None})
        statuses = {ingest.post("/v1/events", content=event).status_code for _ in range(5)}
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers
    assert reset.json()["settings"]["rate_limit_events_per_s"] == 0.0
    assert reset.json()["overridden"] == ["rate_limit_burst_s"]
    assert statuses == {200}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param({"alert_suppress_window_s": -1}, "between 0", id="negative-window"),
        pytest.param({"alert_suppress_window_s": 10**9}, "between 0", id="window-too-long"),
        pytest.param({"alert_suppress_window_s": "10m"}, "must be a number", id="string"),
        pytest.param({"alert_suppress_window_s": True}, "must be a number", id="boolean"),
        pytest.param({"rate_limit_events_per_s": -5}, ">= 0", id="negative-rate"),
        pytest.param({"rate_limit_burst_s": 0}, "> 0", id="zero-burst"),
        pytest.param({"max_request_bytes": 1}, "unknown or read-only", id="not-runtime"),
        pytest.param({}, "JSON object", id="empty"),
        pytest.param([1, 2], "JSON object", id="array"),
        pytest.param(b"{not json", "not JSON", id="malformed"),
    ],
)
def test_bad_values_are_422_sealed_and_change_nothing(server: Api, body: Any,
                                                      reason: str) -> None:
    start = server.service.writer.size
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    with server.client("admin", **JSON) as admin:
        answer = admin.patch("/v1/settings", content=content)
        after = admin.get("/v1/settings").json()
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_setting"
    assert reason in answer.json()["error"]["message"]
    assert after["settings"] == DEFAULTS
    assert not (server.log.state / SETTINGS_FILE).exists()
    rejected = [r for r in admin_records(server, start) if r["auditseal"] == "settings.rejected"]
    assert len(rejected) == 1
    assert reason in rejected[0]["detail"]


def test_changes_survive_a_restart(make_server: Callable[..., AbstractContextManager[Api]]
                                   ) -> None:
    with make_server(service_class=RecordingService) as first, \
            first.client("admin", **JSON) as admin:
        assert admin.patch("/v1/settings", json={"alert_suppress_window_s": 30}).is_success
    with serve_log(first.log, first.vkey, first.keys, first.service.settings,
                   service_class=RecordingService) as again, again.client("admin") as admin:
        shown = admin.get("/v1/settings").json()
        config = engine_of(again).config
    assert shown["settings"]["alert_suppress_window_s"] == 30
    assert shown["defaults"]["alert_suppress_window_s"] == 600
    assert config.suppress_window_s == 30


@pytest.mark.parametrize("content", [b"{torn", b'{"overrides": {"nope": 1}}',
                                     b'{"overrides": {"rate_limit_burst_s": -1}}'],
                         ids=["torn", "unknown-name", "bad-value"])
def test_a_damaged_settings_file_stops_the_start(tmp_path: Path, content: bytes) -> None:
    (tmp_path / SETTINGS_FILE).write_bytes(content)
    defaults = RuntimeSettings(**DEFAULTS)
    with pytest.raises(ConfigError, match=SETTINGS_FILE):
        SettingsStore(tmp_path, defaults)
