"""The blob collector: tail growing export blobs and seal each record exactly once.

Azure Monitor's diagnostic settings append JSON lines to one append blob per resource and
hour (``PT1H.json``, see docs/reference azure.md section 3). Blobs grow through their
hour, and late records make earlier hours' blobs grow too, so every round of the
collector lists the blobs and, for each one longer than its cursor position:

1. reads only the new bytes (a range read from the cursor offset);
2. keeps them up to the last newline: a half-written last line stays in the blob and is
   read again next round. Only once a blob has not changed for ``settle_s`` is an
   unterminated tail taken as final (sealed if valid, rejected if not);
3. splits them into records (``auditseal.ingest.records``: exact bytes, or a rejection
   with a reason) and seals the records with their position in each entry's header;
4. writes the rejected ones to the rejects file, then the cursor (``cursor.py``), only
   after the records are durable; then publishes a signed checkpoint.

On start, ``reconcile`` scans the log from the cursor's ``log_size`` and marks every
position it finds as sealed, so a crash anywhere in 3-4 yields neither duplicates nor
gaps. The source is only read, never written: it may sit under a WORM policy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from auditseal.clock import Clock
from auditseal.core.entry import decode_entry, format_time
from auditseal.errors import ConfigError, ObjectNotFound, StorageUnavailable
from auditseal.ingest.cursor import (
    BlobPosition,
    Cursor,
    RejectedRecord,
    RejectsFile,
    load_cursor,
    opens_document,
    parse_position,
    position_source,
    save_cursor,
    split_chunk,
)
from auditseal.ingest.records import Record, Rejected
from auditseal.log.reader import LogReader
from auditseal.log.writer import LogWriter
from auditseal.verify.source import LogSource

_FLUSH_BYTES = 8 << 20  # append what a round has read once this much is waiting


@dataclass(frozen=True)
class BlobInfo:
    """One source blob as listed.

    Attributes:
        key: ``<container>/<blob name>``.
        size: bytes in the blob when listed (append blobs only grow).
        last_modified: when it last changed (the service's clock).
    """

    key: str
    size: int
    last_modified: datetime


class BlobSource(Protocol):
    """Read-only access to the blobs a collector tails (``azure_storage`` implements it)."""

    @property
    def account(self) -> str:
        """The storage account name (part of every sealed position)."""
        ...

    def list_blobs(self) -> list[BlobInfo]:
        """Every blob to tail, with its current size."""
        ...

    def read(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start <= i < end`` of a blob; ObjectNotFound if it is gone."""
        ...


@dataclass(frozen=True)
class CollectorConfig:
    """How a collector polls.

    Attributes:
        interval_s: seconds between rounds in polling mode.
        settle_s: an unterminated last line is taken as final once its blob has not
            changed for this long (Azure writes whole lines; this only ends a blob that
            was left without a final newline).
        read_bytes: most new bytes read from one blob per round (memory bound).
        fsync: make the cursor and rejects file durable (off only in throwaway tests).
    """

    interval_s: float = 1.0
    settle_s: float = 3600.0
    read_bytes: int = 16 << 20
    fsync: bool = True

    def __post_init__(self) -> None:
        if not 0.01 <= self.interval_s <= 86400:
            raise ConfigError("interval_s must be between 0.01 and 86400 seconds")
        if self.settle_s < 0:
            raise ConfigError("settle_s must not be negative")
        if self.read_bytes < 1 << 16:
            raise ConfigError("read_bytes must be at least 64 KiB")


@dataclass
class RoundReport:
    """What one round (or a whole ``collect_once``) did."""

    sealed: int = 0
    already_sealed: int = 0
    rejected: list[RejectedRecord] = field(default_factory=list)
    blobs_listed: int = 0
    blobs_read: int = 0
    bytes_consumed: int = 0
    first_index: int | None = None
    last_index: int | None = None
    warnings: list[str] = field(default_factory=list)

    def add(self, other: RoundReport) -> None:
        """Fold ``other`` (a later round) into this one."""
        self.sealed += other.sealed
        self.already_sealed += other.already_sealed
        self.rejected.extend(other.rejected)
        self.blobs_listed = max(self.blobs_listed, other.blobs_listed)
        self.blobs_read += other.blobs_read
        self.bytes_consumed += other.bytes_consumed
        if self.first_index is None:
            self.first_index = other.first_index
        self.last_index = other.last_index if other.last_index is not None else self.last_index
        self.warnings.extend(other.warnings)


class Collector:
    """Tails the blobs of one source into one log; the only collector of that source."""

    def __init__(
        self,
        source: BlobSource,
        writer: LogWriter,
        log_objects: LogSource,
        *,
        state_dir: Path,
        name: str,
        clock: Clock,
        config: CollectorConfig | None = None,
    ) -> None:
        """Prepare to collect; call ``reconcile`` before the first round.

        Args:
            source: the blobs to tail.
            writer: an open writer of the log (it holds the writer lock).
            log_objects: the log's objects, to read back sealed entries.
            state_dir: where the cursor and rejects file live (the log's private state).
            name: the collector's name, e.g. "azure-storage-<account>" (file names).
            clock: the wall clock (settling, rejection times).
            config: polling settings.
        """
        self.source = source
        self.writer = writer
        self.config = config or CollectorConfig()
        self._objects = log_objects
        self._clock = clock
        self.cursor_path = state_dir / f"{name}.json"
        self.rejects = RejectsFile(state_dir / f"{name}.rejects.jsonl", fsync=self.config.fsync)
        self._positions: dict[str, BlobPosition] = {}
        self._ahead: dict[str, set[int]] = {}  # positions found sealed beyond the cursor
        self._reconciled = False

    # -- start -----------------------------------------------------------------------------

    def reconcile(self) -> int:
        """Load the cursor and mark what the log holds beyond it as sealed.

        Returns the number of log entries scanned.

        Raises:
            ConfigError: the cursor is damaged or belongs to a longer (another) log.
        """
        cursor = load_cursor(self.cursor_path)
        checkpoint = self.writer.checkpoint
        size = checkpoint.size if checkpoint is not None else 0
        if cursor.log_size > size:
            raise ConfigError(
                f"collector cursor {self.cursor_path} was written when the log held "
                f"{cursor.log_size} entries, but it holds {size}: the cursor belongs to "
                "another log; move it aside to rescan this log (nothing is sealed twice)"
            )
        self._positions = dict(cursor.blobs)
        self._ahead = {}
        scanned = 0
        if checkpoint is not None and cursor.log_size < size:
            account = self.source.account
            for _, entry in LogReader(self._objects, checkpoint).entries(cursor.log_size):
                scanned += 1
                found = parse_position(decode_entry(entry).header.source, account)
                if found is None:
                    continue
                key, offset = found
                if offset >= self._positions.get(key, BlobPosition()).offset:
                    self._ahead.setdefault(key, set()).add(offset)
        self._reconciled = True
        return scanned

    # -- rounds ----------------------------------------------------------------------------

    def poll(self, blobs: Sequence[BlobInfo] | None = None) -> RoundReport:
        """One round: read what is new in every blob, seal it, move the cursor.

        Args:
            blobs: the listing to work from (default: list the source now).
        """
        if not self._reconciled:
            raise RuntimeError("call reconcile() before the first round")
        listing = self.source.list_blobs() if blobs is None else list(blobs)
        report = RoundReport(blobs_listed=len(listing))
        now = self._clock.now()
        events: list[bytes] = []
        sources: list[str] = []
        waiting = 0
        moved: dict[str, BlobPosition] = {}
        for blob in sorted(listing, key=lambda b: b.key):
            position = self._positions.get(blob.key, BlobPosition())
            if blob.size < position.offset:
                report.warnings.append(
                    f"{blob.key}: blob shrank from {position.offset} to {blob.size} bytes "
                    "(deleted and recreated?); its new bytes are not read"
                )
                continue
            if blob.size == position.offset:
                continue
            settled = (now - blob.last_modified).total_seconds() >= self.config.settle_s
            try:
                chunk, document = self._read_new(blob, position.offset, settled)
            except ObjectNotFound:
                report.warnings.append(f"{blob.key}: blob vanished while being read")
                continue
            if not chunk:
                continue
            report.blobs_read += 1
            report.bytes_consumed += len(chunk)
            split = split_chunk(chunk, document=document, at_start=position.offset == 0)
            waiting += self._queue(
                blob.key, position, split, events=events, sources=sources, report=report
            )
            moved[blob.key] = BlobPosition(
                position.offset + len(chunk), position.line + chunk.count(b"\n")
            )
            if waiting >= _FLUSH_BYTES:
                self._append(events, sources, report)
                waiting = 0
        self._append(events, sources, report)
        if moved or report.rejected:
            # Durable order: records (above), then rejections, then the cursor.
            self.rejects.add(report.rejected)
            self._positions.update(moved)
            for key, position in moved.items():
                ahead = self._ahead.get(key)
                if ahead is not None:
                    ahead.difference_update([o for o in ahead if o < position.offset])
                    if not ahead:
                        del self._ahead[key]
            save_cursor(
                self.cursor_path,
                Cursor(log_size=self.writer.size, blobs=self._positions),
                fsync=self.config.fsync,
            )
        if report.sealed:
            self.writer.publish()
        return report

    def collect_once(self) -> RoundReport:
        """Seal everything the blobs hold now (as listed once), in as many rounds as needed."""
        listing = self.source.list_blobs()
        total = RoundReport(blobs_listed=len(listing))
        while True:
            report = self.poll(listing)
            total.add(report)
            if report.bytes_consumed == 0:
                return total

    def run(
        self,
        stop: threading.Event,
        on_round: Callable[[RoundReport], None] | None = None,
        on_error: Callable[[StorageUnavailable], None] | None = None,
    ) -> RoundReport:
        """Poll every ``interval_s`` until ``stop`` is set; returns the totals.

        A transient storage failure (``StorageUnavailable``) is reported to ``on_error``
        and retried next round with backoff; other errors end the run.
        """
        total = RoundReport()
        delay = self.config.interval_s
        while not stop.is_set():
            try:
                report = self.poll()
            except StorageUnavailable as exc:
                if on_error is not None:
                    on_error(exc)
                delay = min(delay * 2, max(30.0, self.config.interval_s))
            else:
                delay = self.config.interval_s
                total.add(report)
                if on_round is not None:
                    on_round(report)
            stop.wait(delay)
        return total

    # -- one blob --------------------------------------------------------------------------

    def _read_new(self, blob: BlobInfo, start: int, settled: bool) -> tuple[bytes, bool]:
        """The new bytes of ``blob`` from ``start`` that can be consumed now, and whether
        they are one whole JSON document rather than JSON lines."""
        step = self.config.read_bytes
        end = min(blob.size, start + step)
        data = self.source.read(blob.key, start, end)
        while b"\n" not in data and end < blob.size:  # a line longer than one read
            more = min(blob.size, end + step)
            data += self.source.read(blob.key, end, more)
            end = more
        cut = data.rfind(b"\n") + 1
        if settled and end == blob.size:
            cut = len(data)  # nothing has changed for settle_s: the tail is final
        if cut and start == 0 and opens_document(data):
            # A whole-document blob ({"records": [...]}, the pre-2018 format) can only be
            # split complete: read all of it, and only once it has stopped changing.
            if not settled:
                return b"", True
            if end < blob.size:
                data += self.source.read(blob.key, end, blob.size)
            return data, True
        return data[:cut], False

    def _queue(
        self,
        key: str,
        position: BlobPosition,
        split: tuple[list[Record], list[Rejected]],
        *,
        events: list[bytes],
        sources: list[str],
        report: RoundReport,
    ) -> int:
        """Queue the records of a chunk that are not sealed yet; returns bytes queued."""
        records, rejected = split
        account = self.source.account
        ahead = self._ahead.get(key, set())
        queued = 0
        seen = format_time(self._clock.now())
        for record in records:
            offset = position.offset + record.offset
            if offset in ahead:
                report.already_sealed += 1
                continue
            source = position_source(account, key, offset)
            limit = self.writer.max_event_bytes(source)
            if len(record.data) > limit:
                self._reject(report, RejectedRecord(
                    key, offset, position.line + record.line - 1,
                    f"event is {len(record.data)} bytes; the most one entry holds is {limit} "
                    "bytes (tlog-tiles limits an entry to 65,535 bytes)",
                    record.data[:80].decode("utf-8", "replace"), seen))
                continue
            events.append(record.data)
            sources.append(source)
            queued += len(record.data)
        for bad in rejected:
            self._reject(report, RejectedRecord(
                key, position.offset + bad.offset, position.line + bad.line - 1, bad.reason,
                bad.excerpt, seen))
        return queued

    def _reject(self, report: RoundReport, record: RejectedRecord) -> None:
        if (record.blob, record.offset) not in self.rejects:  # reported in an earlier run
            report.rejected.append(record)

    def _append(self, events: list[bytes], sources: list[str], report: RoundReport) -> None:
        if not events:
            return
        indexes = self.writer.append(events, sources=sources)
        report.sealed += len(indexes)
        if report.first_index is None:
            report.first_index = indexes[0]
        report.last_index = indexes[-1]
        events.clear()
        sources.clear()
