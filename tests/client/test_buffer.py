"""The client's on-disk buffer and in-memory queue (auditseal.client.buffer)."""

from __future__ import annotations

from pathlib import Path

import pytest

import auditseal.client as client_package
from auditseal.client.buffer import DiskBuffer, EventQueue, MemoryQueue
from auditseal.errors import ConfigError

EVENTS = [b'{"n":%d}' % n for n in range(10)]


@pytest.fixture(params=["memory", "disk"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> EventQueue:
    return MemoryQueue() if request.param == "memory" else DiskBuffer(tmp_path / "buf")


def test_peek_then_ack_in_order(queue: EventQueue) -> None:
    for event in EVENTS[:5]:
        queue.append(event)
    assert queue.peek(3) == EVENTS[:3]
    assert queue.peek(3) == EVENTS[:3]  # peeking does not consume
    queue.ack(2)
    assert len(queue) == 3
    queue.append(EVENTS[5])
    assert queue.peek(10) == EVENTS[2:6]
    queue.ack(4)
    assert len(queue) == 0
    assert queue.peek(10) == []
    queue.close()


def _filled(buf: DiskBuffer, events: list[bytes]) -> DiskBuffer:
    for event in events:
        buf.append(event)
    return buf


def test_disk_buffer_replays_only_unacked_after_reopen(tmp_path: Path) -> None:
    buf = _filled(DiskBuffer(tmp_path), EVENTS)
    buf.peek(4)
    buf.ack(4)
    buf.close()
    again = DiskBuffer(tmp_path)
    assert len(again) == 6
    assert again.peek(100) == EVENTS[4:]
    again.append(b'{"n":"new"}')
    assert again.peek(100) == [*EVENTS[4:], b'{"n":"new"}']
    again.close()


def test_disk_buffer_rotates_and_deletes_delivered_segments(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, segment_bytes=40)  # about two events per segment
    for event in EVENTS:
        buf.append(event)
    assert len(list(tmp_path.glob("*.seg"))) >= 4
    got = []
    while len(buf):
        batch = buf.peek(3)
        got += batch
        buf.ack(len(batch))
    assert got == EVENTS
    assert len(list(tmp_path.glob("*.seg"))) == 1  # only the one being written remains
    buf.close()
    reopened = DiskBuffer(tmp_path, segment_bytes=40)
    assert len(reopened) == 0
    reopened.close()


def test_disk_buffer_cuts_a_torn_last_frame(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path)
    buf.append(EVENTS[0])
    buf.append(EVENTS[1])
    buf.close()
    segment = next(tmp_path.glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:-3])  # a crash mid-write of the second
    again = DiskBuffer(tmp_path)
    assert again.peek(10) == [EVENTS[0]]
    again.append(EVENTS[2])
    assert again.peek(10) == [EVENTS[0], EVENTS[2]]
    again.close()


def test_disk_buffer_detects_a_corrupt_frame(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path)
    buf.append(b'{"n":"abc"}')
    buf.close()
    segment = next(tmp_path.glob("*.seg"))
    segment.write_bytes(segment.read_bytes().replace(b"abc", b"abd"))  # CRC no longer matches
    again = DiskBuffer(tmp_path)
    assert len(again) == 0
    again.close()


def test_disk_buffer_is_locked_to_one_client(tmp_path: Path) -> None:
    first = DiskBuffer(tmp_path)
    with pytest.raises(ConfigError, match="in use by another client"):
        DiskBuffer(tmp_path)
    first.close()
    DiskBuffer(tmp_path).close()


def test_corrupt_watermark_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "acked").write_text("not a number")
    with pytest.raises(ConfigError, match="corrupt"):
        DiskBuffer(tmp_path)


def test_public_names_are_pinned() -> None:
    assert client_package.__all__ == ["AuditLogHandler", "AuditsealClient", "Delivery",
                                        "DiskBuffer", "MemoryQueue", "Rejection",
                                        "verify_receipt"]


def test_claim_keeps_batch_and_key_until_acked(queue: EventQueue) -> None:
    for event in EVENTS[:5]:
        queue.append(event)
    batch, key = queue.claim(3)
    assert batch == EVENTS[:3]
    assert len(key) == 32
    queue.append(EVENTS[5])
    assert queue.claim(10) == (EVENTS[:3], key)  # a retry: the same events, the same key
    queue.ack(3)
    batch, other = queue.claim(10)
    assert batch == EVENTS[3:6]
    assert other != key
    queue.close()


def test_disk_buffer_claims_the_unacked_batch_again_after_reopen(tmp_path: Path) -> None:
    buf = _filled(DiskBuffer(tmp_path), EVENTS)
    buf.claim(2)
    buf.ack(2)
    batch, key = buf.claim(3)
    assert batch == EVENTS[2:5]
    buf.close()  # a crash after sending, before the ack
    again = DiskBuffer(tmp_path)
    assert again.claim(100) == (EVENTS[2:5], key)  # not re-formed as a batch of 8
    again.ack(3)
    again.close()
    third = DiskBuffer(tmp_path)
    batch, fresh = third.claim(100)
    assert batch == EVENTS[5:]
    assert fresh != key
    third.close()


@pytest.mark.parametrize("record", [None, "garbage", "2 9 toolong"],
                         ids=["delivered-batch", "garbage", "more-than-waiting"])
def test_disk_buffer_ignores_a_stale_or_bad_batch_record(tmp_path: Path,
                                                         record: str | None) -> None:
    buf = _filled(DiskBuffer(tmp_path), EVENTS[:4])
    _, key = buf.claim(2)
    buf.ack(2)
    buf.close()
    if record is not None:
        (tmp_path / "batch").write_text(record)
    again = DiskBuffer(tmp_path)
    batch, fresh = again.claim(10)
    assert (batch, fresh != key) == (EVENTS[2:4], True)
    again.close()
