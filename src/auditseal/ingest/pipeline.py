"""From records to sealed entries: batching, per-record rejection, progress.

A bad record is reported with its line and reason and never stops the good ones; an
event too large for one entry is rejected the same way, before anything is written.
:func:`ingest` takes records one by one; :func:`ingest_batches` takes the columns of
:func:`auditseal.ingest.records.iter_batches` (what ``auditseal append`` uses), where
every per-event check is a whole-batch check in C unless the batch holds an event too
large, and events reach the writer as views into the input, never copied on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from auditseal.ingest.records import Record, RecordBatch, Rejected
from auditseal.log.writer import LogWriter


@dataclass
class IngestSummary:
    """What one ingest run did."""

    sealed: int = 0
    first_index: int | None = None
    last_index: int | None = None
    rejected: list[Rejected] = field(default_factory=list)
    bytes_in: int = 0


def ingest(
    writer: LogWriter,
    records: Iterable[Record | Rejected],
    *,
    source: str | None,
    batch_entries: int = 4096,
    on_batch: Callable[[IngestSummary], None] | None = None,
) -> IngestSummary:
    """Append every valid record durably, in input order; collect the rejected ones."""
    summary = IngestSummary()
    limit = writer.max_event_bytes(source)
    batch: list[bytes] = []

    def flush() -> None:
        if not batch:
            return
        indexes = writer.append(batch, source=source)
        summary.sealed += len(indexes)
        if summary.first_index is None:
            summary.first_index = indexes[0]
        summary.last_index = indexes[-1]
        batch.clear()
        if on_batch is not None:
            on_batch(summary)

    for item in records:
        if isinstance(item, Rejected):
            summary.rejected.append(item)
            continue
        summary.bytes_in += len(item.data)
        if len(item.data) > limit:
            summary.rejected.append(_too_large(item, limit))
            continue
        batch.append(item.data)
        if len(batch) >= batch_entries:
            flush()
    flush()
    return summary


def ingest_batches(
    writer: LogWriter,
    batches: Iterable[RecordBatch],
    *,
    source: str | None,
    batch_entries: int = 4096,
    on_batch: Callable[[IngestSummary], None] | None = None,
    overlap: bool = True,
) -> IngestSummary:
    """Like :func:`ingest`, over record batches: the same appends and the same summary.

    With ``overlap``, one append runs in a worker thread while this one splits the next
    batch: the append spends much of its time waiting for fsync, which then hides the
    splitting. Appends stay one at a time and in input order, and an event counts as
    sealed only once its append has returned (durable), as in :func:`ingest`. Without
    it everything runs in this thread (what a profiler that sees one thread needs).
    """
    summary = IngestSummary()
    limit = writer.max_event_bytes(source)
    pending: list[bytes | memoryview] = []
    running: Future[list[int]] | None = None

    def finish() -> None:
        nonlocal running
        if running is None:
            return
        indexes, running = running.result(), None
        summary.sealed += len(indexes)
        if summary.first_index is None:
            summary.first_index = indexes[0]
        summary.last_index = indexes[-1]
        if on_batch is not None:
            on_batch(summary)

    def flush(events: list[bytes | memoryview]) -> None:
        nonlocal running
        finish()
        if overlap:
            running = worker.submit(writer.append, events, source=source)
        else:
            running = Future()
            running.set_result(writer.append(events, source=source))

    with ThreadPoolExecutor(1, thread_name_prefix="auditseal-ingest") as worker:
        for batch in batches:
            summary.rejected.extend(_admit(batch, limit, summary, pending))
            while len(pending) >= batch_entries:
                flush(pending[:batch_entries])
                del pending[:batch_entries]
        if pending:
            flush(pending)
        finish()
    return summary


def _admit(
    batch: RecordBatch, limit: int, summary: IngestSummary, pending: list[bytes | memoryview]
) -> list[Rejected]:
    """Queue the batch's events that fit in an entry; return its rejections, in order."""
    events = batch.events
    summary.bytes_in += sum(map(len, events))
    if not events or max(map(len, events)) <= limit:  # one check in C for the batch
        pending.extend(events)
        return batch.rejected
    pending.extend(event for event in events if len(event) <= limit)
    too_large = [_too_large(batch.record(i), limit)
                 for i, event in enumerate(events) if len(event) > limit]
    return sorted([*batch.rejected, *too_large], key=lambda r: r.offset)


def _too_large(item: Record, limit: int) -> Rejected:
    return Rejected(
        line=item.line,
        offset=item.offset,
        reason=f"event is {len(item.data)} bytes; the most one entry holds is "
        f"{limit} bytes (tlog-tiles limits an entry to 65,535 bytes)",
        excerpt=item.data[:80].decode("utf-8", "replace"),
    )
