"""Opt-in: the Event Hubs collector against a real Event Hub, end to end.

Set AUDITSEAL_EVENTHUB_LIVE_CONNECTION_STRING (a namespace or hub connection string with
Send and Listen) and AUDITSEAL_EVENTHUB_LIVE_NAME (the hub). Checkpoints go to
AUDITSEAL_EVENTHUB_LIVE_CHECKPOINT_CONNECTION_STRING if set, else to the session's Azurite
(the checkpoint store is plain blob storage). The test sends an Azure Monitor envelope and
two plain events with EventHubProducerClient, collects them with ``collect_eventhub``,
verifies the log, then restarts the collector and checks nothing is sealed twice.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.eventhub import EventData, EventHubProducerClient
from azure.storage.blob import BlobServiceClient

from auditseal.core.entry import decode_entry
from auditseal.core.notekeys import NoteVerifier
from auditseal.ingest.azure_eventhubs import (
    EventHubSettings,
    collect_eventhub,
    parse_event_source,
)
from auditseal.log.local import LocalLog, init_log, open_writer
from auditseal.log.reader import LogReader
from auditseal.log.writer import LogWriter
from auditseal.verify import DirectorySource, verify_log

CONNECTION = os.environ.get("AUDITSEAL_EVENTHUB_LIVE_CONNECTION_STRING", "")
HUB = os.environ.get("AUDITSEAL_EVENTHUB_LIVE_NAME", "")
CHECKPOINTS = os.environ.get("AUDITSEAL_EVENTHUB_LIVE_CHECKPOINT_CONNECTION_STRING", "")

pytestmark = [
    pytest.mark.azure_live,
    pytest.mark.skipif(not (CONNECTION and HUB), reason="needs a real Event Hub: set "
                       "AUDITSEAL_EVENTHUB_LIVE_CONNECTION_STRING and "
                       "AUDITSEAL_EVENTHUB_LIVE_NAME"),
]


class MarkerCounter:
    """The real writer, counting appended events that carry ``marker``; stops when done."""

    def __init__(self, writer: LogWriter, marker: bytes, want: int, stop: threading.Event
                 ) -> None:
        self.writer, self.marker, self.want, self.stop = writer, marker, want, stop
        self.seen = 0

    def append(self, events: Any, *, sources: Any = None) -> list[int]:
        indexes = self.writer.append(events, sources=sources)  # durable before we count
        self.seen += sum(self.marker in event for event in events)
        if self.seen >= self.want:
            self.stop.set()
        return indexes

    def max_event_bytes(self, source: str | None) -> int:
        return self.writer.max_event_bytes(source)


def _collect(log: LocalLog, settings: EventHubSettings, marker: bytes, want: int,
             timeout_s: float) -> int:
    stop = threading.Event()
    timer = threading.Timer(timeout_s, stop.set)
    timer.start()
    try:
        with open_writer(log) as writer:
            checkpoint = writer.publish() or writer.checkpoint
            assert checkpoint is not None
            counter = MarkerCounter(writer, marker, want, stop)
            collect_eventhub(counter, LogReader(log.object_store(), checkpoint), settings,
                             stop=stop)
            return counter.seen
    finally:
        timer.cancel()


def test_send_collect_restart_verify(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    checkpoints = CHECKPOINTS or request.getfixturevalue("azurite").connection_string
    container = f"auditseal-live-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(checkpoints).create_container(container)
    marker = uuid.uuid4().hex
    now = datetime.now(UTC).isoformat()
    records = [orjson.dumps({"time": now, "operationName": "AUDITSEAL/LIVE/TEST",
                             "category": "Administrative", "marker": marker, "n": n})
               for n in range(5)]
    bodies = [b'{"records": [' + b",".join(records[:3]) + b"]}", records[3], records[4]]
    with EventHubProducerClient.from_connection_string(CONNECTION, eventhub_name=HUB) as sender:
        batch = sender.create_batch()
        for body in bodies:
            batch.add(EventData(body))
        sender.send_batch(batch)

    log, vkey = init_log(tmp_path / "log", "test.local/eventhubs-live")
    settings = EventHubSettings(eventhub=HUB, checkpoint_container=container,
                                connection_string=CONNECTION,
                                checkpoint_connection_string=checkpoints, scan_max_entries=None)
    assert _collect(log, settings, marker.encode(), 5, timeout_s=120) == 5
    # Restart: the checkpoints (and the log) say everything is sealed already.
    assert _collect(log, settings, marker.encode(), 1, timeout_s=15) == 0

    report = verify_log(DirectorySource(log.root), [NoteVerifier.from_vkey(vkey)])
    assert report.ok, report.findings
    with open_writer(log) as writer:
        checkpoint = writer.checkpoint
        assert checkpoint is not None
        entries = [decode_entry(e) for _, e in LogReader(log.object_store(),
                                                         checkpoint).entries()]
    ours = [e for e in entries if marker.encode() in e.event]
    assert sorted(e.event for e in ours) == sorted(records)  # verbatim, each exactly once
    for entry in ours:
        assert entry.header.source is not None
        parsed = parse_event_source(entry.header.source)
        assert parsed is not None
        assert parsed[1] == HUB
