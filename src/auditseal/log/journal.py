"""The write-ahead journal: where an event becomes durable before it is acknowledged.

Sealing an entry means writing its bundle, tiles and a signed checkpoint; doing that for
every event would cost several object writes and a signature each. Instead the writer
appends a batch of entries to this local journal with one ``fdatasync`` (group commit),
acknowledges them, and a publisher seals them into the write-once tree moments later. If
the process dies in between, the next start replays the journal (roll forward), so an
acknowledged entry is never lost. Journal files are private mutable state on the local
disk, never part of the sealed tree, and are deleted once everything in them is sealed.

Segment file ``<first index, 20 digits>.wal``: the magic ``ASJ1`` then records, each
``uint32 length || uint32 crc32(entry) || entry`` (big-endian). A crash can leave only
the last record of the last segment torn (it was never acknowledged); recovery cuts it off.

A segment is created by the first append that needs it, not when the previous one ends:
large batches are sealed without the journal (``skip_to``), and creating, fsyncing and
deleting an empty segment for each of them cost three fsyncs per batch for nothing.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditseal.errors import ObjectCorrupt, ObjectMissing, StorageError
from auditseal.storage.durable import fsync_dir

_MAGIC = b"ASJ1"
_RECORD = struct.Struct(">II")
_SUFFIX = ".wal"


@dataclass(frozen=True)
class Recovery:
    """What opening the journal found."""

    pending: list[bytes]
    """Entries at indexes >= the published size, in order: to be sealed now."""
    torn_bytes: int
    """Bytes cut from the end of the last segment (an unacknowledged, half-written batch)."""


class Journal:
    """Append-only local journal of entries, in segments named by their first index."""

    def __init__(self, directory: Path, *, fsync: bool = True, segment_bytes: int = 64 << 20):
        """Use ``directory`` (created if needed); call ``recover`` before ``append``."""
        self._dir = directory
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._fd: int | None = None  # the current segment; None until an append needs one
        self._segment_first: int | None = None
        self._segment_size = 0
        self._recovered = False
        self._broken: OSError | None = None
        # append (the committer) and release (the publisher) run on different threads;
        # release must never rotate and delete a segment an append is still writing to.
        self._lock = threading.Lock()
        self.next_index = 0
        directory.mkdir(parents=True, exist_ok=True)

    # -- recovery --------------------------------------------------------------------------

    def recover(self, published_size: int) -> Recovery:
        """Read every segment, cut a torn tail, and return the entries not yet sealed.

        Raises:
            ObjectMissing: entries between the published size and the journal are gone.
            ObjectCorrupt: a record before the last one is damaged.
        """
        segments = self._segments()
        pending: list[bytes] = []
        torn = 0
        expected: int | None = None  # next index, once a segment holds unsealed entries
        current: tuple[int, Path] | None = None
        for position, (first, path) in enumerate(segments):
            last = position == len(segments) - 1
            entries, good_bytes, file_bytes = _read_segment(path, tolerate_tail=last)
            if good_bytes < file_bytes:
                torn = file_bytes - good_bytes
                _truncate(path, good_bytes, fsync=self._fsync)
            end = first + len(entries)
            if expected is None:
                if end <= published_size:
                    continue  # all sealed; release() deletes it
                if first > published_size:
                    raise ObjectMissing(
                        what="missing",
                        where=f"journal {self._dir}",
                        detail=f"entries {published_size}..{first - 1} were acknowledged "
                        "but are neither sealed nor in the journal",
                    )
                expected = first
            if first != expected:
                raise ObjectMissing(
                    what="missing",
                    where=f"journal {path.name}",
                    detail=f"expected a segment starting at entry {expected}, found {first}",
                )
            pending.extend(entries[max(0, published_size - first) :])
            expected = end
            current = (first, path) if path.exists() else None
        self.next_index = published_size if expected is None else expected
        if current is not None:
            self._open_segment(*current)
        self._recovered = True
        return Recovery(pending=pending, torn_bytes=torn)

    # -- appending -------------------------------------------------------------------------

    def append(self, entries: Sequence[bytes]) -> int:
        """Make ``entries`` durable with one write and one fdatasync; return the first index."""
        with self._lock:
            return self._append(entries)

    def _append(self, entries: Sequence[bytes]) -> int:
        if not self._recovered:
            raise RuntimeError("Journal.recover must be called before append")
        if self._broken is not None:
            raise StorageError(
                f"the journal in {self._dir} failed earlier ({self._broken}); nothing more is "
                "accepted until the writer is reopened, which recovers it"
            )
        if self._fd is None:
            try:
                self._start_segment(self.next_index)
            except OSError as exc:
                raise StorageError(f"cannot start a journal segment in {self._dir}: {exc}") from exc
        assert self._fd is not None
        parts: list[bytes] = []
        for entry in entries:
            parts.append(_RECORD.pack(len(entry), zlib.crc32(entry)))
            parts.append(entry)
        data = b"".join(parts)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self._fsync:
                os.fdatasync(self._fd)
        except OSError as exc:
            # After a failed write or fsync the file's tail is unknown (a torn record would
            # hide every later record from recovery), so refuse further appends; reopening
            # recovers up to the last good record.
            self._broken = exc
            raise StorageError(f"journal write failed in {self._dir}: {exc}") from exc
        first = self.next_index
        self.next_index += len(entries)
        self._segment_size += len(data)
        return first

    def release(self, sealed_size: int) -> None:
        """Forget what is sealed: delete segments holding only entries below ``sealed_size``.

        When everything is sealed and the current segment has grown past the segment size,
        start a fresh segment so that the old one can go.
        """
        with self._lock:
            self._release(sealed_size)

    def _release(self, sealed_size: int) -> None:
        if self.next_index == sealed_size and self._segment_size >= self._segment_bytes:
            self._end_segment()  # everything in it is sealed; the next append starts one
        removed = False
        for first, path in self._segments():
            if first == self._segment_first:
                break
            path.unlink()  # only sealed entries: before the current segment, or no segment
            removed = True
        if self._fsync and removed:
            fsync_dir(self._dir)

    def skip_to(self, index: int) -> None:
        """Continue at ``index``: the entries below it were sealed without passing through.

        Segment names carry their first index, so the journal must never hold a gap: a
        new segment starts at ``index`` and the older ones, now all sealed, go.
        """
        with self._lock:
            if index < self.next_index:
                raise ValueError(f"cannot skip back from {self.next_index} to {index}")
            if index > self.next_index:
                self.next_index = index
                self._end_segment()  # all of it is sealed; a gap-free one starts at index
            self._release(index)

    def close(self) -> None:
        """Close the current segment."""
        self._recovered = False
        self._end_segment()

    # -- internals -------------------------------------------------------------------------

    def _segments(self) -> list[tuple[int, Path]]:
        return sorted(
            (int(path.stem), path)
            for path in self._dir.iterdir()
            if path.suffix == _SUFFIX and path.stem.isdigit()
        )

    def _start_segment(self, first: int) -> None:
        path = self._dir / f"{first:020d}{_SUFFIX}"
        if path.exists():
            # An empty segment left by a crash right after it was created.
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        os.write(fd, _MAGIC)
        if self._fsync:
            os.fsync(fd)
            fsync_dir(self._dir)
        self._end_segment()
        self._fd = fd
        self._segment_first = first
        self._segment_size = len(_MAGIC)

    def _end_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._segment_first, self._segment_size = None, None, 0

    def _open_segment(self, first: int, path: Path) -> None:
        self._end_segment()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._segment_first = first
        self._segment_size = path.stat().st_size


def _read_segment(path: Path, *, tolerate_tail: bool) -> tuple[list[bytes], int, int]:
    """Return (entries, bytes of whole records incl. magic, file size)."""
    data = path.read_bytes()
    if len(data) < len(_MAGIC):
        if tolerate_tail:
            return [], 0, len(data)
        raise ObjectCorrupt(what="truncated", where=f"journal {path.name}", detail="no header")
    if data[: len(_MAGIC)] != _MAGIC:
        raise ObjectCorrupt(what="corrupt", where=f"journal {path.name}", detail="bad magic")
    entries: list[bytes] = []
    offset = len(_MAGIC)
    header = _RECORD.size
    while offset < len(data):
        if offset + header > len(data):
            break
        length, crc = _RECORD.unpack_from(data, offset)
        end = offset + header + length
        if end > len(data):
            break
        entry = data[offset + header : end]
        if zlib.crc32(entry) != crc:
            break
        entries.append(entry)
        offset = end
    if offset < len(data) and not tolerate_tail:
        raise ObjectCorrupt(
            what="corrupt",
            where=f"journal {path.name} at byte {offset}",
            detail="a damaged record before the end of a closed segment",
        )
    return entries, offset, len(data)


def _truncate(path: Path, size: int, *, fsync: bool) -> None:
    if size < len(_MAGIC):
        path.unlink()
        return
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
