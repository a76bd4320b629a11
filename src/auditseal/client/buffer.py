"""The client's send queue: events waiting for the service, in memory or in an on-disk buffer.

Concept: the *delivery queue* of the client SDK (issue 5, "Client SDK": "an on-disk buffer so
an outage of the service loses nothing"). Both queues keep events in arrival order and are
used the same way by the sender thread: :meth:`claim` the oldest events as a batch, send
them, then :meth:`ack` them, so an event leaves the queue only after the service made it
durable. A claimed batch carries an ``Idempotency-Key`` (docs/api.md, "Idempotent
retries"): until it is acked, every claim returns the same events with the same key, so
each retry of the batch is one the service recognises and answers without sealing again.

:class:`DiskBuffer` is an append-only journal in a directory::

    DIR/lock                          flock'ed while a client uses the directory
    DIR/<first seq, 20 digits>.seg    segments of frames: b"AS" | u32 length | u32 CRC-32 | event
    DIR/acked                         the sequence number of the first event not yet delivered
    DIR/batch                         the batch in delivery: "<first seq> <count> <key>"

Events are written (and flushed to the OS) by ``append`` before ``send`` returns, so they
survive a crash of the application; :meth:`DiskBuffer.sync` fsyncs them, which the sender
does before every delivery and on close, so they survive a crash of the machine too. The
``acked`` watermark is replaced atomically after each delivery; a restart replays every
event after it. A torn frame at the end of the last segment (a crash mid-write) is cut off.
The batch being delivered is recorded (fsynced) in ``batch`` before it is first sent, and a
restart that finds it unacked claims exactly those events again under the same key: a crash
between the service's answer and the watermark write sends that batch again, and the
service, which remembered its answer, seals nothing twice (within its retention window,
24 h by default; past it, delivery of that one batch is at least once).
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import secrets
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Protocol

from auditseal.errors import ConfigError

__all__ = ["DiskBuffer", "EventQueue", "MemoryQueue", "new_batch_key"]

_FRAME = struct.Struct(">2sII")
_MAGIC = b"AS"
_SUFFIX = ".seg"
_log = logging.getLogger(__name__)


def new_batch_key() -> str:
    """A fresh random ``Idempotency-Key`` for one batch (128 bits, 32 hex characters)."""
    return secrets.token_hex(16)


class EventQueue(Protocol):
    """Events waiting for delivery, oldest first."""

    def append(self, data: bytes) -> None:
        """Add an event at the end."""
        ...

    def peek(self, limit: int) -> list[bytes]:
        """The oldest ``limit`` events (fewer if fewer wait), without removing them."""
        ...

    def claim(self, limit: int) -> tuple[list[bytes], str]:
        """The next batch (at most ``limit`` of the oldest events) and its key.

        Until :meth:`ack`, every claim returns the same events with the same key.
        """
        ...

    def ack(self, count: int) -> None:
        """Remove the oldest ``count`` events: they were delivered (or refused for good)."""
        ...

    def sync(self) -> None:
        """Make every appended event durable."""
        ...

    def close(self) -> None:
        """Release files; events not yet acked stay for the next run (on disk)."""
        ...

    def __len__(self) -> int:
        """The number of events waiting."""
        ...


class MemoryQueue:
    """A bounded in-memory queue: what a client without ``buffer_dir`` uses."""

    def __init__(self) -> None:
        """An empty queue."""
        self._events: collections.deque[bytes] = collections.deque()
        self._claimed: tuple[int, str] | None = None  # (count, key) until acked

    def append(self, data: bytes) -> None:
        """Add an event at the end."""
        self._events.append(data)

    def peek(self, limit: int) -> list[bytes]:
        """The oldest ``limit`` events."""
        return [self._events[i] for i in range(min(limit, len(self._events)))]

    def claim(self, limit: int) -> tuple[list[bytes], str]:
        """The next batch and its key (the same until acked)."""
        if self._claimed is None:
            self._claimed = (min(limit, len(self._events)), new_batch_key())
        count, key = self._claimed
        return self.peek(count), key

    def ack(self, count: int) -> None:
        """Drop the oldest ``count`` events."""
        self._claimed = None
        for _ in range(count):
            self._events.popleft()

    def sync(self) -> None:
        """Nothing to do in memory."""

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        """The number of events waiting."""
        return len(self._events)


class DiskBuffer:
    """The append-only on-disk journal described in the module docstring."""

    def __init__(self, directory: str | Path, *, segment_bytes: int = 16 << 20) -> None:
        """Open (creating) the buffer in ``directory`` and recover what a last run left.

        Raises:
            ConfigError: another process holds the directory.
        """
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._lock_file = (self.dir / "lock").open("a+b")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise ConfigError(f"buffer directory {self.dir} is in use by another client") from None
        self._acked = self._read_acked()
        self._segments = self._recover()
        self._next = self._segments[-1][0] + self._count(self._segments[-1][1], repair=True)
        self._acked = min(max(self._acked, self._segments[0][0]), self._next)
        self._writer: BinaryIO = self._segments[-1][1].open("ab")
        self._cache: list[tuple[int, bytes]] = []  # (sequence number, event) read, not acked
        self._reader: BinaryIO | None = None
        self._read_segment = -1
        self._read_seq = self._acked  # sequence number of the next frame to read
        self._open_reader_at(self._acked)
        self._claimed = self._read_batch()  # (count, key) of the batch in delivery

    # --- public API ----------------------------------------------------------------------

    def append(self, data: bytes) -> None:
        """Write an event frame and flush it to the OS."""
        if self._writer.tell() >= self._segment_bytes:
            self._rotate()
        self._writer.write(_FRAME.pack(_MAGIC, len(data), zlib.crc32(data)) + data)
        self._writer.flush()
        self._next += 1

    def peek(self, limit: int) -> list[bytes]:
        """The oldest ``limit`` undelivered events, read from the journal."""
        while len(self._cache) < limit and self._read_seq < self._next:
            frame = self._read_frame()
            if frame is None:
                break
            self._cache.append(frame)
        return [data for _, data in self._cache[:limit]]

    def claim(self, limit: int) -> tuple[list[bytes], str]:
        """The next batch and its key; recorded durably in ``batch`` before it is returned.

        A batch a previous run claimed and did not ack is claimed again as it was.
        """
        if self._claimed is None:
            count = len(self.peek(limit))
            key = new_batch_key()
            _replace_durably(self.dir / "batch", b"%d %d %s\n" % (self._acked, count,
                                                                  key.encode()))
            self._claimed = (count, key)
        count, key = self._claimed
        return self.peek(count), key

    def ack(self, count: int) -> None:
        """Record ``count`` more events as delivered and drop fully delivered segments."""
        self._claimed = None  # the ``batch`` file now names a delivered batch: ignored
        if count <= 0:
            return
        # The watermark follows sequence numbers, not counts, so events lost to a corrupt
        # segment (skipped by the reader) do not hold it back.
        self._acked = self._cache[count - 1][0] + 1
        del self._cache[:count]
        _replace_durably(self.dir / "acked", b"%d\n" % self._acked)
        while len(self._segments) > 1 and self._segments[1][0] <= self._acked:
            _, path = self._segments.pop(0)
            path.unlink(missing_ok=True)
            self._read_segment -= 1

    def sync(self) -> None:
        """Fsync the segment being written."""
        self._writer.flush()
        os.fsync(self._writer.fileno())

    def close(self) -> None:
        """Fsync and release the directory."""
        self.sync()
        self._writer.close()
        if self._reader is not None:
            self._reader.close()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    def __len__(self) -> int:
        """Events appended and not yet acked, over all runs."""
        return self._next - self._acked

    # --- recovery ------------------------------------------------------------------------

    def _read_acked(self) -> int:
        try:
            return int((self.dir / "acked").read_text().strip() or "0")
        except FileNotFoundError:
            return 0
        except ValueError:
            raise ConfigError(f"{self.dir / 'acked'} is corrupt") from None

    def _read_batch(self) -> tuple[int, str] | None:
        """The unacked batch a last run claimed, if ``batch`` names one starting here."""
        try:
            first, count, key = (self.dir / "batch").read_text("ascii").split()
            claimed = (int(first), int(count), key)
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        if claimed[0] != self._acked or not 0 < claimed[1] <= len(self):
            return None
        return claimed[1], claimed[2]

    def _recover(self) -> list[tuple[int, Path]]:
        segments = sorted(
            (int(path.stem), path) for path in self.dir.glob("*" + _SUFFIX) if path.stem.isdigit()
        )
        if not segments:
            path = self._segment_path(self._acked)
            path.touch()
            return [(self._acked, path)]
        # Drop segments whose events were all delivered (the next one starts at or below
        # the watermark): a crash after ``acked`` was written and before the unlink.
        while len(segments) > 1 and segments[1][0] <= self._acked:
            segments.pop(0)[1].unlink(missing_ok=True)
        return segments

    def _count(self, path: Path, *, repair: bool) -> int:
        """Frames in a segment; with ``repair``, cut a torn or corrupt tail off."""
        count = 0
        good = 0
        with path.open("rb") as src:
            while _read_one(src) is not None:
                count += 1
                good = src.tell()
        if repair and path.stat().st_size != good:
            _log.warning("auditseal buffer %s: cutting %d bytes of a torn last frame",
                         path, path.stat().st_size - good)
            os.truncate(path, good)
        return count

    def _segment_path(self, first: int) -> Path:
        return self.dir / f"{first:020d}{_SUFFIX}"

    def _rotate(self) -> None:
        self.sync()
        self._writer.close()
        path = self._segment_path(self._next)
        self._segments.append((self._next, path))
        self._writer = path.open("ab")

    # --- reading -------------------------------------------------------------------------

    def _open_reader_at(self, seq: int) -> None:
        index = max(i for i, (first, _) in enumerate(self._segments) if first <= seq or i == 0)
        if self._reader is not None:
            self._reader.close()
        first, path = self._segments[index]
        self._reader = path.open("rb")
        self._read_segment = index
        for _ in range(seq - first):
            if _read_one(self._reader) is None:
                break
        self._read_seq = seq

    def _read_frame(self) -> tuple[int, bytes] | None:
        assert self._reader is not None
        while True:
            frame = _read_one(self._reader)
            if frame is not None:
                self._read_seq += 1
                return self._read_seq - 1, frame
            if self._read_segment + 1 >= len(self._segments):
                return None  # caught up with the writer
            next_first = self._segments[self._read_segment + 1][0]
            if self._read_seq < next_first:
                # A corrupt frame inside an older segment: what follows it is unreadable.
                _log.error("auditseal buffer: %d events lost in a corrupt segment",
                           next_first - self._read_seq)
            self._open_reader_at(next_first)


def _replace_durably(path: Path, data: bytes) -> None:
    """Replace a small file atomically, its bytes fsynced first."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def _read_one(src: BinaryIO) -> bytes | None:
    """Read one frame; None at the end or at a torn or corrupt frame (position restored)."""
    start = src.tell()
    header = src.read(_FRAME.size)
    if len(header) == _FRAME.size:
        magic, length, crc = _FRAME.unpack(header)
        if magic == _MAGIC:
            data = src.read(length)
            if len(data) == length and zlib.crc32(data) == crc:
                return data
    src.seek(start)
    return None
