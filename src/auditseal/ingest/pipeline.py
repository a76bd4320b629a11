"""From records to sealed entries: batching, per-record rejection, progress.

A bad record is reported with its line and reason and never stops the good ones; an
event too large for one entry is rejected the same way, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from auditseal.ingest.records import Record, Rejected
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
            summary.rejected.append(
                Rejected(
                    line=item.line,
                    offset=item.offset,
                    reason=f"event is {len(item.data)} bytes; the most one entry holds is "
                    f"{limit} bytes (tlog-tiles limits an entry to 65,535 bytes)",
                    excerpt=item.data[:80].decode("utf-8", "replace"),
                )
            )
            continue
        batch.append(item.data)
        if len(batch) >= batch_entries:
            flush()
    flush()
    return summary
