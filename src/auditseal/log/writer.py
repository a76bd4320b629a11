"""The log writer: group-committed appends, then sealing into the write-once tree.

1. ``append`` encodes events as entries and joins the group commit: the caller that finds
   no commit running writes everything queued to the journal with one fdatasync and wakes
   the others. An append returns only once its entries are durable. A batch of at least
   ``seal_directly_from`` entries, on a store that creates a batch in order, is sealed at
   once instead (each byte written once; ``log.adopt`` covers a crash mid-seal).
2. ``publish`` (every ``publish_interval_s``, or directly) seals what is pending: bundles
   and hash tiles are created (never overwritten) in one batch, the checkpoint is signed,
   the head moved by compare-and-swap and the checkpoint kept in the history; then the
   journal forgets what is sealed.

A crash between 1 and 2 loses nothing: ``open`` replays the journal. Every object is a
pure function of the entries, so re-publishing after a crash is idempotent.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditseal.clock import Clock
from auditseal.config import WriterConfig
from auditseal.core.checkpoint import Checkpoint, VerifiedCheckpoint, sign_checkpoint
from auditseal.core.entry import EntryHeader, encode_entry, max_event_bytes
from auditseal.core.hashing import leaf_hash
from auditseal.core.layout import history_key
from auditseal.core.notekeys import NoteSigner, NoteVerifier
from auditseal.errors import EntryMismatch, OverloadError, StorageError
from auditseal.log.adopt import orphan_entries
from auditseal.log.edge import TreeEdge
from auditseal.log.edge_hint import save_edge_hint
from auditseal.log.head import load_head, swap_head
from auditseal.log.journal import Journal
from auditseal.log.publisher import BackgroundPublisher
from auditseal.storage.base import HeadStore, ObjectStore


@dataclass
class _Request:
    entries: list[bytes]
    leaves: list[bytes] | None = None  # their leaf hashes, when the caller wants them
    first: int = -1
    error: BaseException | None = None
    done: bool = False
    sealed: bool = False  # sealed directly, not journaled: nothing left to publish



class LogWriter:
    """Appends events to one log; the only writer of that log (see ``WriterLock``)."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        head: HeadStore,
        signer: NoteSigner,
        verifier: NoteVerifier,
        origin: str,
        journal_dir: Path,
        clock: Clock,
        edge_hint: Path | None = None,
        config: WriterConfig | None = None,
    ) -> None:
        """Prepare a writer; call ``open`` before use (it recovers from any crash)."""
        self.config = config or WriterConfig()
        self._store = store
        self._head = head
        self._signer = signer
        self._verifier = verifier
        self.origin = origin
        self._clock = clock
        self._edge_hint = edge_hint
        self._journal = Journal(
            journal_dir, fsync=self.config.fsync, segment_bytes=self.config.journal_segment_bytes
        )
        self._lock = threading.Lock()
        self._committed = threading.Condition(self._lock)
        self._queue: list[_Request] = []
        self._committing = False
        self._pending: list[bytes] = []  # durable, not yet sealed, in index order
        self._publish_lock = threading.Lock()
        self._sealed: TreeEdge | None = None
        self._head_version: str | None = None
        self.checkpoint: VerifiedCheckpoint | None = None
        self._background = BackgroundPublisher(
            self.publish, self.config.publish_interval_s, self._published
        )
        self.publish_error: Exception | None = None
        self.recovered_entries = 0
        self.adopted_entries = 0
        self.torn_bytes = 0
        # Only a store that creates a batch's objects in list order may seal directly:
        # recovery then finds a prefix of the bundles, never a gap (log.adopt).
        self._seals_directly = bool(getattr(store, "ordered_create_many", False))

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> VerifiedCheckpoint:
        """Load the head, rebuild the right edge, replay the journal and seal what it held."""
        loaded = load_head(self._head, self._verifier, self.origin)
        if loaded is None:
            self._sealed = TreeEdge()
            self._head_version = None
            size = 0
        else:
            self.checkpoint, self._head_version = loaded
            size = self.checkpoint.size
            self._store.create(history_key(size), self.checkpoint.note_bytes)
            self._sealed = TreeEdge.resume(size, self._store.read)
            self._leave_edge_hint()  # a log sealed before hints, or a hint lost
        recovery = self._journal.recover(size)
        self.recovered_entries = len(recovery.pending)
        self.torn_bytes = recovery.torn_bytes
        self._pending = self._adopt(size, list(recovery.pending))
        self.publish(force=loaded is None)
        assert self.checkpoint is not None  # loaded, or published just now
        if self._journal.next_index < self.checkpoint.size:
            self._journal.skip_to(self.checkpoint.size)  # adopted entries were sealed
        return self.checkpoint

    def _adopt(self, size: int, pending: list[bytes]) -> list[bytes]:
        """The journal's entries, extended by bundles a crashed direct seal left behind."""
        if not self._seals_directly or self._sealed is None:
            return pending
        orphans = orphan_entries(self._store, size, self._sealed.bundle)
        if len(orphans) <= len(pending):
            return pending
        if orphans[: len(pending)] != pending:
            raise EntryMismatch(
                what="modified", where=f"entries from {size}",
                detail="bundles past the checkpoint disagree with the journal",
            )
        self.adopted_entries = len(orphans) - len(pending)
        return orphans

    def close(self) -> None:
        """Stop the publisher, seal everything pending and close the journal."""
        self.stop_publisher()
        try:
            self.publish()
        finally:
            self._journal.close()

    def __enter__(self) -> LogWriter:
        """Open the writer."""
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the writer."""
        self.close()

    # -- appending -------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Entries made durable so far (sealed or pending)."""
        return self._journal.next_index

    def header_line(self, source: str | None, kind: str = "event") -> bytes:
        """The entry header an append made now from ``source`` gets."""
        return EntryHeader(received=self._clock.now(), source=source, kind=kind).encode()

    def max_event_bytes(self, source: str | None) -> int:
        """The largest event that ``append`` accepts from ``source``."""
        return max_event_bytes(self.header_line(source))

    def append(
        self,
        events: Sequence[bytes | memoryview],
        *,
        source: str | None = None,
        sources: Sequence[str | None] | None = None,
        kind: str = "event",
    ) -> list[int]:
        """Seal ``events`` durably and return their log indexes (see ``append_entries``)."""
        return [index for index, _ in self.append_entries(
            events, source=source, sources=sources, kind=kind, leaf_hashes=False)]

    def append_entries(
        self,
        events: Sequence[bytes | memoryview],
        *,
        source: str | None = None,
        sources: Sequence[str | None] | None = None,
        kind: str = "event",
        leaf_hashes: bool = True,
    ) -> list[tuple[int, bytes]]:
        """Seal ``events`` (each the bytes of one validated JSON object) durably.

        Args:
            events: the events, in order (a view into a larger input is copied once,
                into its entry).
            source: where all of them came from (recorded in each entry's header).
            sources: instead, one source per event (a collector records each record's
                position, so that after a crash it can tell what was sealed).
            kind: "event", or "alert"/"admin" for auditseal's own records.

        Returns ``(log index, leaf hash)`` of each event once all of them are durable (the
        leaf hash is ``b""`` when ``leaf_hashes`` is false). When more than
        ``publish_max_pending`` entries wait for sealing, the caller seals them first
        (back-pressure: memory stays bounded however fast events arrive).

        Raises:
            EntryTooLarge: an event does not fit in an entry; nothing was written.
            OverloadError: with these, more than ``max_unsealed`` entries would wait for
                sealing (the storage is down or slow); nothing was written.
        """
        if sources is None:
            entries = _encode_all(self.header_line(source, kind), events)
        elif len(sources) != len(events):
            raise ValueError("sources must name one source per event")
        else:
            headers = {name: self.header_line(name, kind) for name in dict.fromkeys(sources)}
            entries = [encode_entry(headers[name], bytes(event))
                       for event, name in zip(events, sources, strict=True)]
        backlog = len(self._pending)
        if backlog + len(entries) > self.config.max_unsealed:
            raise OverloadError(
                f"{backlog} acknowledged entries are waiting to be sealed (storage: "
                f"{self.publish_error or 'busy'}); retry later",
                retry_after_s=max(1.0, self.config.publish_interval_s),
            )
        # Hashed before the commit when the caller wants them: a batch sealed directly
        # then reuses them for the tiles instead of hashing every entry twice.
        leaves = list(map(leaf_hash, entries)) if leaf_hashes else None
        first = self._commit(entries, leaves)
        if len(self._pending) >= self.config.publish_max_pending:
            try:
                self.publish()
            except StorageError as exc:
                # The entries are durable in the journal: the append succeeded. Sealing
                # resumes when the storage is back; max_unsealed bounds the backlog.
                self.publish_error = exc
        return list(enumerate([b""] * len(entries) if leaves is None else leaves, first))

    def _commit(self, entries: list[bytes], leaves: list[bytes] | None = None) -> int:
        request = _Request(entries, leaves)
        with self._lock:
            self._queue.append(request)
            while not request.done:
                if self._committing:
                    self._committed.wait()
                    continue
                self._committing = True
                batch, self._queue = self._queue, []
                self._lock.release()
                try:
                    self._write_batch(batch)
                finally:
                    self._lock.acquire()
                    self._committing = False
                    for item in batch:
                        item.done = True
                        if item.first >= 0 and not item.sealed:
                            self._pending.extend(item.entries)
                    self._committed.notify_all()
        if request.error is not None:
            raise request.error
        return request.first

    def _write_batch(self, batch: list[_Request]) -> None:
        if (
            self._seals_directly
            and sum(len(r.entries) for r in batch) >= self.config.seal_directly_from
            and self._seal_directly(batch)
        ):
            return
        limit = self.config.commit_max_entries
        chunk: list[_Request] = []
        count = 0
        for request in [*batch, None]:
            if request is None or (chunk and count + len(request.entries) > limit):
                try:
                    first = self._journal.append([e for r in chunk for e in r.entries])
                except BaseException as exc:  # every waiter must learn of it
                    for waiting in chunk:
                        waiting.error = exc
                else:
                    for waiting in chunk:
                        waiting.first = first
                        first += len(waiting.entries)
                chunk, count = [], 0
            if request is not None:
                chunk.append(request)
                count += len(request.entries)

    def _seal_directly(self, batch: list[_Request]) -> bool:
        """Make a large batch durable by sealing it at once, without the journal.

        Each byte is then written once. Journaled entries still pending go first, so
        indexes stay in order; a crash mid-seal leaves bundles that ``open`` adopts
        (``log.adopt``). Returns False, having acknowledged nothing, when the storage
        failed: the batch then goes through the journal.
        """
        entries = [e for r in batch for e in r.entries]
        try:
            with self._publish_lock:
                with self._lock:
                    pending, self._pending = self._pending, []
                first = self._journal.next_index
                leaves = list(map(leaf_hash, pending))
                for request in batch:
                    leaves.extend(request.leaves or map(leaf_hash, request.entries))
                try:
                    self._seal([*pending, *entries], leaves)
                except BaseException:
                    with self._lock:
                        self._pending[:0] = pending
                    self._sealed = None
                    raise
                self._journal.skip_to(first + len(entries))
        except StorageError as exc:
            self.publish_error = exc
            return False
        except BaseException as exc:  # every waiter must learn of it
            for request in batch:
                request.error = exc
            return True
        for request in batch:
            request.first, request.sealed = first, True
            first += len(request.entries)
        return True

    # -- sealing ---------------------------------------------------------------------------

    def publish(self, *, force: bool = False) -> VerifiedCheckpoint | None:
        """Seal every durable entry into the tree and publish a signed checkpoint.

        Returns the new checkpoint, or None when nothing was pending (and not ``force``).
        """
        limit = self.config.publish_max_pending
        published = None
        with self._publish_lock:
            with self._lock:
                # Only what is pending now: entries arriving meanwhile wait for the next
                # round, so the publish interval (not the seal time) sets the cadence.
                remaining = len(self._pending)
            while True:
                with self._lock:
                    take = min(limit, remaining)
                    batch, self._pending = self._pending[:take], self._pending[take:]
                remaining -= len(batch)
                if not batch and not (force and published is None):
                    return published
                try:
                    published = self._seal(batch)
                except BaseException:
                    with self._lock:
                        self._pending[:0] = batch
                    self._sealed = None  # rebuild the edge from storage on the next attempt
                    raise

    def _seal(self, batch: list[bytes], leaves: list[bytes] | None = None) -> VerifiedCheckpoint:
        """Seal ``batch`` (``leaves``: their leaf hashes, if already computed)."""
        old_size = self.checkpoint.size if self.checkpoint else 0
        edge = self._sealed or TreeEdge.resume(old_size, self._store.read)
        self._sealed = None  # in flux until this publish completes
        objects = edge.extend(batch, leaves)
        checkpoint = Checkpoint(origin=self.origin, size=edge.size, root_hash=edge.root())
        note = sign_checkpoint(checkpoint, [self._signer])
        if objects:
            self._store.create_many(objects)
        self._head_version = swap_head(self._head, note, self._head_version)
        # The history copy comes after the head moved: a history newer than the head can
        # then only mean a rollback, never a publish cut short (open() repairs the copy).
        self._store.create(history_key(edge.size), note)
        self.checkpoint = VerifiedCheckpoint(
            checkpoint=checkpoint, note_bytes=note, verified_by=(self._signer.name,)
        )
        self._sealed = edge
        self._journal.release(edge.size)
        self._leave_edge_hint()
        return self.checkpoint

    def _leave_edge_hint(self) -> None:
        """Leave the sealed tree's compact range for proofs (``log.edge_hint``)."""
        if self._edge_hint is not None and self._sealed is not None:
            save_edge_hint(self._edge_hint, self._sealed.size, self._sealed.tiles.compact_range)

    # -- background publisher --------------------------------------------------------------

    def start_publisher(self) -> None:
        """Publish pending entries every ``publish_interval_s`` from a background thread."""
        self._background.start()

    def stop_publisher(self) -> None:
        """Stop the background publisher (it finishes the publish it is in)."""
        self._background.stop()

    def _published(self, error: Exception | None) -> None:
        self.publish_error = error


def _encode_all(header: bytes, events: Sequence[bytes | memoryview]) -> list[bytes]:
    """Entries for ``events`` under one header: one size check for the whole batch."""
    if events and max(map(len, events)) > max_event_bytes(header):
        _ = [encode_entry(header, bytes(event)) for event in events]  # raises EntryTooLarge
    return [header + event for event in events]
