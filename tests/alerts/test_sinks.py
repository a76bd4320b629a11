"""Alert delivery against a real HTTP server on 127.0.0.1 that fails, then recovers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditseal.alerts.engine import Alert
from auditseal.alerts.matcher import Hit
from auditseal.alerts.sinks import (
    Dispatcher,
    FileSink,
    LogSink,
    RetryPolicy,
    WebhookSink,
    format_message,
)
from auditseal.core.entry import decode_entry
from auditseal.errors import StorageUnavailable
from auditseal.log.local import init_log, latest_checkpoint, open_writer
from auditseal.log.reader import LogReader
from auditseal.verify import DirectorySource

ALERT = Alert("30c69454-6352-4071-8be5-ba5db37e5214", "Azure Storage Account Keys Listed",
              "medium", "rule", (5, 6), datetime(2026, 3, 14, 9, 0, tzinfo=UTC),
              (("caller", "mallory@contoso.example"),),
              (Hit("selection", "operationName", (), "X/LISTKEYS/ACTION", "x/listkeys/action"),))
FAST = RetryPolicy(attempts=4, base_delay_s=0.001, max_delay_s=0.01)


class Receiver:
    """An HTTP receiver that answers 503 to the first ``failures`` requests."""

    def __init__(self) -> None:
        self.failures = 0
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                else:
                    receiver.bodies.append(orjson.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_webhook_retries_with_backoff_until_the_receiver_recovers(receiver: Receiver,
                                                                 tmp_path: Path) -> None:
    receiver.failures = 2
    waits: list[float] = []
    dispatcher = Dispatcher([WebhookSink(receiver.url)], dead_letter=tmp_path / "dead.jsonl",
                            retry=RetryPolicy(attempts=5, base_delay_s=0.5, max_delay_s=30),
                            sleep=waits.append)
    [delivery] = dispatcher.dispatch([ALERT])
    assert (delivery.delivered, delivery.attempts) == (True, 3)
    assert waits == [0.5, 1.0]  # exponential backoff
    assert receiver.bodies == [ALERT.to_json()]
    assert not (tmp_path / "dead.jsonl").exists()


def test_alert_is_dead_lettered_while_down_and_redelivered_after(receiver: Receiver,
                                                                 tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    receiver.failures = 100
    dispatcher = Dispatcher([WebhookSink(receiver.url, "slack")], dead_letter=dead, retry=FAST)
    [delivery] = dispatcher.dispatch([ALERT])
    assert not delivery.delivered
    assert receiver.attempts == FAST.attempts
    parked = orjson.loads(dead.read_bytes())
    assert parked["alert"] == ALERT.to_json()
    assert "503" in parked["error"]
    receiver.failures = 0
    assert dispatcher.redeliver() == (1, 0)
    assert receiver.bodies == [format_message(ALERT, "slack")]
    assert dead.read_bytes() == b""


def test_unreachable_receiver_is_dead_lettered(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    sink = WebhookSink("http://127.0.0.1:9/closed", timeout_s=0.5)
    [delivery] = Dispatcher([sink], dead_letter=dead, retry=FAST).dispatch([ALERT])
    assert not delivery.delivered
    assert "unreachable" in (delivery.error or "")
    assert dead.exists()


def test_without_dead_letter_an_undeliverable_alert_raises(tmp_path: Path) -> None:
    sink = WebhookSink("http://127.0.0.1:9/closed", timeout_s=0.5)
    with pytest.raises(StorageUnavailable):
        Dispatcher([sink], retry=FAST).dispatch([ALERT])


def test_teams_message_is_an_adaptive_card() -> None:
    message = format_message(ALERT, "teams")
    [attachment] = message["attachments"]
    assert message["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Log indexes"] == "5, 6"
    assert facts["caller"] == "mallory@contoso.example"


def test_slack_message_has_text_and_blocks() -> None:
    message = format_message(ALERT, "slack")
    assert "Azure Storage Account Keys Listed" in message["text"]
    assert [b["type"] for b in message["blocks"]] == ["header", "section"]


@pytest.mark.parametrize(("url", "fmt"), [("ftp://x", "json"), ("http://x", "xml")],
                         ids=["bad-scheme", "bad-format"])
def test_webhook_config_is_validated(url: str, fmt: str) -> None:
    with pytest.raises(ValueError, match=r"webhook URL|format"):
        WebhookSink(url, fmt)


def test_file_sink_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    Dispatcher([FileSink(path)]).dispatch([ALERT, ALERT])
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == [ALERT.to_json()] * 2


def test_alerts_are_sealed_in_the_log_as_kind_alert(tmp_path: Path) -> None:
    log, _ = init_log(tmp_path / "log", "test.local/alerts")
    with open_writer(log) as writer:
        writer.append([b'{"operationName":"x"}'])
        Dispatcher([LogSink(writer)]).dispatch([ALERT])
    checkpoint = latest_checkpoint(log)
    assert checkpoint is not None
    entries = [decode_entry(raw) for _, raw in LogReader(DirectorySource(log.root),
                                                          checkpoint).entries()]
    assert [e.header.kind for e in entries] == ["event", "alert"]
    assert orjson.loads(entries[1].event) == ALERT.to_json()
