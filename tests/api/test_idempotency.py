"""POST /v1/events with an Idempotency-Key: a retried request seals once, even after a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditseal.api import AuditService, idempotency
from auditseal.api.idempotency import AnswerStore, fingerprint, parse_key
from auditseal.api.limits import ApiError
from tests.api.conftest import Api, run_server, serve_log

NDJSON = {"Content-Type": "application/x-ndjson"}
BODY = b'{"op":"a","n":1}\n{"op":"b","n":2}\n'


def _post(api: Api, key: str | bytes | None, body: bytes = BODY, role: str = "ingest",
          params: dict[str, str] | None = None) -> httpx.Response:
    headers: dict[str, Any] = dict(NDJSON)
    if key is not None:
        headers["Idempotency-Key"] = key
    with api.client(role) as client:
        return client.post("/v1/events", content=body, headers=headers, params=params)


def _key(request: pytest.FixtureRequest) -> str:
    return f"test-{request.node.name}"


def test_same_key_twice_seals_once_and_answers_the_same(api: Api,
                                                        request: pytest.FixtureRequest) -> None:
    before = api.service.writer.size
    first = _post(api, _key(request))
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert api.service.writer.size == before + 2
    again = _post(api, _key(request))
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert [e["index"] for e in again.json()["entries"]] == [before, before + 1]
    assert api.service.writer.size == before + 2  # nothing sealed the second time


def test_without_a_key_a_repeat_is_sealed_again(api: Api) -> None:
    before = api.service.writer.size
    assert _post(api, None).status_code == 200
    assert _post(api, None).status_code == 200
    assert api.service.writer.size == before + 4


@pytest.mark.parametrize(("body", "params"), [
    pytest.param(b'{"op":"other"}\n', None, id="other-body"),
    pytest.param(BODY, {"atomic": "true"}, id="same-body-atomic"),
])
def test_same_key_other_request_is_422(api: Api, request: pytest.FixtureRequest, body: bytes,
                                       params: dict[str, str] | None) -> None:
    assert _post(api, _key(request)).status_code == 200
    size = api.service.writer.size
    reused = _post(api, _key(request), body, params=params)
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert api.service.writer.size == size


def test_keys_are_scoped_per_principal(api: Api, request: pytest.FixtureRequest) -> None:
    before = api.service.writer.size
    mine = _post(api, _key(request), role="ingest")
    theirs = _post(api, _key(request), b'{"op":"admin batch"}\n', role="admin")
    assert (mine.status_code, theirs.status_code) == (200, 200), theirs.text
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["entries"][0]["index"] == before + 2
    assert _post(api, _key(request), role="ingest").content == mine.content
    assert api.service.writer.size == before + 3


@pytest.mark.parametrize("key", [
    pytest.param("", id="empty"),
    pytest.param("k" * 201, id="201-chars"),
    pytest.param("caf\xe9".encode("latin-1"), id="not-ascii"),
    pytest.param("a\tb", id="tab"),
])
def test_bad_key_is_400(api: Api, key: str | bytes) -> None:
    size = api.service.writer.size
    answer = _post(api, key)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "bad_idempotency_key"
    assert api.service.writer.size == size


def test_longest_key_is_accepted(api: Api) -> None:
    assert _post(api, "~" * 200).status_code == 200


def test_failed_request_is_not_remembered(api: Api, request: pytest.FixtureRequest) -> None:
    refused = _post(api, _key(request), b"[1, 2]\n")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "no_valid_events"
    size = api.service.writer.size
    fixed = _post(api, _key(request))  # a new body under the key: no 422, it runs
    assert fixed.status_code == 200, fixed.text
    assert "Idempotent-Replayed" not in fixed.headers
    assert api.service.writer.size == size + 2


def test_remembered_answer_survives_a_restart(tmp_path: Path) -> None:
    with run_server(tmp_path) as first:
        answer = _post(first, "restart-key")
        assert answer.status_code == 200
        size = first.service.writer.size
    assert (first.log.state / idempotency.DATABASE).exists()
    with serve_log(first.log, first.vkey, first.keys) as again:
        replayed = _post(again, "restart-key")
        assert replayed.status_code == 200
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.content == answer.content
        assert again.service.writer.size == size
        assert _post(again, "restart-key", b'{"op":"other"}\n').status_code == 422


class SlowService(AuditService):
    """Appends that take a while, so that a retry arrives while the first is in flight."""

    delay_s = 0.3

    def append(self, events: Sequence[bytes | memoryview], source: str, kind: str = "event"
               ) -> list[tuple[int, str]]:
        if kind == "event":
            time.sleep(self.delay_s)
        return super().append(events, source, kind)


def test_a_retry_while_in_flight_waits_for_the_first(
        make_server: Callable[..., AbstractContextManager[Api]]) -> None:
    with make_server(service_class=SlowService) as running:
        before = running.service.writer.size
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: _post(running, "in-flight"), range(2)))
        assert [a.status_code for a in answers] == [200, 200]
        assert answers[0].content == answers[1].content
        assert sorted(a.headers.get("Idempotent-Replayed", "-") for a in answers) == ["-",
                                                                                     "true"]
        assert running.service.writer.size == before + 2


def test_a_retry_waiting_too_long_is_409(make_server: Callable[..., AbstractContextManager[Api]],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency, "IN_FLIGHT_WAIT_S", 0.05)
    monkeypatch.setattr(SlowService, "delay_s", 1.0)
    with make_server(service_class=SlowService) as running:
        first: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: first.append(_post(running, "slow")))
        thread.start()
        deadline = time.monotonic() + 10
        while not idempotency.idempotency_of(running.service)._flights:
            assert time.monotonic() < deadline, "the first request never held its key"
            time.sleep(0.005)
        second = _post(running, "slow")
        thread.join()
        assert second.status_code == 409, second.text
        assert second.json()["error"]["code"] == "idempotency_key_in_flight"
        assert second.headers["Retry-After"] == "1"
        assert first[0].status_code == 200
        third = _post(running, "slow")
        assert third.headers["Idempotent-Replayed"] == "true"
        assert third.content == first[0].content


# -- the store and the key, without HTTP ----------------------------------------------------

@pytest.mark.parametrize(("value", "ok"), [
    pytest.param(None, True, id="absent"),
    pytest.param("0f3c-uuid", True, id="plain"),
    pytest.param(" !~", True, id="printable-edges"),
    pytest.param("", False, id="empty"),
    pytest.param("x" * 201, False, id="too-long"),
    pytest.param("a\x7fb", False, id="del"),
    pytest.param("\xe9", False, id="latin-1"),
])
def test_parse_key(value: str | None, ok: bool) -> None:
    if ok:
        assert parse_key(value) == value
    else:
        with pytest.raises(ApiError) as refused:
            parse_key(value)
        assert (refused.value.status_code, refused.value.code) == (400, "bad_idempotency_key")


def test_fingerprint_covers_body_and_atomic_flag() -> None:
    assert fingerprint(b"a", False) == fingerprint(b"a", False)
    assert len({fingerprint(b"a", False), fingerprint(b"a", True), fingerprint(b"b", False)}
               ) == 3


def test_store_forgets_after_the_window_and_prunes(tmp_path: Path) -> None:
    now = [1000.0]
    store = AnswerStore(tmp_path / "answers.sqlite3", window_s=60.0, clock=lambda: now[0])
    store.remember("key/a", "k1", b"d" * 32, b'{"accepted":1}')
    found = store.find("key/a", "k1")
    assert found is not None
    assert (found.digest, found.answer) == (b"d" * 32, b'{"accepted":1}')
    assert store.find("key/b", "k1") is None
    now[0] += 61.0
    assert store.find("key/a", "k1") is None  # expired: ignored before it is pruned
    assert store.prune() == 1
    store.close()


def test_store_group_commit_keeps_every_answer(tmp_path: Path) -> None:
    path = tmp_path / "answers.sqlite3"
    store = AnswerStore(path, window_s=60.0, fsync=True)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: store.remember("key/a", f"k{n}", bytes(32), b"%d" % n),
                      range(200)))
    store.close()
    reopened = AnswerStore(path, window_s=60.0)
    for n in range(200):
        found = reopened.find("key/a", f"k{n}")
        assert found is not None
        assert found.answer == b"%d" % n
    reopened.close()
