"""Refusing what the service cannot or will not take: size, type, rate, overload.

Concept: *request refusals* (docs/api.md, "Ingest" limits). Each refusal is an
:class:`ApiError` carrying its status, machine code and one human line; the app's error
handler renders every one as ``{"error": {"code", "message"}}``.

- 413 ``payload_too_large``: :class:`BodyLimit` refuses a Content-Length over the limit
  before reading, and counts the bytes of every body as it is received, so a chunked
  upload without Content-Length is cut off at the limit instead of filling memory.
- 415 ``unsupported_media_type``: :func:`media_type` against what a route accepts.
- 429 ``rate_limited``: :class:`RateLimiter`, a token bucket per key counted in events.
- 503 ``overloaded`` / ``storage_unavailable``: raised where the writer refuses
  (:class:`~auditseal.errors.OverloadError`, :class:`~auditseal.errors.StorageError`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiError(HTTPException):
    """An HTTP error answer: status, machine code, one line for people, extra headers.

    A subclass of Starlette's ``HTTPException`` so that FastAPI passes it through body
    parsing untouched (any other exception there becomes a generic 400).
    """

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, body: dict[str, Any] | None = None
                 ) -> None:
        """Describe the refusal; ``body`` adds members beside ``error`` (ingest results)."""
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.body = body or {}


def error_body(code: str, message: str) -> dict[str, Any]:
    """The documented error document."""
    return {"error": {"code": code, "message": message}}


def retry_after(seconds: float) -> dict[str, str]:
    """A Retry-After header of whole seconds (at least 1)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def too_large(limit: int) -> ApiError:
    """The 413 answer for a body over ``limit`` bytes."""
    return ApiError(413, "payload_too_large",
                    f"request body is larger than the limit of {limit} bytes; split it")


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (413), however sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        """Wrap ``app``."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length first, then count the body as the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await _send_json(send, 413, error_body("payload_too_large",
                                                           too_large(self.max_bytes).message))
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, counted, send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header, lower case (``""`` when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_media_type(content_type: str | None, accepted: tuple[str, ...]) -> str:
    """The request's media type if a route accepts it.

    Raises:
        ApiError: 415 ``unsupported_media_type``.
    """
    found = media_type(content_type)
    if found not in accepted:
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type {found or '(none)'} is not accepted here; use one of "
                       f"{', '.join(accepted)}")
    return found


class RateLimiter:
    """A token bucket per key, counted in events.

    A bucket holds up to ``rate * burst_s`` tokens and refills at ``rate`` per second. A
    request is let through while the bucket is not empty and may take it into debt, so one
    batch larger than the bucket is still possible, after which the key waits the debt off;
    the long-run rate stays bounded by ``rate`` either way.
    """

    def __init__(self, rate_per_s: float, burst_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``rate_per_s`` 0 turns limiting off."""
        self.rate = rate_per_s
        self.capacity = rate_per_s * burst_s
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def take(self, key: str, events: int) -> None:
        """Spend ``events`` tokens of ``key``'s bucket.

        Raises:
            ApiError: 429 ``rate_limited`` with Retry-After when the bucket is empty.
        """
        if self.rate <= 0 or events <= 0:
            return
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens <= 0:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
                raise ApiError(429, "rate_limited",
                               f"this key may send {self.rate:g} events per second; retry in "
                               f"{math.ceil(wait)} s", headers=retry_after(wait))
            self._buckets[key] = (tokens - events, now)
