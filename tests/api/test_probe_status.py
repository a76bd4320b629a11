"""The storage probe's status over HTTP: ``last_probe`` and ``POST /v1/integrity/probe``.

Both ``auditseal probe`` and the service record their result in
``<log state>/last-probe.json``; ``GET /v1/integrity`` shows the newest one.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from auditseal.storage.probe import (
    LAST_PROBE_FILE,
    Attempt,
    Outcome,
    ProbeReport,
    load_probe_record,
    probe_record,
    save_probe_record,
)
from tests.api.conftest import Api
from tests.conftest import run_cli

REFUSED = ProbeReport("fs:/x", "probe/canary-20251127T100000Z-00", tuple(
    Attempt(action, Outcome.REFUSED, "EPERM", "Operation not permitted")
    for action in ("overwrite", "set_metadata", "delete")))
WHEN = datetime(2025, 11, 27, 10, 0, 0, 123000, tzinfo=UTC)


def test_record_round_trips_through_the_state_file(tmp_path: Path) -> None:
    record = probe_record(REFUSED, WHEN, by="cli")
    path = save_probe_record(tmp_path, record)
    assert path == tmp_path / LAST_PROBE_FILE
    assert load_probe_record(tmp_path) == record
    assert record["time"] == "2025-11-27T10:00:00.123Z"
    assert record["protected"] is True
    assert record["verdict"].startswith("the storage is protected")
    assert record["report"]["attempts"][0]["outcome"] == "refused"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_PROBE_FILE]  # no temp left


@pytest.mark.parametrize("content", [None, b"{not json", b"[1, 2]"],
                         ids=["missing", "torn", "not-an-object"])
def test_unreadable_record_reads_as_none(tmp_path: Path, content: bytes | None) -> None:
    if content is not None:
        (tmp_path / LAST_PROBE_FILE).write_bytes(content)
    assert load_probe_record(tmp_path) is None


def test_post_probe_needs_admin_records_and_seals(api: Api) -> None:
    with api.client("auditor") as client:
        forbidden = client.post("/v1/integrity/probe")
    assert forbidden.status_code == 403
    with api.client("admin") as client:
        answer = client.post("/v1/integrity/probe")
        status = client.get("/v1/integrity").json()
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["by"] == "admin:test-admin"
    assert record["canary_key"].startswith("probe/canary-")
    assert isinstance(record["protected"], bool)
    assert record["verdict"] == record["report"]["verdict"]
    assert [a["action"] for a in record["report"]["attempts"]] == [
        "overwrite", "set_metadata", "set_tier", "delete"]
    assert status["last_probe"] == record
    assert load_probe_record(api.log.state) == record
    if not record["protected"]:  # root without the immutable attribute deletes it
        assert record["report"]["attempts"][-1]["outcome"] == "NOT refused"
    else:
        assert (api.log.root / record["canary_key"]).exists()
    api.wait_sealed()
    with api.client("reader") as client:
        size = api.service.writer.size
        sealed = [client.get(f"/v1/entries/{i}").json() for i in range(size)]
    probes = [orjson.loads(base64.b64decode(e["event_b64"])) for e in sealed
              if e["kind"] == "admin"]
    probe = next(p for p in probes if p["auditseal"] == "integrity.probe")
    assert probe["detail"] == record["verdict"]
    assert probe["canary_key"] == record["canary_key"]
    assert probe["principal"]["role"] == "admin"


def test_cli_probe_is_shown_as_last_probe(api: Api) -> None:
    code = run_cli("probe", "--log", api.log.root, "--json")
    assert code in (0, 1)
    with api.client("reader") as client:
        last = client.get("/v1/integrity").json()["last_probe"]
    assert last is not None
    assert last["by"] == "cli"
    assert last["protected"] is (code == 0)
    assert datetime.fromisoformat(last["time"]) <= datetime.now(UTC)


def test_cli_probe_of_a_folder_without_a_log_records_nothing(tmp_path: Path) -> None:
    run_cli("probe", "--log", tmp_path)
    assert not (tmp_path / ".auditseal" / LAST_PROBE_FILE).exists()
    assert not list(tmp_path.rglob(LAST_PROBE_FILE))
