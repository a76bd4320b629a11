"""A ``logging.Handler`` that seals log records as JSON audit events.

Concept: the *logging bridge* of the client SDK (issue 5, "Client SDK": "a logging.Handler
so ``logging.getLogger("audit").info(...)`` lands in the sealed log"). Each record becomes
one JSON object::

    {"time": "2026-05-01T12:00:00.123456Z", "level": "INFO", "logger": "audit",
     "message": "user signed in", "user": "alice", ...,        <- the ``extra`` fields
     "source": {"file": "app.py", "line": 12, "function": "login"},
     "process": 4242, "thread": "MainThread", "exception": "Traceback ..."}

Fields passed with ``extra={...}`` are copied to the top level (a field named like one of
ours is kept under ``extra`` instead, so it never overwrites what the handler knows).
Values JSON cannot hold are written with ``str()``. The handler only queues the event;
delivery, retries and buffering are the client's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from auditseal.client.client import AuditsealClient

__all__ = ["AuditLogHandler"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}
_OURS = frozenset({"time", "level", "logger", "message", "source", "process", "thread",
                   "exception", "stack", "extra"})


class AuditLogHandler(logging.Handler):
    """Sends each log record to auditseal through an :class:`AuditsealClient`."""

    def __init__(self, client: AuditsealClient, level: int = logging.NOTSET, *,
                 close_client: bool = False) -> None:
        """Queue records on ``client``; with ``close_client``, closing the handler closes it."""
        super().__init__(level)
        self.client = client
        self._close_client = close_client

    def event(self, record: logging.LogRecord) -> dict[str, Any]:
        """The audit event for ``record`` (see the module docstring)."""
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra: dict[str, Any] = {}
        for key, value in vars(record).items():
            if key not in _STANDARD:
                (extra if key in _OURS else event)[key] = value
        if extra:
            event["extra"] = extra
        event["source"] = {"file": record.pathname, "line": record.lineno,
                           "function": record.funcName}
        event["process"] = record.process
        event["thread"] = record.threadName
        if record.exc_info:
            event["exception"] = logging.Formatter().formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = record.stack_info
        return event

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record's event; a failure goes to ``handleError``, never the caller."""
        try:
            data = orjson.dumps(self.event(record), default=str,
                                option=orjson.OPT_NON_STR_KEYS)
            self.client.send(data)
        except Exception:  # the logging contract: report through handleError, do not raise
            self.handleError(record)

    def flush(self) -> None:
        """Wait (up to 30 s) until the queued events are delivered."""
        self.client.flush()

    def close(self) -> None:
        """Detach; close the client too if this handler owns it."""
        try:
            if self._close_client:
                self.client.close()
        finally:
            super().close()
