"""The Event Hubs collector's handling of received events, against a real log.

No Event Hubs emulator runs here, so the SDK's receive loop is the only part left out:
events are real ``azure.eventhub.EventData`` built the way the SDK builds a received one
(an AMQP message with the ``x-opt-sequence-number`` / ``x-opt-offset`` /
``x-opt-enqueued-time`` annotations, encoded and decoded by the SDK's own pyamqp codec,
then ``EventData._from_message`` as in ``azure/eventhub/_consumer.py``), and the partition
context is ``PartitionContextDouble``, a real ``PartitionContext`` that records its
checkpoints instead of writing them to blob storage. The checkpoint store itself is
exercised against Azurite in ``test_real_blob_checkpoint_store_on_azurite``.

Event bodies are real records from /work/shared/corpus (see its SOURCES.md): an
OpenTelemetry-collector Activity Log capture and a Datadog NSG flow-event envelope, plus
Datadog's per-record Entra ID audit-log lines as plain single-event bodies.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.eventhub import EventData, PartitionContext
from azure.eventhub._pyamqp._decode import decode_payload
from azure.eventhub._pyamqp._encode import encode_payload
from azure.eventhub._pyamqp.message import Message
from azure.eventhub._pyamqp.types import AMQPTypes
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from azure.storage.blob import BlobServiceClient

from auditseal.cli import exitcodes
from auditseal.clock import FixedClock
from auditseal.config import WriterConfig
from auditseal.core.entry import decode_entry
from auditseal.errors import ConfigError, StorageRefused, StorageUnavailable
from auditseal.ingest import azure_eventhubs
from auditseal.ingest.azure_eventhubs import (
    BadEvent,
    EventHubSealer,
    EventHubSettings,
    event_source,
    parse_event_source,
    scan_sealed_positions,
)
from auditseal.ingest.records import split_records
from auditseal.log.local import LocalLog, init_log, open_writer
from auditseal.log.reader import LogReader
from auditseal.log.writer import LogWriter
from tests.azurite import Azurite
from tests.conftest import CORPUS, run_cli

NS = "auditns.servicebus.windows.net"
HUB = "insights-activity-logs"
ADMINISTRATIVE = CORPUS / "otel_collector_contrib/pkg/translator/azurelogs/testdata/administrative/valid_1.json"  # noqa: E501
FIXTURES = CORPUS / "datadog_azure-log-forwarding-orchestration/forwarder/internal/logs/fixtures"
NSG_FLOW = FIXTURES / "networksecuritygroupflowevent_logs.json"
AUDIT_LINES = FIXTURES / "activedirectory/audit_logs.json"
CONFIG = WriterConfig(fsync=False, set_immutable=False)
CLOCK = FixedClock(datetime(2026, 3, 14, 9, 0, tzinfo=UTC))


def received(body: bytes | None, sequence: int | None, *, value: Any = None) -> EventData:
    """An EventData exactly as the SDK hands a received one to ``on_event_batch``."""
    annotations: dict[str | bytes, Any] = {
        b"x-opt-offset": str(4096 * (sequence or 0)),
        b"x-opt-enqueued-time": {"TYPE": AMQPTypes.timestamp, "VALUE": 1773478800000},
    }
    if sequence is not None:
        annotations[b"x-opt-sequence-number"] = sequence
    message = Message(data=[body] if body is not None else None, value=value,
                      message_annotations=annotations)
    wire = bytearray()
    encode_payload(wire, message)
    return EventData._from_message(decode_payload(memoryview(bytes(wire))))


class PartitionContextDouble(PartitionContext):
    """A real PartitionContext whose checkpoint store is a list (plus the log size then)."""

    def __init__(self, partition: str, writer: LogWriter | None = None, *, fail: bool = False
                 ) -> None:
        super().__init__(NS, HUB, "$Default", partition)
        self.writer = writer
        self.fail = fail
        self.checkpoints: list[tuple[int | None, str | None, int | None]] = []

    def update_checkpoint(self, event: EventData | None = None, **kwargs: Any) -> None:
        assert event is not None
        if self.fail:
            raise StorageUnavailable("checkpoint blob: 503 ServerBusy")  # as Azure may answer
        size = self.writer.size if self.writer is not None else None
        self.checkpoints.append((event.sequence_number, event.offset, size))


class FailingWriterDouble:
    """The real writer, except that ``append`` fails like an unreachable journal disk."""

    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer

    def append(self, events: Sequence[bytes], *, sources: Sequence[str | None] | None = None
               ) -> list[int]:
        raise StorageUnavailable("journal: [Errno 5] Input/output error")

    def max_event_bytes(self, source: str | None) -> int:
        return self.writer.max_event_bytes(source)


@pytest.fixture
def log(tmp_path: Path) -> LocalLog:
    return init_log(tmp_path / "log", "test.local/eventhubs", clock=CLOCK)[0]


@pytest.fixture
def writer(log: LocalLog) -> Iterator[LogWriter]:
    with open_writer(log, clock=CLOCK, config=CONFIG) as opened:
        yield opened


def sealed(log: LocalLog, writer: LogWriter) -> list[tuple[str | None, bytes]]:
    """(source, event bytes) of every entry, after sealing what is pending."""
    checkpoint = writer.publish() or writer.checkpoint
    assert checkpoint is not None
    reader = LogReader(log.object_store(), checkpoint)
    return [(e.header.source, e.event) for e in map(decode_entry, (x for _, x in reader.entries()))]


def sealer_for(writer: Any, log: LocalLog | None = None, **kwargs: Any) -> EventHubSealer:
    """A handler resuming from what ``log`` holds, as ``collect_eventhub`` builds it."""
    positions = {}
    if log is not None:
        checkpoint = writer.publish() or writer.checkpoint
        reader = LogReader(log.object_store(), checkpoint)
        positions = scan_sealed_positions(reader, NS, HUB).positions
    return EventHubSealer(writer, namespace=NS, eventhub=HUB, sealed=positions, **kwargs)


@pytest.mark.parametrize("path", [ADMINISTRATIVE, NSG_FLOW], ids=["activity-log", "nsg-flow"])
def test_every_record_of_an_envelope_is_sealed_verbatim(
        path: Path, log: LocalLog, writer: LogWriter) -> None:
    body = path.read_bytes()
    expected = [record.data for record in split_records(body)[0]]
    assert expected
    assert all(record in body for record in expected)
    context = PartitionContextDouble("0", writer)
    sealer = sealer_for(writer)
    sealer.on_event_batch(context, [received(body, 7)])
    assert sealed(log, writer) == [
        (event_source(NS, HUB, "0", 7, i), record) for i, record in enumerate(expected)]
    # One checkpoint, at the event, taken when every record was already durable.
    assert context.checkpoints == [(7, str(4096 * 7), len(expected))]
    assert (sealer.stats.sealed, sealer.stats.rejected, sealer.stats.checkpoints) == (
        len(expected), 0, 1)


def test_plain_single_event_bodies(log: LocalLog, writer: LogWriter) -> None:
    lines = [line for line in AUDIT_LINES.read_bytes().splitlines() if line.strip()][:5]
    context = PartitionContextDouble("3", writer)
    sealer_for(writer).on_event_batch(context, [received(line, 10 + i)
                                                for i, line in enumerate(lines)])
    assert sealed(log, writer) == [
        (event_source(NS, HUB, "3", 10 + i, 0), line.strip()) for i, line in enumerate(lines)]
    assert context.checkpoints == [(14, str(4096 * 14), 5)]


def test_a_failed_append_leaves_the_checkpoint_alone(log: LocalLog, writer: LogWriter) -> None:
    problems: list[tuple[str, BaseException]] = []
    failing = sealer_for(FailingWriterDouble(writer),
                         on_problem=lambda what, exc: problems.append((what, exc)))
    context = PartitionContextDouble("0", writer)
    batch = [received(NSG_FLOW.read_bytes(), 1), received(ADMINISTRATIVE.read_bytes(), 2)]
    with pytest.raises(StorageUnavailable):
        failing.on_event_batch(context, batch)
    assert context.checkpoints == []
    assert sealed(log, writer) == []
    assert [what for what, _ in problems] == ["append"]
    assert failing.stats.append_failures == 1
    # The SDK re-reads the partition from its last checkpoint: the retry seals all.
    sealer_for(writer, log).on_event_batch(context, batch)
    assert context.checkpoints == [(2, str(4096 * 2), len(sealed(log, writer)))]


def test_restart_with_a_lagging_checkpoint_seals_nothing_twice(tmp_path: Path) -> None:
    log = init_log(tmp_path / "log", "test.local/restart", clock=CLOCK)[0]
    records = [line for line in AUDIT_LINES.read_bytes().splitlines() if line.strip()][:6]
    envelope = b'{"records": [' + b",".join(records[:3]) + b"]}"
    events = [received(envelope, 0), received(records[3], 1), received(records[4], 2),
              received(records[5], 3)]
    with open_writer(log, clock=CLOCK, config=CONFIG) as writer:
        sealer = sealer_for(writer, log)
        sealer.on_event_batch(PartitionContextDouble("0", writer), events[:2])
        # The checkpoint write of the second batch fails (crash, or blob store down).
        lagging = PartitionContextDouble("0", writer, fail=True)
        sealer.on_event_batch(lagging, events[2:3])
        assert sealer.stats.checkpoint_failures == 1
    # Restart: the store says "after sequence 1"; the log holds up to sequence 2.
    with open_writer(log, clock=CLOCK, config=CONFIG) as writer:
        resumed = sealer_for(writer, log)
        context = PartitionContextDouble("0", writer)
        resumed.on_event_batch(context, events[2:])
        entries = sealed(log, writer)
    sources = [source for source, _ in entries]
    assert len(sources) == len(set(sources)) == 6
    assert [event for _, event in entries] == records
    assert resumed.stats.duplicates_skipped == 1
    assert context.checkpoints == [(3, str(4096 * 3), 6)]


def test_a_torn_batch_is_completed_record_by_record(log: LocalLog, writer: LogWriter) -> None:
    body = NSG_FLOW.read_bytes()
    records = [record.data for record in split_records(body)[0]]
    # The journal kept only the first record of event 5 (a crash mid-batch).
    writer.append(records[:1], sources=[event_source(NS, HUB, "0", 5, 0)])
    resumed = sealer_for(writer, log)
    resumed.on_event_batch(PartitionContextDouble("0", writer), [received(body, 5)])
    assert [event for _, event in sealed(log, writer)] == records
    assert resumed.stats.duplicates_skipped == 1


BAD = {
    "not-json": (b"Microsoft.Insights diagnostic log", 0, "invalid JSON"),
    "record-not-object": (b'{"records": [{"time": "2026-01-01"}, 42]}', 1, "not a JSON object"),
    "record-bad-utf8": (b'{"records": [{"a": "\xff"}]}', 0, "invalid UTF-8"),
    "truncated-envelope": (b'{"records": [{"a": 1}, {"b"', 0, "incomplete"),
    "empty-body": (b"", None, "empty event body"),
    "too-large": (b'{"pad": "' + b"x" * 70_000 + b'"}', 0, "a log entry holds at most"),
}


@pytest.mark.parametrize(("body", "index", "reason"), BAD.values(), ids=BAD.keys())
def test_bad_events_are_reported_and_never_block_the_partition(
        body: bytes, index: int | None, reason: str, log: LocalLog, writer: LogWriter) -> None:
    reported: list[BadEvent] = []
    good = b'{"time": "2026-03-14T09:00:00Z", "operationName": "ok"}'
    context = PartitionContextDouble("2", writer)
    sealer = sealer_for(writer, on_reject=reported.append)
    sealer.on_event_batch(context, [received(good, 40), received(body, 41),
                                    received(good, 42)])
    assert len(reported) == 1
    assert (reported[0].partition, reported[0].sequence_number, reported[0].record_index) == (
        "2", 41, index)
    assert reason in reported[0].reason
    assert reported[0].offset == str(4096 * 41)
    sealed_events = [event for _, event in sealed(log, writer)]
    assert sealed_events.count(good) == 2
    assert sealer.stats.rejected == 1
    assert context.checkpoints[-1][0] == 42  # checkpointed past the bad event


def test_events_without_a_data_body_or_a_sequence_number_are_reported(writer: LogWriter
                                                                      ) -> None:
    reported: list[BadEvent] = []
    sealer = sealer_for(writer, on_reject=reported.append)
    sealer.on_event_batch(PartitionContextDouble("0", writer),
                          [received(None, 1, value={"records": []}), received(b"{}", None)])
    assert [(r.sequence_number, r.record_index) for r in reported] == [(1, None), (None, 0)]
    assert "AMQP value body" in reported[0].reason
    assert "no sequence number" in reported[1].reason
    assert writer.size == 0


def test_batches_from_several_partitions(log: LocalLog, writer: LogWriter) -> None:
    lines = [line for line in AUDIT_LINES.read_bytes().splitlines() if line.strip()]
    contexts = {p: PartitionContextDouble(p, writer) for p in ("0", "1", "2")}
    sealer = sealer_for(writer)
    for round_ in range(3):
        for p, context in contexts.items():  # interleaved, as the SDK serves partitions
            sequence = 100 * int(p) + round_
            sealer.on_event_batch(context, [received(lines[(sequence + round_) % len(lines)],
                                                     sequence)])
    by_partition: dict[str, list[int]] = {}
    for source, _ in sealed(log, writer):
        assert source is not None
        parsed = parse_event_source(source)
        assert parsed is not None
        by_partition.setdefault(parsed[2], []).append(parsed[3][0])
    assert by_partition == {"0": [0, 1, 2], "1": [100, 101, 102], "2": [200, 201, 202]}
    assert {p: [c[0] for c in ctx.checkpoints] for p, ctx in contexts.items()} == by_partition
    reader = LogReader(log.object_store(), writer.publish() or writer.checkpoint)  # type: ignore[arg-type]
    assert scan_sealed_positions(reader, NS, HUB, partitions=list(contexts)).positions == {
        "0": (2, 0), "1": (102, 0), "2": (202, 0)}


def test_the_scan_reads_only_this_hub_and_stops_when_told(log: LocalLog, writer: LogWriter
                                                          ) -> None:
    event = b'{"a": 1}'
    writer.append([event] * 4, sources=[
        event_source(NS, HUB, "0", 9, 0), event_source(NS, "other-hub", "0", 50, 0),
        "file:PT1H.json", event_source(NS.upper(), HUB, "1", 3, 0)])
    reader = LogReader(log.object_store(), writer.publish() or writer.checkpoint)  # type: ignore[arg-type]
    full = scan_sealed_positions(reader, NS, HUB)
    assert (full.positions, full.scanned, full.complete) == ({"0": (9, 0), "1": (3, 0)}, 4, True)
    early = scan_sealed_positions(reader, NS, HUB, partitions=["1"])
    assert (early.positions, early.scanned) == ({"1": (3, 0)}, 1)
    bounded = scan_sealed_positions(reader, NS, HUB, max_entries=2)
    assert (bounded.positions, bounded.scanned, bounded.complete) == ({"1": (3, 0)}, 2, False)


SOURCES = {
    "ours": (event_source(NS, HUB, "12", 2**63 - 1, 4),
             (NS, HUB, "12", (2**63 - 1, 4))),
    "upper-case-namespace": (event_source("AuditNS.servicebus.windows.net", HUB, "0", 1, 0),
                             (NS, HUB, "0", (1, 0))),
    "file": ("file:PT1H.json", None),
    "no-index": (f"eventhub:{NS}/{HUB}/0#5", None),
    "non-numeric-sequence": (f"eventhub:{NS}/{HUB}/0#x/0", None),
}


@pytest.mark.parametrize(("source", "parsed"), SOURCES.values(), ids=SOURCES.keys())
def test_event_source_round_trip(source: str, parsed: object) -> None:
    assert parse_event_source(source) == parsed


SETTINGS = {
    "both-hub-credentials": {"connection_string": "Endpoint=sb://a.servicebus.windows.net/;"
                                 "SharedAccessKeyName=k;SharedAccessKey=v", "namespace": NS,
                                 "checkpoint_connection_string": "x"},
    "no-hub-credential": {"checkpoint_connection_string": "x"},
    "no-checkpoint-credential": {"namespace": NS},
    "both-checkpoint-credentials": {"namespace": NS, "checkpoint_connection_string": "x",
                                        "checkpoint_account_url": "https://a.blob.core.windows.net"},
    "zero-batch": {"namespace": NS, "checkpoint_connection_string": "x", "max_batch_size": 0},
}


@pytest.mark.parametrize("kwargs", SETTINGS.values(), ids=SETTINGS.keys())
def test_settings_refuse_ambiguous_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EventHubSettings(eventhub=HUB, checkpoint_container="checkpoints", **kwargs)


def test_settings_read_the_namespace_from_the_connection_string() -> None:
    cs = "Endpoint=sb://AuditNS.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v"
    settings = EventHubSettings(eventhub=HUB, checkpoint_container="c", connection_string=cs,
                                checkpoint_connection_string="x")
    assert settings.fully_qualified_namespace == NS
    wrong_hub = EventHubSettings(eventhub=HUB, checkpoint_container="c",
                                 connection_string=cs + ";EntityPath=other",
                                 checkpoint_connection_string="x")
    with pytest.raises(ConfigError, match="other"):
        _ = wrong_hub.fully_qualified_namespace


def test_cli_without_a_checkpoint_store_is_a_config_error(
        log: LocalLog, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUDITSEAL_CHECKPOINT_CONNECTION_STRING", raising=False)
    code = run_cli("collect", "eventhubs", "--log", log.root, "--namespace", NS,
                   "--eventhub", HUB, "--checkpoint-container", "checkpoints")
    assert code == exitcodes.CONFIG
    assert "checkpoint store" in capsys.readouterr().err


def test_real_blob_checkpoint_store_on_azurite(azurite: Azurite, log: LocalLog,
                                               writer: LogWriter) -> None:
    container = f"eh-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(
        container)
    store = BlobCheckpointStore.from_connection_string(azurite.connection_string, container)
    context = PartitionContext(NS, HUB, "$Default", "4", store)
    sealer_for(writer).on_event_batch(context, [received(NSG_FLOW.read_bytes(), 77)])
    assert [(c["partition_id"], c["sequence_number"]) for c in
            store.list_checkpoints(NS, HUB, "$Default")] == [("4", 77)]
    assert len(sealed(log, writer)) == len(split_records(NSG_FLOW.read_bytes())[0])


def test_the_corpus_envelopes_are_what_azure_monitor_sends() -> None:
    # Guard for the fixtures above: both files are one {"records": [...]} envelope.
    for path in (ADMINISTRATIVE, NSG_FLOW):
        value = orjson.loads(path.read_bytes())
        assert list(value) == ["records"]
        assert isinstance(value["records"], list)


class ConsumerClientDouble:
    """Stands in for EventHubConsumerClient's receive loop (no Event Hubs here): serves
    the given batches like the SDK does (errors from the callback go to ``on_error``),
    then waits for ``close`` as the real loop does."""

    def __init__(self, batches: list[tuple[str, list[EventData]]], delivered: Any) -> None:
        self.batches, self.delivered = batches, delivered
        self.closed = threading.Event()
        self.receive_kwargs: dict[str, Any] = {}

    def get_partition_ids(self) -> list[str]:
        return ["0", "1"]

    def receive_batch(self, on_event_batch: Any, **kwargs: Any) -> None:
        self.receive_kwargs = kwargs
        for partition, events in self.batches:
            context = PartitionContextDouble(partition)
            try:
                on_event_batch(context, events)
            except Exception as exc:  # the SDK's _do_receive does the same
                kwargs["on_error"](context, exc)
        self.delivered()
        self.closed.wait(10)

    def close(self) -> None:
        self.closed.set()


class CheckpointStoreDouble:
    """BlobCheckpointStore.list_checkpoints with partition 0 checkpointed at sequence 5."""

    def list_checkpoints(self, namespace: str, hub: str, group: str) -> list[dict[str, Any]]:
        return [{"partition_id": "0", "sequence_number": 5, "offset": "20480"}]


def _run(monkeypatch: pytest.MonkeyPatch, appender: Any, writer: LogWriter, log: LocalLog,
         batches: list[tuple[str, list[EventData]]]) -> tuple[ConsumerClientDouble, Any]:
    stop = threading.Event()
    client = ConsumerClientDouble(batches, delivered=stop.set)
    monkeypatch.setattr(azure_eventhubs, "_clients",
                        lambda settings: (client, CheckpointStoreDouble()))
    settings = EventHubSettings(eventhub=HUB, checkpoint_container="c", namespace=NS,
                                checkpoint_connection_string="unused")
    reader = LogReader(log.object_store(), writer.publish() or writer.checkpoint)  # type: ignore[arg-type]
    return client, lambda: azure_eventhubs.collect_eventhub(appender, reader, settings, stop=stop)


def test_collector_resumes_each_partition_from_the_store_or_the_log(
        monkeypatch: pytest.MonkeyPatch, log: LocalLog, writer: LogWriter) -> None:
    writer.append([b'{"n": 7}'], sources=[event_source(NS, HUB, "1", 7, 0)])
    batches = [("1", [received(b'{"n": 7}', 7), received(b'{"n": 8}', 8)])]
    client, collect = _run(monkeypatch, writer, writer, log, batches)
    stats = collect()
    # Partition 0 resumes from its stored checkpoint (the SDK's choice, starting position
    # unused); partition 1 has none, so it starts at the log's last event, inclusive.
    assert client.receive_kwargs["starting_position"] == {"0": "-1", "1": 7}
    assert client.receive_kwargs["starting_position_inclusive"] == {"0": False, "1": True}
    assert (stats.sealed, stats.duplicates_skipped) == (1, 1)
    assert [event for _, event in sealed(log, writer)] == [b'{"n": 7}', b'{"n": 8}']
    assert client.closed.is_set()


def test_collector_stops_and_raises_on_a_lasting_append_failure(
        monkeypatch: pytest.MonkeyPatch, log: LocalLog, writer: LogWriter) -> None:
    class RefusingWriterDouble(FailingWriterDouble):
        def append(self, events: Sequence[bytes], *,
                   sources: Sequence[str | None] | None = None) -> list[int]:
            raise StorageRefused("journal", "EROFS", "read-only file system")

    client, collect = _run(monkeypatch, RefusingWriterDouble(writer), writer, log,
                           [("0", [received(b'{"n": 6}', 6)])])
    with pytest.raises(StorageRefused):
        collect()
    assert client.closed.is_set()


def test_cli_collects_until_sigterm_and_reports(
        monkeypatch: pytest.MonkeyPatch, log: LocalLog, capsys: pytest.CaptureFixture[str]
) -> None:
    batches = [("0", [received(NSG_FLOW.read_bytes(), 6), received(b"not json", 7)])]
    client = ConsumerClientDouble(batches, lambda: os.kill(os.getpid(), signal.SIGTERM))
    monkeypatch.setattr(azure_eventhubs, "_clients",
                        lambda settings: (client, CheckpointStoreDouble()))
    before = signal.getsignal(signal.SIGTERM)
    code = run_cli("collect", "eventhubs", "--log", log.root, "--json", "--namespace", NS,
                   "--eventhub", HUB, "--checkpoint-store-connection-string", "unused",
                   "--checkpoint-container", "checkpoints")
    out, err = capsys.readouterr()
    assert code == exitcodes.REJECTED
    records = len(split_records(NSG_FLOW.read_bytes())[0])
    totals = orjson.loads(out)
    assert (totals["sealed"], totals["rejected"], totals["log_size"]) == (records, 1, records)
    rejection = orjson.loads(err.splitlines()[-1])["rejected"]
    assert (rejection["partition"], rejection["sequence_number"]) == ("0", 7)
    assert signal.getsignal(signal.SIGTERM) == before  # the old handler is back
