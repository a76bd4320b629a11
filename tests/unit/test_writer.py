"""The writer over an in-memory store that can fail: outages, back-pressure, overload."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditseal.clock import FixedClock
from auditseal.config import WriterConfig
from auditseal.core.hashing import leaf_hash
from auditseal.core.notekeys import NoteSigner, NoteVerifier, generate_key
from auditseal.errors import EntryTooLarge, OverloadError, StorageUnavailable
from auditseal.log.reader import LogReader
from auditseal.log.writer import LogWriter
from auditseal.storage.filesystem import FilesystemHeadStore, FilesystemObjectStore
from auditseal.storage.memory import MemoryHeadStore, MemoryObjectStore
from auditseal.verify import DirectorySource, verify_log


class FlakyStoreDouble(MemoryObjectStore):
    """The reference store, except that writes fail while ``down`` (an outage double)."""

    down = False

    def create_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        if self.down:
            raise StorageUnavailable("storage is down (test double)")
        return super().create_many(items)

    def create(self, key: str, data: bytes) -> bool:
        return self.create_many([(key, data)])[0]


def _writer(tmp_path: Path, store: MemoryObjectStore, head: MemoryHeadStore,
            config: WriterConfig) -> tuple[LogWriter, NoteVerifier]:
    skey, vkey = generate_key("writer.test/log")
    verifier = NoteVerifier.from_vkey(vkey)
    writer = LogWriter(
        store=store, head=head, signer=NoteSigner.from_private_key(skey), verifier=verifier,
        origin="writer.test/log", journal_dir=tmp_path / "journal",
        clock=FixedClock(datetime(2026, 11, 27, tzinfo=UTC)), config=config,
    )
    writer.open()
    return writer, verifier


def _events(n: int, start: int = 0) -> list[bytes]:
    return [b'{"n":%d}' % i for i in range(start, start + n)]


def test_outage_keeps_acknowledging_then_drains(tmp_path: Path) -> None:
    store, head = FlakyStoreDouble(), MemoryHeadStore()
    config = WriterConfig(fsync=False, publish_max_pending=100, max_unsealed=1000)
    writer, verifier = _writer(tmp_path, store, head, config)
    store.down = True
    indexes = [i for k in range(5) for i in writer.append(_events(150, 150 * k))]
    assert indexes == list(range(750))  # acknowledged: durable in the journal
    assert writer.checkpoint is not None
    assert writer.checkpoint.size == 0
    assert isinstance(writer.publish_error, StorageUnavailable)

    with pytest.raises(OverloadError, match="waiting to be sealed"):
        writer.append(_events(300, 750))
    assert writer.size == 750  # the refused batch wrote nothing

    store.down = False
    checkpoint = writer.publish()
    assert checkpoint is not None
    assert checkpoint.size == 750
    loaded = head.load()
    assert loaded is not None
    report = verify_log(store, [verifier], head=loaded.data)
    assert report.ok, report.findings
    assert report.entries_checked == 750
    writer.close()


def test_publish_seals_in_chunks_of_publish_max_pending(tmp_path: Path) -> None:
    store, head = MemoryObjectStore(), MemoryHeadStore()
    config = WriterConfig(fsync=False, publish_max_pending=256, max_unsealed=10_000)
    writer, _ = _writer(tmp_path, store, head, config)
    writer.append(_events(200))
    writer.append(_events(200, 200))  # over the limit: the appender seals (back-pressure)
    history = store.list("checkpoints/")
    assert [int(k.rsplit("/", 1)[1]) for k in history] == [0, 256, 400]
    writer.close()


class LostAnswerHeadDouble(MemoryHeadStore):
    """A head store whose next swap is applied but answered with a timeout."""

    lose_next = False

    def swap(self, data: bytes, expected: str | None) -> str:
        version = super().swap(data, expected)
        if self.lose_next:
            self.lose_next = False
            raise StorageUnavailable("timeout after the swap was applied (test double)")
        return version


def test_a_swap_whose_answer_was_lost_does_not_wedge_the_writer(tmp_path: Path) -> None:
    store, head = MemoryObjectStore(), LostAnswerHeadDouble()
    writer, verifier = _writer(tmp_path, store, head, WriterConfig(fsync=False))
    writer.append(_events(10))
    head.lose_next = True
    assert writer.publish() is not None
    writer.append(_events(5, 10))
    checkpoint = writer.publish()
    assert checkpoint is not None
    assert checkpoint.size == 15
    loaded = head.load()
    assert loaded is not None
    assert verify_log(store, [verifier], head=loaded.data).ok
    writer.close()


def test_publish_takes_only_what_was_pending_when_called(tmp_path: Path) -> None:
    store, head = MemoryObjectStore(), MemoryHeadStore()
    writer, _ = _writer(tmp_path, store, head, WriterConfig(fsync=False))
    writer.append(_events(10))
    original = writer._seal
    calls: list[int] = []

    def seal_and_append_meanwhile(batch: list[bytes]) -> object:
        calls.append(len(batch))
        if len(calls) == 1:
            writer.append(_events(7, 10))  # arrives during the seal
        return original(batch)

    writer._seal = seal_and_append_meanwhile  # type: ignore[method-assign,assignment]
    checkpoint = writer.publish()
    assert checkpoint is not None
    assert checkpoint.size == 10
    assert calls == [10]
    writer.close()


def test_append_entries_returns_the_leaf_hash_of_each_sealed_entry(tmp_path: Path) -> None:
    store, head = MemoryObjectStore(), MemoryHeadStore()
    writer, _ = _writer(tmp_path, store, head, WriterConfig(fsync=False))
    sealed = writer.append_entries(_events(3), source="test")
    checkpoint = writer.publish()
    assert checkpoint is not None
    reader = LogReader(store, checkpoint)
    assert [index for index, _ in sealed] == [0, 1, 2]
    assert all(leaf == leaf_hash(reader.entry(index)) for index, leaf in sealed)
    writer.close()


class CrashOnSwapHeadDouble(FilesystemHeadStore):
    """A head whose next swap 'crashes' the writer after the objects were created."""

    crash = False

    def swap(self, data: bytes, expected: str | None) -> str:
        if self.crash:
            raise RuntimeError("process killed mid-publish (test double)")
        return super().swap(data, expected)


def test_bundles_left_by_a_crashed_direct_seal_are_adopted(tmp_path: Path) -> None:
    """Regression: a direct seal killed before its head swap left bundles of entries nobody
    acknowledged; later entries at those indexes then hit StorageConflict on restart."""
    store = FilesystemObjectStore(tmp_path / "log", fsync=False)
    head = CrashOnSwapHeadDouble(tmp_path / "log" / "checkpoint", fsync=False)
    config = WriterConfig(fsync=False, set_immutable=False, seal_directly_from=100)
    skey, vkey = generate_key("writer.test/log")

    def writer_on(head_store: FilesystemHeadStore) -> LogWriter:
        writer = LogWriter(
            store=store, head=head_store, signer=NoteSigner.from_private_key(skey),
            verifier=NoteVerifier.from_vkey(vkey), origin="writer.test/log",
            journal_dir=tmp_path / "journal", clock=FixedClock(datetime(2026, 11, 27, tzinfo=UTC)),
            config=config,
        )
        writer.open()
        return writer

    first = writer_on(head)
    first.append(_events(30))  # journaled (below seal_directly_from)
    head.crash = True
    with pytest.raises(RuntimeError, match="killed"):
        first.append(_events(600, 30))  # sealed directly: objects written, head not moved
    assert store.exists("tile/entries/001")  # bundles past the checkpoint: unacknowledged

    second = writer_on(FilesystemHeadStore(tmp_path / "log" / "checkpoint", fsync=False))
    assert second.adopted_entries == 600
    assert second.checkpoint is not None
    assert second.checkpoint.size == 630
    assert second.append(_events(500, 1000))[0] == 630  # no StorageConflict on bundle 2
    second.close()
    report = verify_log(DirectorySource(tmp_path / "log"), [NoteVerifier.from_vkey(vkey)])
    assert report.ok, report.findings
    assert report.entries_checked == 1130


def test_views_into_an_input_are_sealed_like_bytes(tmp_path: Path) -> None:
    # ``auditseal append`` hands the writer views into the input it read, not copies.
    body = b"".join(e + b"\n" for e in _events(300))
    views, start = [], 0
    for event in _events(300):
        views.append(memoryview(body)[start : start + len(event)])
        start += len(event) + 1
    store, head = MemoryObjectStore(), MemoryHeadStore()
    writer, _ = _writer(tmp_path / "views", store, head, WriterConfig(fsync=False))
    sealed = writer.append_entries(views, source="test")
    checkpoint = writer.publish()
    assert checkpoint is not None
    reader = LogReader(store, checkpoint)
    twin, _ = _writer(tmp_path / "bytes", MemoryObjectStore(), MemoryHeadStore(),
                      WriterConfig(fsync=False))
    assert [leaf for _, leaf in twin.append_entries(_events(300), source="test")] == [
        leaf for _, leaf in sealed]
    assert [reader.entry(i).split(b"\n", 1)[1] for i in range(300)] == _events(300)
    writer.close()
    twin.close()


def test_a_too_large_view_refuses_the_whole_batch(tmp_path: Path) -> None:
    store, head = MemoryObjectStore(), MemoryHeadStore()
    writer, _ = _writer(tmp_path, store, head, WriterConfig(fsync=False))
    big = memoryview(b'{"blob":"' + b"x" * 70_000 + b'"}')
    with pytest.raises(EntryTooLarge):
        writer.append([*_events(5), big, *_events(5)])
    assert writer.size == 0  # nothing was written
    writer.close()


def test_direct_seals_leave_no_journal_segment_and_later_appends_recover(
    tmp_path: Path,
) -> None:
    # A segment is created by the append that needs one: sealing big batches directly
    # no longer creates (and fsyncs, then deletes) an empty segment each time.
    store = FilesystemObjectStore(tmp_path / "log", fsync=False)
    head = FilesystemHeadStore(tmp_path / "log" / "checkpoint", fsync=False)
    config = WriterConfig(fsync=False, seal_directly_from=100, publish_max_pending=10_000)
    journal = tmp_path / "journal"

    def segments() -> list[str]:
        return sorted(path.name for path in journal.glob("*.wal"))

    skey, vkey = generate_key("writer.test/log")

    def writer_on() -> LogWriter:
        writer = LogWriter(
            store=store, head=head, signer=NoteSigner.from_private_key(skey),
            verifier=NoteVerifier.from_vkey(vkey), origin="writer.test/log",
            journal_dir=journal, clock=FixedClock(datetime(2026, 11, 27, tzinfo=UTC)),
            config=config,
        )
        writer.open()
        return writer

    first = writer_on()
    assert segments() == []
    first.append(_events(10))  # journaled
    assert segments() == [f"{0:020d}.wal"]
    first.append(_events(300, 10))  # sealed directly, with the 10 pending before it
    assert segments() == []
    first.append(_events(200, 310))
    first.append(_events(5, 510))  # journaled: a segment starting at its index
    assert segments() == [f"{510:020d}.wal"]
    first._journal.close()  # a crash: the 5 entries are in the journal only

    second = writer_on()
    assert second.recovered_entries == 5
    assert second.checkpoint is not None
    assert second.checkpoint.size == 515
    assert second.append(_events(3, 515)) == [515, 516, 517]
    second.close()
    report = verify_log(DirectorySource(tmp_path / "log"), [NoteVerifier.from_vkey(vkey)])
    assert report.ok, report.findings
    assert report.entries_checked == 518
