"""Hostile and heavy input: 413 while reading, 429 per key, 503 when sealing is stuck."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import pytest

from auditseal.clock import SystemClock
from auditseal.config import WriterConfig
from auditseal.errors import StorageUnavailable
from auditseal.log.local import LocalLog, load_signer
from auditseal.log.writer import LogWriter
from auditseal.storage.base import ObjectProtection, ObjectStore
from tests.api.conftest import Api

Make = Callable[..., AbstractContextManager[Api]]
EVENT = b'{"operationName":"x","pad":"' + b"y" * 100 + b'"}'
NDJSON = {"Content-Type": "application/x-ndjson"}


def test_body_over_the_limit_is_413_by_content_length(make_server: Make) -> None:
    with make_server(max_request_bytes=4096) as api, api.client("ingest", **NDJSON) as client:
        answer = client.post("/v1/events", content=(EVENT + b"\n") * 50)
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"
        before = api.service.writer.size
        assert client.post("/v1/events", content=EVENT).status_code == 200
        assert api.service.writer.size == before + 1  # only the small request was sealed


def test_chunked_body_without_length_is_cut_off_at_the_limit(make_server: Make) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(10_000):  # 1.2 MB if nobody stopped us
            sent.append(1)
            yield EVENT + b"\n"

    with make_server(max_request_bytes=8192) as api, api.client("ingest", **NDJSON) as client:
        before = api.service.writer.size
        answer = client.post("/v1/events", content=chunks())
        assert answer.status_code == 413
        assert "content-length" not in {k.lower() for k in answer.request.headers}
        assert api.service.writer.size == before


def test_rate_limit_is_429_with_retry_after_per_key(make_server: Make) -> None:
    with make_server(rate_limit_events_per_s=10.0, rate_limit_burst_s=1.0) as api:
        with api.client("ingest", **NDJSON) as client:
            first = client.post("/v1/events", content=(EVENT + b"\n") * 15)  # into debt
            second = client.post("/v1/events", content=EVENT)
        with api.client("admin", **NDJSON) as other:
            third = other.post("/v1/events", content=EVENT)
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(second.headers["Retry-After"]) <= 2
    assert third.status_code == 200  # another key has its own bucket


class FailingStore:
    """A real object store whose writes fail while ``failing`` (a storage outage)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.failing = False

    def read(self, key: str) -> bytes:
        return self.inner.read(key)

    def create(self, key: str, data: bytes) -> bool:
        self._check()
        return self.inner.create(key, data)

    def create_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        self._check()
        return self.inner.create_many(items)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def protection(self, key: str) -> ObjectProtection:
        return self.inner.protection(key)

    def describe(self) -> str:
        return "failing " + self.inner.describe()

    def _check(self) -> None:
        if self.failing:
            raise StorageUnavailable("storage is down (test outage)")


def test_overload_is_503_with_retry_after_and_nothing_accepted(make_server: Make) -> None:
    stores: list[FailingStore] = []

    @contextmanager
    def outage(log: LocalLog) -> Iterator[LogWriter]:
        store = FailingStore(log.object_store(fsync=False))
        stores.append(store)
        config = WriterConfig(fsync=False, set_immutable=False, publish_interval_s=0.02,
                              publish_max_pending=2, max_unsealed=4)
        writer = LogWriter(store=store, head=log.head_store(fsync=False),
                           signer=load_signer(log), verifier=log.verifier(), origin=log.origin,
                           journal_dir=log.state / "journal", clock=SystemClock(), config=config)
        writer.open()
        try:
            yield writer
        finally:
            store.failing = False
            writer.close()

    with make_server(writer_factory=outage, index=False, alerts=False) as api:
        api.wait_sealed()
        stores[0].failing = True
        with api.client("ingest", **NDJSON) as client:
            accepted = client.post("/v1/events", content=(EVENT + b"\n") * 3)
            size = api.service.writer.size
            refused = client.post("/v1/events", content=(EVENT + b"\n") * 2)
        assert accepted.status_code == 200  # durable in the journal while storage is down
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "overloaded"
        assert int(refused.headers["Retry-After"]) >= 1
        assert api.service.writer.size == size  # nothing of the refused request
        with api.client("reader") as reader:
            deadline = time.monotonic() + 5
            while reader.get("/v1/integrity").json()["publish_error"] is None:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        stores[0].failing = False
        api.wait_sealed()  # back: everything acknowledged gets sealed


@pytest.mark.parametrize("path", ["/v1/search", "/v1/keys"])
def test_malformed_json_bodies_are_400_without_a_trace(api: Api, path: str) -> None:
    with api.client("admin", **{"Content-Type": "application/json"}) as client:
        answer = client.post(path, content=b"{not json")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    assert "Traceback" not in answer.text
