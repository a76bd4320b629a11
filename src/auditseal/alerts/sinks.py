"""Where alerts go: webhooks (JSON, Teams, Slack), a file, and the sealed log itself.

Concept: *alert delivery* (issue 4, "Sinks ... with retries, backoff and a dead-letter file so
no alert is lost when the receiver is down. Every fired alert is itself appended to the
sealed log"). A :class:`Dispatcher` hands each alert to every sink; a sink that fails is
retried with exponential backoff (``base_delay_s * 2**attempt``, capped); an alert that still
cannot be delivered is appended, with the sink's name and the last error, to the dead-letter
file (JSON lines, fsynced), from which :meth:`Dispatcher.redeliver` sends it again later.

Message formats:

* ``json``: the alert as ``Alert.to_json()`` (a generic webhook);
* ``teams``: a Microsoft Teams Workflows message with an Adaptive Card attachment
  (``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": {...}}]}``);
* ``slack``: a Slack incoming-webhook message (``text`` plus Block Kit ``blocks``).

HTTP uses the standard library (``urllib``): one POST per alert, a 2xx answer is delivery.
Failures are :class:`~auditseal.errors.StorageUnavailable` (transient, retried).
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from auditseal.alerts.engine import Alert
from auditseal.errors import StorageUnavailable

__all__ = ["Dispatcher", "FileSink", "LogSink", "RetryPolicy", "Sink", "WebhookSink",
           "format_message"]

FORMATS = ("json", "teams", "slack")


class Sink(Protocol):
    """Something that takes alerts; raises on failure so the dispatcher can retry."""

    @property
    def name(self) -> str:
        """How the sink is named in reports and the dead-letter file."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert or raise."""


def format_message(alert: Alert, fmt: str) -> dict[str, Any]:
    """The request body for ``fmt`` ("json", "teams" or "slack")."""
    body = alert.to_json()
    if fmt == "json":
        return body
    facts = [("Rule", f"{alert.title} ({alert.rule_id})"), ("Level", alert.level),
             ("Log indexes", ", ".join(str(i) for i in alert.indexes[:50])),
             *((name, value) for name, value in alert.group)]
    if body["time"]:
        facts.append(("Time", body["time"]))
    if fmt == "teams":
        card = {
            "type": "AdaptiveCard", "version": "1.4",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "body": [
                {"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": True,
                 "text": f"auditseal alert: {alert.title}"},
                {"type": "TextBlock", "wrap": True, "text": alert.description or alert.title},
                {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts]},
            ],
        }
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
             "content": card}]}
    if fmt == "slack":
        lines = "\n".join(f"*{k}:* {v}" for k, v in facts)
        return {
            "text": f"auditseal alert: {alert.title} ({alert.level})",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text",
                                            "text": f"auditseal alert: {alert.title}"[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}},
            ],
        }
    raise ValueError(f"unknown message format {fmt!r}; use one of {', '.join(FORMATS)}")


@dataclass(frozen=True)
class WebhookSink:
    """POST each alert to ``url`` in ``fmt`` (json, teams or slack)."""

    url: str
    fmt: str = "json"
    timeout_s: float = 10.0
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        """Validate once."""
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s): {self.url!r}")
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown message format {self.fmt!r}; use one of {FORMATS}")

    @property
    def name(self) -> str:
        """The sink as named in the dead-letter file."""
        return f"{self.fmt}:{self.url}"

    def send(self, alert: Alert) -> None:
        """POST the alert; a non-2xx answer or a network error raises StorageUnavailable."""
        data = orjson.dumps(format_message(alert, self.fmt))
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            self.url, data=data, method="POST",
            headers={"Content-Type": "application/json", **dict(self.headers)})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310
                status = answer.status
        except urllib.error.HTTPError as exc:
            raise StorageUnavailable(f"{self.url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise StorageUnavailable(f"{self.url} unreachable: {exc}") from exc
        if not 200 <= status < 300:
            raise StorageUnavailable(f"{self.url} answered HTTP {status}")


@dataclass(frozen=True)
class FileSink:
    """Append each alert as one JSON line to ``path`` (fsynced: an alert is not lost)."""

    path: Path

    @property
    def name(self) -> str:
        """The sink as named in the dead-letter file."""
        return f"file:{self.path}"

    def send(self, alert: Alert) -> None:
        """Append the alert."""
        _append_line(self.path, alert.to_json())


class _Appender(Protocol):
    def append(self, events: Sequence[bytes], *, source: str | None = ...,
               kind: str = ...) -> list[int]: ...


@dataclass(frozen=True)
class LogSink:
    """Seal each alert in the log itself, as an entry of kind "alert"."""

    writer: _Appender
    name: str = "sealed-log"

    def send(self, alert: Alert) -> None:
        """Append the alert to the log (durable when this returns)."""
        self.writer.append([orjson.dumps(alert.to_json())], source="alerts", kind="alert")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a failing sink before dead-lettering.

    Attributes:
        attempts: tries per alert and sink (>= 1).
        base_delay_s: the wait after the first failure; doubled after each one.
        max_delay_s: the longest single wait.
    """

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        """Validate once."""
        if self.attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("attempts must be >= 1 and delays >= 0")

    def delay_s(self, failures: int) -> float:
        """The wait after ``failures`` failed tries."""
        return float(min(self.max_delay_s, self.base_delay_s * 2.0 ** (failures - 1)))


@dataclass
class Delivery:
    """What happened to one alert at one sink."""

    sink: str
    delivered: bool
    attempts: int
    error: str | None = None


class Dispatcher:
    """Delivers alerts to every sink, retrying, and dead-letters what it cannot deliver."""

    def __init__(self, sinks: Sequence[Sink], *, dead_letter: Path | None = None,
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """Prepare; ``dead_letter`` is required when any sink may fail for good."""
        self.sinks = list(sinks)
        self.dead_letter = dead_letter
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def dispatch(self, alerts: Sequence[Alert]) -> list[Delivery]:
        """Send every alert to every sink; return one Delivery per (alert, sink)."""
        return [self._deliver(alert, sink) for alert in alerts for sink in self.sinks]

    def _deliver(self, alert: Alert, sink: Sink) -> Delivery:
        error: Exception | None = None
        for attempt in range(1, self.retry.attempts + 1):
            try:
                sink.send(alert)
            except Exception as exc:
                error = exc
                if attempt < self.retry.attempts:
                    self._sleep(self.retry.delay_s(attempt))
                continue
            return Delivery(sink.name, True, attempt)
        reason = f"{type(error).__name__}: {error}"
        if self.dead_letter is None:
            raise StorageUnavailable(
                f"alert {alert.rule_id} not delivered to {sink.name} and no dead-letter file "
                f"is configured: {reason}")
        _append_line(self.dead_letter, {"sink": sink.name, "error": reason,
                                        "attempts": self.retry.attempts,
                                        "alert": alert.to_json()})
        return Delivery(sink.name, False, self.retry.attempts, reason)

    def redeliver(self) -> tuple[int, int]:
        """Retry every dead-lettered alert once more; keep those that still fail.

        Returns (delivered, still dead-lettered).
        """
        if self.dead_letter is None or not self.dead_letter.exists():
            return 0, 0
        parked = [orjson.loads(line) for line in self.dead_letter.read_bytes().splitlines()
                  if line.strip()]
        by_name = {sink.name: sink for sink in self.sinks}
        remaining: list[dict[str, Any]] = []
        delivered = 0
        for record in parked:
            sink = by_name.get(record["sink"])
            if sink is None:
                remaining.append({**record, "error": f"sink {record['sink']} is not configured"})
                continue
            try:
                sink.send(_alert_from_json(record["alert"]))
                delivered += 1
            except Exception as exc:
                remaining.append({**record, "error": f"{type(exc).__name__}: {exc}"})
        tmp = self.dead_letter.with_suffix(".tmp")
        tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in remaining))
        tmp.replace(self.dead_letter)
        return delivered, len(remaining)


def _alert_from_json(data: dict[str, Any]) -> Alert:
    from auditseal.alerts.matcher import Hit
    from auditseal.ingest.azure_times import parse_azure_time

    return Alert(
        rule_id=data["rule_id"], title=data["title"], level=data["level"], kind=data["kind"],
        indexes=tuple(data["indexes"]), time=parse_azure_time(data["time"]),
        group=tuple(data.get("group", {}).items()),
        matches=tuple(Hit(m["detection"], m["field"], (), m["expected"], m["found"])
                      for m in data.get("matches", [])),
        description=data.get("description", ""),
    )


def _append_line(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, orjson.dumps(record) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
