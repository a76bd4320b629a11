"""The follower child process: killed, it is restarted and catches up; alerts sealed once."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from collections.abc import Callable
from contextlib import AbstractContextManager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditseal.api import AuditService, follower
from auditseal.api.service import wait_for
from auditseal.config import WriterConfig
from auditseal.core.entry import decode_entry
from auditseal.log.local import LocalLog, init_log, latest_checkpoint, open_writer
from auditseal.log.reader import LogReader
from auditseal.verify import DirectorySource
from tests.api.conftest import FAST, Api
from tests.api.test_query import LIST_KEYS, NOW

NDJSON = {"Content-Type": "application/x-ndjson"}


def _post(api: Api, body: bytes) -> list[int]:
    with api.client("ingest", **NDJSON) as client:
        answer = client.post("/v1/events", content=body)
    assert answer.status_code == 200, answer.text
    return [entry["index"] for entry in answer.json()["entries"]]


def _count(api: Api) -> int:
    with api.client("reader") as client:
        answer = client.post("/v1/search", json={"query": "SELECT count(*) AS n FROM AuditEvents",
                                                 "language": "sql"})
    assert answer.status_code == 200, answer.text
    count: int = answer.json()["rows"][0]["n"]
    return count


def _alerted_to(service: AuditService, size: int) -> bool:
    return service.alerted >= size


def _alerts_in(log: LocalLog) -> list[dict[str, Any]]:
    checkpoint = latest_checkpoint(log)
    assert checkpoint is not None
    reader = LogReader(DirectorySource(log.root), checkpoint)
    found = []
    for _, raw in reader.entries(0, checkpoint.size):
        entry = decode_entry(raw)
        if entry.header.kind == "alert":
            found.append(orjson.loads(entry.event))
    return found


def test_the_follower_runs_in_its_own_process_and_survives_being_killed(
        make_server: Callable[..., AbstractContextManager[Api]]) -> None:
    with make_server() as api:
        events = b"\n".join(orjson.dumps({"time": NOW, "category": "Kill", "n": i})
                            for i in range(100))
        _post(api, events)
        api.wait_indexed()
        child = api.service.follower._process
        assert child is not None
        assert child.pid != os.getpid()
        before = _count(api)
        os.kill(child.pid, signal.SIGKILL)
        assert wait_for(lambda: api.service.follower._process is not child
                        and api.service.follower._process.is_alive(), 15)
        assert "exited" in (api.service.follow_error or "")
        _post(api, events)
        api.wait_indexed(timeout_s=15)
        assert _count(api) == before + 100 == api.service.indexed


def test_alerts_fired_in_the_child_are_sealed_once_across_restarts(tmp_path: Path) -> None:
    log, _ = init_log(tmp_path / "log", "test.local/follower")
    listed = -1
    for round_ in range(2):  # the second start must not alert on the first event again
        service = AuditService(log, FAST)
        service.start()
        try:
            ((index, _),) = service.append([LIST_KEYS if round_ == 0 else b'{"n": 1}'],
                                           source="test")
            listed = index if round_ == 0 else listed
            size = service.writer.size
            assert wait_for(functools.partial(_alerted_to, service, size), 20), service.follow_error
        finally:
            service.stop()
        fired = [alert for alert in _alerts_in(log) if listed in alert["indexes"]]
        assert [alert["rule_id"] for alert in fired] == ["30c69454-6352-4071-8be5-ba5db37e5214"]
        recorded = orjson.loads((log.state / "serve-alerts.json").read_bytes())
        assert recorded["size"] >= size


def _drain(conn: Connection) -> list[tuple[Any, ...]]:
    messages = []
    while conn.poll(0.2):
        messages.append(conn.recv())
    return messages


def test_behind_a_backlog_rounds_alternate_and_a_search_waits_one_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process (the child's class itself): bounded rounds, a waiting search yields."""
    log, _ = init_log(tmp_path / "log", "test.local/follower")
    with open_writer(log, config=WriterConfig(fsync=False, set_immutable=False)) as writer:
        writer.append([LIST_KEYS] * 1000, source="test")
        writer.publish()
    monkeypatch.setattr(follower, "INDEX_ROUND", 256)
    monkeypatch.setattr(follower, "INDEX_BATCH", 128)
    monkeypatch.setattr(follower, "ALERT_ROUND", 300)
    ours, theirs = multiprocessing.Pipe()
    child = follower._Child(theirs, follower.FollowerConfig(
        spec=str(log.root), interval_s=0.05, index=True, alerts=True, rules_paths=(),
        builtin_rules=True, suppress_window_s=600.0, alerted=0))
    checkpoint = latest_checkpoint(log)
    assert checkpoint is not None
    assert child._feed_index(checkpoint) is True  # a round's share, then it yields
    assert [m[1] for m in _drain(ours) if m[0] == "indexed"] == [128, 256]
    # alerting gets its turn meanwhile
    assert child._feed_alerts(child._engine(), checkpoint) is True
    assert child.alerted == 300
    fired = [m for m in _drain(ours) if m[0] == "alerts"]
    assert fired[-1][1] == 300
    assert fired[0][2]  # the first record is the one listing keys: it fires
    child.search_waiting.set()  # a search is waiting for the index: one batch, then yield
    assert child._feed_index(checkpoint) is True
    assert [m[1] for m in _drain(ours) if m[0] == "indexed"] == [384]
    child.search_waiting.clear()
    while child._feed_index(checkpoint):
        pass
    assert [m[1] for m in _drain(ours) if m[0] == "indexed"][-1] == 1000
