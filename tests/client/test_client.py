"""AuditsealClient against the real service on 127.0.0.1: batching, retries, outages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import orjson
import pytest

from auditseal.client import AuditsealClient, Delivery, DiskBuffer, Rejection
from auditseal.client.client import Result
from auditseal.errors import ConfigError, IngestError, StorageUnavailable

from .conftest import FaultProxyDouble, LiveServer


def numbers(server: LiveServer) -> list[int]:
    return sorted(int(e["n"]) for e in server.events() if "n" in e)


def test_send_batches_by_count(live: LiveServer, proxy: FaultProxyDouble) -> None:
    results: list[tuple[bytes, Result]] = []
    client = AuditsealClient(proxy.url, live.ingest_key, batch_max_events=500,
                             batch_max_age_s=10.0, on_result=lambda e, r: results.append((e, r)))
    for n in range(1200):
        client.send({"n": n, "action": "login"})
    assert client.flush(10.0)
    assert client.close() == 0
    posts = [status for path, status in proxy.seen if path == "/v1/events"]
    assert posts == [200, 200, 200]  # 500 + 500 + 200
    assert numbers(live) == list(range(1200))
    indexes = [r.index for _, r in results if isinstance(r, Delivery)]
    assert len(set(indexes)) == 1200
    assert orjson.loads(results[7][0]) == {"n": 7, "action": "login"}


def test_send_batches_by_age(live: LiveServer, proxy: FaultProxyDouble) -> None:
    with AuditsealClient(proxy.url, live.ingest_key, batch_max_age_s=0.1) as client:
        for n in range(3):
            client.send({"n": n})
        deadline = time.monotonic() + 5
        while client.pending:  # no flush: the age limit alone sends them
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert [path for path, _ in proxy.seen] == ["/v1/events"]
    assert numbers(live) == [0, 1, 2]


def test_send_keeps_event_bytes_exactly(live: LiveServer) -> None:
    raw = b'{ "n" : 1,\n  "note": "pretty \\u00e9", "records": [1] }'
    with AuditsealClient(live.url, live.ingest_key) as client:
        client.send(raw)
    assert client.pending == 0
    assert live.events() == [orjson.loads(raw)]
    assert live.service is not None
    reader = live.service.reader()
    assert reader.entry(reader.size - 1).endswith(raw)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'{"a": 1', id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"a": 1}{"b": 2}', id="two-objects"),
    ],
)
def test_send_refuses_what_is_not_one_event(bad: bytes, live: LiveServer) -> None:
    with AuditsealClient(live.url, live.ingest_key) as client:
        with pytest.raises(IngestError, match="not an audit event"):
            client.send(bad)
        with pytest.raises(IngestError, match="event 1"):
            client.send_now([{"ok": 1}, bad])
        assert client.pending == 0


def test_send_now_returns_index_and_leaf_hash(live: LiveServer) -> None:
    too_big = {"blob": "x" * 70_000}  # over the 65,535-byte entry limit: rejected alone
    with AuditsealClient(live.url, live.ingest_key) as client:
        results = client.send_now([{"n": 0}, too_big, {"n": 2}])
    assert [type(r) for r in results] == [Delivery, Rejection, Delivery]
    first, rejected, last = results
    assert isinstance(first, Delivery)
    assert isinstance(last, Delivery)
    assert isinstance(rejected, Rejection)
    assert last.index == first.index + 1
    assert len(bytes.fromhex(first.leaf_hash)) == 32
    assert rejected.item == 1
    assert rejected.reason
    assert numbers(live) == [0, 2]


def test_retries_503_429_and_dropped_connections(live: LiveServer,
                                                 proxy: FaultProxyDouble) -> None:
    proxy.faults = [503, "drop", 429, 503]
    with AuditsealClient(proxy.url, live.ingest_key, backoff_initial_s=0.01) as client:
        results = client.send_now([{"n": 0}, {"n": 1}])
    assert all(isinstance(r, Delivery) for r in results)
    assert [status for _, status in proxy.seen] == [503, 0, 429, 503, 200]
    assert numbers(live) == [0, 1]  # sealed once, not once per attempt


def test_background_sender_recovers_after_503(live: LiveServer, proxy: FaultProxyDouble) -> None:
    proxy.faults = [503] * 3
    with AuditsealClient(proxy.url, live.ingest_key, backoff_initial_s=0.01) as client:
        for n in range(10):
            client.send({"n": n})
        assert client.flush(10.0)
        assert client.last_error is None
    assert [status for _, status in proxy.seen] == [503, 503, 503, 200]
    assert numbers(live) == list(range(10))


def test_retry_after_is_honoured(live: LiveServer, proxy: FaultProxyDouble) -> None:
    proxy.faults = [503]
    proxy.retry_after = "0.4"
    with AuditsealClient(proxy.url, live.ingest_key, backoff_initial_s=0.001) as client:
        start = time.monotonic()
        client.send_now([{"n": 0}])
        assert time.monotonic() - start >= 0.4


def test_send_now_gives_up_after_max_retries(live: LiveServer, proxy: FaultProxyDouble) -> None:
    proxy.faults = [503] * 10
    with (AuditsealClient(proxy.url, live.ingest_key, max_retries=2,
                          backoff_initial_s=0.001) as client,
          pytest.raises(StorageUnavailable, match="gave up after 3 attempts")):
        client.send_now([{"n": 0}])
    assert len(proxy.seen) == 3


def test_wrong_key_is_a_config_error(live: LiveServer) -> None:
    with (AuditsealClient(live.url, "as_000000000000_wrong") as client,
          pytest.raises(ConfigError, match="refused the credentials")):
        client.send_now([{"n": 0}])


def test_close_without_buffer_reports_lost_events() -> None:
    client = AuditsealClient("http://127.0.0.1:9", "k", backoff_initial_s=0.01)
    client.send({"n": 0})
    assert client.close(timeout_s=0.3) == 1
    with pytest.raises(ConfigError, match="closed"):
        client.send({"n": 1})


CHILD = textwrap.dedent("""
    import os, sys
    from auditseal.client import AuditsealClient
    url, key, buffer_dir, start, count = sys.argv[1:6]
    client = AuditsealClient(url, key, buffer_dir=buffer_dir, backoff_initial_s=0.01)
    for n in range(int(start), int(start) + int(count)):
        client.send({"n": n})
    print(client.pending, flush=True)
    os._exit(0)  # die at once: no flush, no close, like a killed process
""")


def test_outage_loses_nothing_across_a_client_restart(live: LiveServer, tmp_path: Path) -> None:
    buffer_dir = tmp_path / "buffer"
    # 1. Service up: the first 100 events are delivered.
    with AuditsealClient(live.url, live.ingest_key, buffer_dir=buffer_dir) as client:
        for n in range(100):
            client.send({"n": n})
        assert client.flush(10.0)
    # 2. Service down: another client process queues 250 events and dies.
    live.stop()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, live.url, live.ingest_key, str(buffer_dir), "100", "250"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(Path.cwd() / "src")})
    assert child.returncode == 0, child.stderr
    assert int(child.stdout) >= 249  # at most one batch could have been in flight: none was
    # 3. The application restarts while the service is still down: events stay buffered.
    client = AuditsealClient(live.url, live.ingest_key, buffer_dir=buffer_dir,
                             backoff_initial_s=0.01, backoff_max_s=0.1)
    assert client.pending == 250
    client.send({"n": 350})
    assert not client.flush(0.3)
    # 4. The service comes back: everything is delivered, each event exactly once.
    live.start()
    assert client.flush(10.0)
    assert client.close() == 0
    assert numbers(live) == list(range(100)) + list(range(100, 351))



def test_one_line_batches_keep_their_bytes_on_the_ndjson_path(live: LiveServer) -> None:
    """One-line events travel as NDJSON (faster to split); bytes are sealed unchanged."""
    raws = [b'{"n":1,  "x" : "a"}', b'{ "n" : 2 }', b'{"n":3,"t":"\\u00e9"}']
    with AuditsealClient(live.url, live.ingest_key) as client:
        results = client.send_now(raws)
    assert live.service is not None
    live.service.writer.publish()  # durable already; seal now to read the entries back
    reader = live.service.reader()
    indexes = [r.index for r in results if isinstance(r, Delivery)]
    assert len(indexes) == 3
    assert [reader.entry(i).split(b"\n", 1)[1] for i in indexes] == raws


def test_a_lost_answer_is_retried_without_sealing_twice(live: LiveServer,
                                                        proxy: FaultProxyDouble) -> None:
    """The service sealed the batch, the answer never came back: the retry is replayed."""
    proxy.faults = ["lose", 503, "lose"]
    with AuditsealClient(proxy.url, live.ingest_key, backoff_initial_s=0.01) as client:
        results = client.send_now([{"n": 0}, {"n": 1}])
    assert [status for _, status in proxy.seen] == [-200, 503, -200, 200]
    assert len(set(proxy.keys)) == 1  # one key, every attempt
    assert proxy.keys[0] is not None
    assert all(isinstance(r, Delivery) for r in results)
    assert numbers(live) == [0, 1]  # sealed once


def test_background_sender_keeps_its_key_across_retries(live: LiveServer,
                                                        proxy: FaultProxyDouble) -> None:
    proxy.faults = ["lose", "drop"]
    with AuditsealClient(proxy.url, live.ingest_key, backoff_initial_s=0.01,
                         batch_max_events=5) as client:
        for n in range(10):
            client.send({"n": n})
        assert client.flush(10.0)
    first, second = proxy.keys[0], proxy.keys[-1]
    assert proxy.keys == [first, first, first, second]
    assert first != second  # each batch its own key
    assert numbers(live) == list(range(10))


def test_split_halves_get_their_own_keys(live: LiveServer, proxy: FaultProxyDouble) -> None:
    # Too large (as a real limit would say again on every attempt); the first half is
    # forwarded, the second half's answer lost.
    proxy.faults = [413, "forward", "lose", 413]
    with AuditsealClient(proxy.url, live.ingest_key, backoff_initial_s=0.01) as client:
        results = client.send_now([{"n": n} for n in range(4)])
    batch, first, second = proxy.keys[:3]
    assert batch is not None
    assert (first, second) == (batch + ".0", batch + ".1")
    # The whole batch was retried after the lost answer: 413 again, both halves again,
    # under the same keys, so the first half was replayed rather than sealed twice.
    assert proxy.keys[3:] == [batch, first, second]
    assert all(isinstance(r, Delivery) for r in results)
    assert numbers(live) == [0, 1, 2, 3]


def test_a_batch_sealed_before_a_client_crash_is_not_sealed_again(live: LiveServer,
                                                                  tmp_path: Path) -> None:
    """Sent, sealed, then the application died before recording the delivery."""
    buffer = DiskBuffer(tmp_path / "buffer")
    for n in range(3):
        buffer.append(b'{"n":%d}' % n)
    batch, key = buffer.claim(10)
    buffer.sync()
    sent = httpx.post(f"{live.url}/v1/events", content=b"\n".join(batch) + b"\n",
                      headers={"Authorization": f"Bearer {live.ingest_key}",
                               "Content-Type": "application/x-ndjson", "Idempotency-Key": key})
    assert sent.status_code == 200
    buffer.close()  # no ack: the crash
    with AuditsealClient(live.url, live.ingest_key, buffer_dir=tmp_path / "buffer") as client:
        client.send({"n": 3})
        assert client.flush(10.0)
    assert numbers(live) == [0, 1, 2, 3]
