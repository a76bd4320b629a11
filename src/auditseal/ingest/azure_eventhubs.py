"""Event Hubs collector: seal Azure Monitor diagnostic-settings events streamed to a hub.

Each event body is ``{"records": [...]}`` (reference azure.md §3.3) or one plain JSON
object; every record is sealed as its own entry, byte for byte as received (split by
:func:`auditseal.ingest.records.iter_records`). At least once into the log, no duplicates
across restarts:

* Each entry's source is the record's position,
  ``eventhub:<namespace>/<hub>/<partition>#<sequence number>/<record index>`` (the index
  counts the items ``iter_records`` yields for the body; 0 for a plain event).
* A partition is checkpointed only after ``LogWriter.append`` returned (the batch is
  durable). A failed append re-raises: the SDK closes that partition's consumer and,
  re-claiming it, resumes from the last checkpoint; nothing unsealed is passed over.
* So the checkpoint store can lag the log (crash, or failed checkpoint write, between
  append and checkpoint). On start, :func:`scan_sealed_positions` reads the log backwards
  for each partition's last sealed ``(sequence number, record index)``, and the handler
  skips every record at or before it. Sequence numbers only grow within a partition and
  batches are appended in order, so a partition's last entry holds its highest position;
  skipping per record also covers a journal that kept only a prefix of a torn batch. The
  scan stops when every partition is found, at the start of the log, or after
  ``max_entries`` (older positions are then trusted to the checkpoint store).

Bad events (no data body, not JSON, a bad record in an envelope, a record too large for
an entry) are reported with partition, sequence number, record index and reason, counted
and checkpointed past: they never block a partition. Namespaces are recorded lower-cased.
A hub re-created under the same name restarts its sequence numbers: use a new log.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import orjson
from azure.core import exceptions as core_errors
from azure.eventhub import (
    EventData,
    EventHubConsumerClient,
    PartitionContext,
    parse_connection_string,
)
from azure.eventhub import exceptions as hub_errors
from azure.eventhub.amqp import AmqpMessageBodyType
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from azure.identity import DefaultAzureCredential

from auditseal.core.tiles import TILE_WIDTH
from auditseal.errors import ConfigError, StorageError, StorageUnavailable
from auditseal.ingest.records import Rejected, iter_records
from auditseal.log.reader import LogReader

SOURCE_PREFIX = "eventhub:"
_SOURCE = re.compile(r"^eventhub:([^/]+)/([^/]+)/([^/#]+)#(\d+)/(\d+)$")

Position = tuple[int, int]
"""(sequence number, record index) of a record in its partition; compares in log order."""


def event_source(namespace: str, eventhub: str, partition: str, sequence: int, index: int) -> str:
    """The entry source that records where a record came from."""
    return f"{SOURCE_PREFIX}{namespace.lower()}/{eventhub}/{partition}#{sequence}/{index}"


def parse_event_source(source: str) -> tuple[str, str, str, Position] | None:
    """Split an entry source made by :func:`event_source`; None for any other source."""
    if (match := _SOURCE.match(source)) is None:
        return None
    namespace, eventhub, partition, sequence, index = match.groups()
    return namespace, eventhub, partition, (int(sequence), int(index))



@dataclass(frozen=True)
class SealedPositions:
    """Partition id -> last sealed position; entries read; False if cut by ``max_entries``."""

    positions: dict[str, Position]
    scanned: int
    complete: bool


def scan_sealed_positions(reader: LogReader, namespace: str, eventhub: str, *,
                          partitions: Collection[str] | None = None,
                          max_entries: int | None = None) -> SealedPositions:
    """Find the last position of each partition of ``namespace/eventhub`` in the log.

    ``reader`` must cover every durable entry. The scan stops once all ``partitions`` are
    found (None: read to the start) or after ``max_entries`` entries (None: no bound).
    """
    needle = f'"src":"{SOURCE_PREFIX}{namespace.lower()}/{eventhub}/'.encode()
    wanted = set(partitions) if partitions is not None else None
    found: dict[str, Position] = {}
    scanned = 0
    end = reader.size
    while end > 0:
        start = (end - 1) // TILE_WIDTH * TILE_WIDTH
        if max_entries is not None:
            start = max(start, reader.size - max_entries)
            if start >= end:
                return SealedPositions(found, scanned, complete=False)
        for _, entry in reversed(list(reader.entries(start, end))):
            scanned += 1
            header = entry[: entry.find(b"\n")]
            if needle not in header:
                continue  # cheap filter: most entries of a shared log are not ours
            src = orjson.loads(header).get("src")
            parsed = parse_event_source(src) if isinstance(src, str) else None
            if parsed is None or parsed[:2] != (namespace.lower(), eventhub):
                continue
            found.setdefault(parsed[2], parsed[3])  # the first met backwards is the last
            if wanted is not None and wanted <= found.keys():
                return SealedPositions(found, scanned, complete=True)
        end = start
    return SealedPositions(found, scanned, complete=True)



@dataclass(frozen=True)
class BadEvent:
    """An event (``record_index`` None) or one of its records that was not sealed, and why."""

    partition: str
    sequence_number: int | None
    offset: str | None
    record_index: int | None
    reason: str
    excerpt: str = ""


@dataclass
class CollectStats:
    """Running totals of a collector (updated under the handler's lock)."""

    batches: int = 0
    events: int = 0
    sealed: int = 0
    duplicates_skipped: int = 0
    rejected: int = 0
    checkpoints: int = 0
    checkpoint_failures: int = 0
    append_failures: int = 0


class Appender(Protocol):
    """What the handler needs of the log writer: ``LogWriter.append`` (returns once the
    events are durable) and ``LogWriter.max_event_bytes``."""

    def append(self, events: Sequence[bytes], *, sources: Sequence[str | None] | None = None
               ) -> list[int]: ...
    def max_event_bytes(self, source: str | None) -> int: ...


class EventHubSealer:
    """The ``on_event_batch`` callback: seal, then checkpoint; skip what the log holds."""

    def __init__(self, writer: Appender, *, namespace: str, eventhub: str,
                 sealed: Mapping[str, Position] | None = None,
                 on_reject: Callable[[BadEvent], None] | None = None,
                 on_problem: Callable[[str, BaseException], None] | None = None) -> None:
        """Seal into ``writer``, skipping up to ``sealed`` (see ``scan_sealed_positions``).

        ``on_reject`` hears of every bad event or record; ``on_problem`` of a failed
        ``"append"`` (before the handler re-raises it) or ``"checkpoint"`` (ignored: the
        log is the truth and a restart skips what it holds).
        """
        self._writer = writer
        self.namespace = namespace.lower()
        self.eventhub = eventhub
        self._sealed: dict[str, Position] = dict(sealed or {})
        self._on_reject = on_reject or (lambda _bad: None)
        self._on_problem = on_problem or (lambda _what, _exc: None)
        self._lock = threading.Lock()  # the SDK may call from one thread per partition
        self.stats = CollectStats()

    def on_event_batch(self, context: PartitionContext, events: Sequence[EventData]) -> None:
        """Seal a batch from one partition, then checkpoint its last event.

        Raises:
            whatever ``append`` raised; the checkpoint is then left where it was.
        """
        if not events:
            return  # max_wait_time elapsed with nothing new
        partition = context.partition_id
        with self._lock:
            last = self._sealed.get(partition, (-1, -1))
        data: list[bytes] = []
        sources: list[str | None] = []
        bad: list[BadEvent] = []
        skipped = 0
        # The longest source this partition can have (int64 sequence numbers): one bound
        # for the whole batch, a few bytes stricter than each record's own.
        limit = self._writer.max_event_bytes(
            event_source(self.namespace, self.eventhub, partition, 2**63 - 1, 10**7))
        for event in events:
            sequence = event.sequence_number
            for index, record, reason, excerpt in _records(event, limit):
                if sequence is None or index is None or reason is not None:
                    bad.append(BadEvent(partition, sequence, event.offset, index,
                                        reason or "event has no sequence number", excerpt))
                elif (sequence, index) <= last:
                    skipped += 1
                else:
                    data.append(record)
                    sources.append(event_source(self.namespace, self.eventhub, partition,
                                                sequence, index))
                    last = (sequence, index)
        if data:
            try:
                self._writer.append(data, sources=sources)
            except BaseException as exc:
                with self._lock:
                    self.stats.append_failures += 1
                self._on_problem("append", exc)
                raise  # no checkpoint: the SDK re-reads this partition from the last one
        with self._lock:
            self._sealed[partition] = max(self._sealed.get(partition, (-1, -1)), last)
            self.stats.batches += 1
            self.stats.events += len(events)
            self.stats.sealed += len(data)
            self.stats.duplicates_skipped += skipped
            self.stats.rejected += len(bad)
        for rejection in bad:
            self._on_reject(rejection)
        try:
            context.update_checkpoint(events[-1])
        except Exception as exc:  # the log is the truth: a restart skips the batch
            with self._lock:
                self.stats.checkpoint_failures += 1
            self._on_problem("checkpoint", exc)
            return
        with self._lock:
            self.stats.checkpoints += 1


def _records(event: EventData, limit: int
             ) -> Iterator[tuple[int | None, bytes, str | None, str]]:
    """(record index, bytes, reason if bad, excerpt if bad) for each record of ``event``."""
    if event.body_type != AmqpMessageBodyType.DATA:
        yield None, b"", f"AMQP {event.body_type.value} body; expected data holding JSON", ""
        return
    try:  # a body the SDK cannot read must not stop the partition either
        body = event.body
        raw = body if isinstance(body, bytes) else b"".join(body)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        yield None, b"", f"unreadable event body: {exc}", ""
        return
    empty = True
    for index, item in enumerate(iter_records(io.BytesIO(raw))):
        empty = False
        if isinstance(item, Rejected):
            yield index, b"", item.reason, item.excerpt
        elif len(item.data) > limit:
            yield index, b"", (f"record is {len(item.data)} bytes; a log entry holds at most "
                               f"{limit}"), item.data[:80].decode("utf-8", "replace")
        else:
            yield index, item.data, None, ""
    if empty:
        yield None, b"", "empty event body", ""



@dataclass(frozen=True)
class EventHubSettings:
    """The hub (by ``connection_string``, or ``namespace`` with DefaultAzureCredential) and
    the checkpoint container (likewise). ``max_wait_s`` bounds how long a stop waits;
    ``scan_max_entries`` bounds the restart scan (None: the whole log)."""

    eventhub: str
    checkpoint_container: str
    connection_string: str | None = None
    namespace: str | None = None
    consumer_group: str = "$Default"
    checkpoint_connection_string: str | None = None
    checkpoint_account_url: str | None = None
    start_at_latest: bool = False
    max_batch_size: int = 300
    max_wait_s: float = 1.0
    scan_max_entries: int | None = 1_000_000

    def __post_init__(self) -> None:
        for one, other, what in [
            (self.connection_string, self.namespace, "Event Hubs connection string or "
             "fully qualified namespace"),
            (self.checkpoint_connection_string, self.checkpoint_account_url, "checkpoint "
             "store connection string or blob account URL")]:
            if (one is None) == (other is None):
                raise ConfigError(f"give exactly one of: {what} (DefaultAzureCredential)")
        if not self.eventhub or not self.checkpoint_container:
            raise ConfigError("the event hub name and the checkpoint container are required")
        if self.max_batch_size < 1 or self.max_wait_s <= 0:
            raise ConfigError("max_batch_size and max_wait_s must be positive")

    @property
    def fully_qualified_namespace(self) -> str:
        """The namespace host name, e.g. ``contoso.servicebus.windows.net``."""
        if self.connection_string is None:
            return str(self.namespace).lower()
        try:
            props = parse_connection_string(self.connection_string)
        except ValueError as exc:
            raise ConfigError(f"Event Hubs connection string: {exc}") from None
        if props.eventhub_name not in (None, self.eventhub):
            raise ConfigError(f"the connection string is for hub {props.eventhub_name!r}, "
                              f"not {self.eventhub!r}")
        return props.fully_qualified_namespace.lower()


def collect_eventhub(writer: Appender, reader: LogReader, settings: EventHubSettings, *,
                     stop: threading.Event, on_reject: Callable[[BadEvent], None] | None = None,
                     on_message: Callable[[str], None] | None = None) -> CollectStats:
    """Seal events from every partition of the hub until ``stop`` is set (e.g. on SIGTERM).

    ``reader`` covers every durable entry of the log (for the restart scan); ``on_reject``
    hears of every bad event or record, ``on_message`` gets progress and SDK error text.

    Raises:
        ConfigError: bad credentials, or the checkpoint container does not exist.
        StorageError: the hub, the checkpoint store or the log failed for good.
    """
    say = on_message or (lambda _text: None)
    namespace, hub = settings.fully_qualified_namespace, settings.eventhub
    client, store = _clients(settings)
    failure: list[BaseException] = []

    def problem(what: str, exc: BaseException) -> None:
        say(f"{what} failed: {type(exc).__name__}: {exc}")
        if what == "append" and not isinstance(exc, StorageUnavailable):
            failure.append(exc)  # not transient (else the SDK re-reads and retries)
            stop.set()

    try:
        with _translated("Event Hubs or its checkpoint store"):
            partitions = client.get_partition_ids()
            stored = {c["partition_id"]: c.get("sequence_number") for c in
                      store.list_checkpoints(namespace, hub, settings.consumer_group)}
        scan = scan_sealed_positions(reader, namespace, hub, partitions=partitions,
                                     max_entries=settings.scan_max_entries)
        say(f"resuming {namespace}/{hub}: checkpoint store at sequence {stored}, log at "
            f"(sequence, record) {scan.positions} ({scan.scanned} entries scanned)")
        sealer = EventHubSealer(writer, namespace=namespace, eventhub=hub,
                                sealed=scan.positions, on_reject=on_reject, on_problem=problem)
        # Used only where the store holds no checkpoint: start at the log's last event
        # (inclusive, so the rest of a torn batch is sealed), else at the oldest event.
        from_log = {p: pos[0] for p, pos in scan.positions.items() if p not in stored}
        default = "@latest" if settings.start_at_latest else "-1"

        def receive() -> None:
            try:
                client.receive_batch(
                    sealer.on_event_batch,
                    max_batch_size=settings.max_batch_size,
                    max_wait_time=settings.max_wait_s,
                    starting_position={p: from_log.get(p, default) for p in partitions},
                    starting_position_inclusive={p: p in from_log for p in partitions},
                    on_error=lambda context, exc: say(  # context None: load balancing
                        f"partition {getattr(context, 'partition_id', '-')}: {exc!r}"),
                )
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)
            finally:
                stop.set()

        thread = threading.Thread(target=receive, name="auditseal-eventhubs", daemon=True)
        thread.start()
        stop.wait()
    finally:
        client.close()  # stops the receive loop after the batch in hand
    thread.join(timeout=30)
    if failure:
        with _translated("Event Hubs"):
            raise failure[0]
    return sealer.stats


def _clients(settings: EventHubSettings) -> tuple[EventHubConsumerClient, BlobCheckpointStore]:
    if settings.checkpoint_connection_string is not None:
        store = BlobCheckpointStore.from_connection_string(
            settings.checkpoint_connection_string, settings.checkpoint_container)
    else:
        store = BlobCheckpointStore(str(settings.checkpoint_account_url),
                                    settings.checkpoint_container,
                                    credential=DefaultAzureCredential())
    if settings.connection_string is not None:
        return EventHubConsumerClient.from_connection_string(
            settings.connection_string, consumer_group=settings.consumer_group,
            eventhub_name=settings.eventhub, checkpoint_store=store), store
    return EventHubConsumerClient(
        fully_qualified_namespace=settings.fully_qualified_namespace,
        eventhub_name=settings.eventhub, consumer_group=settings.consumer_group,
        credential=DefaultAzureCredential(), checkpoint_store=store), store


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Translate Azure SDK exceptions into auditseal errors, once, here."""
    try:
        yield
    except (hub_errors.AuthenticationError, core_errors.ClientAuthenticationError) as exc:
        raise ConfigError(f"{what}: authentication failed: {exc}") from exc
    except core_errors.ResourceNotFoundError as exc:
        raise ConfigError(f"{what}: {exc} (does the checkpoint container exist?)") from exc
    except (hub_errors.ConnectError, core_errors.ServiceRequestError) as exc:
        raise StorageUnavailable(f"{what}: {exc}") from exc
    except (hub_errors.EventHubError, core_errors.AzureError) as exc:
        raise StorageError(f"{what}: {exc}") from exc
