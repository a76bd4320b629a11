"""The auditseal client: send audit events to the service, batched, retried and buffered.

Concept: the *client SDK* (issue 5, "Client SDK"; the HTTP contract is docs/api.md,
"Ingest" and "Reading the log"). :meth:`AuditsealClient.send` queues an event and returns
at once; a background thread sends the queue as JSON arrays to ``POST /v1/events`` in
batches of at most ``batch_max_events``, at the latest ``batch_max_age_s`` after the oldest
queued event. Connection errors, 429, 5xx (503 included) are retried with exponential
backoff and jitter, honouring ``Retry-After``; an event leaves the queue only once the
service answered for it (sealed, or rejected as malformed). With ``buffer_dir`` the queue
is the on-disk journal of :mod:`auditseal.client.buffer`, so events survive an outage of
the service and a restart of the application; without it they are kept in memory.

Retries seal nothing twice (docs/api.md, "Idempotent retries"): every batch carries a fresh
random ``Idempotency-Key`` (32 hex digits) and every retry of that batch sends the same
key, so when the service had sealed a batch and only its answer was lost, the retry is
answered with the remembered answer instead of being sealed again. The on-disk buffer
records the batch and its key before the first attempt, so a batch left unacknowledged by
a crash or a restart of the application is sent again as the same batch under the same
key. When a 413 splits a batch, the halves get their own keys, derived from the batch's
(``KEY.0``, ``KEY.1``, and so on down), so a retry of the whole batch sends each half under
its key again. 409 ``idempotency_key_in_flight`` is retried like a 503; a 422
``idempotency_key_reused`` (a batch re-formed differently, after a corrupt buffer segment)
sends the batch under a new key rather than drop it. The service remembers answers for a
window (24 h by default): a batch retried after that, or a crash of the service between
making the batch durable and remembering its answer, can still be sealed twice.

Events are sent as elements of a JSON array, which the service seals byte for byte
(docs/api.md: "Each event is sealed with its bytes exactly as received"); an event that
is itself an Azure Monitor ``{"records": [...]}`` envelope is therefore sealed as one event.
:func:`auditseal.client.receipt.verify_receipt` checks a receipt offline.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from auditseal.client.answers import (
    Delivery,
    Rejection,
    Result,
    error_code,
    error_text,
    results,
    retry_after,
    shift,
)
from auditseal.client.buffer import DiskBuffer, EventQueue, MemoryQueue, new_batch_key
from auditseal.errors import ConfigError, FormatError, IngestError, StorageUnavailable
from auditseal.ingest.records import validate_event

__all__ = ["AuditsealClient", "Delivery", "Rejection", "Result"]

_log = logging.getLogger(__name__)
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_AUTH_STATUS = frozenset({401, 403})
_KEY_HEADER = "Idempotency-Key"


class _Retry(Exception):
    def __init__(self, message: str, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class _AuthRefused(_Retry):
    """401/403: retried slowly in the background, raised by the synchronous calls."""


class _KeyReused(Exception):
    """422 ``idempotency_key_reused``: the service knows the key with another body."""


class _Closing(Exception):
    """The client is closing and its deadline passed: stop retrying."""


class AuditsealClient:
    """Sends audit events to an auditseal service (see the module docstring)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        batch_max_events: int = 500,
        batch_max_age_s: float = 0.5,
        buffer_dir: str | Path | None = None,
        max_retries: int = 8,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 30.0,
        timeout_s: float = 30.0,
        on_result: Callable[[bytes, Result], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Connect lazily to ``url`` with ``api_key``; replay what ``buffer_dir`` holds.

        Args:
            url: the service's base URL, e.g. ``http://127.0.0.1:8080``.
            api_key: an API key with the ingest role (or an Entra ID access token).
            batch_max_events: most events per request.
            batch_max_age_s: longest an event waits for its batch to fill.
            buffer_dir: directory of the on-disk buffer; None keeps the queue in memory.
            max_retries: attempts after the first for :meth:`send_now` and :meth:`receipt`;
                the background sender retries until the client is closed.
            backoff_initial_s: first retry delay; it doubles per attempt (with jitter).
            backoff_max_s: the longest delay between two attempts.
            timeout_s: HTTP timeout of one request.
            on_result: called from the sender thread with each event and its result.
            transport: an httpx transport (tests, proxies); default: a plain connection.
        """
        if batch_max_events < 1 or batch_max_age_s < 0 or max_retries < 0:
            raise ConfigError("batch_max_events must be >= 1, batch_max_age_s and "
                              "max_retries >= 0")
        self.batch_max_events = batch_max_events
        self.batch_max_age_s = batch_max_age_s
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._on_result = on_result
        self._http = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout_s, transport=transport,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "auditseal-client"})
        self._queue: EventQueue = DiskBuffer(buffer_dir) if buffer_dir else MemoryQueue()
        self._cond = threading.Condition()
        self._oldest_at = time.monotonic() if len(self._queue) else None
        self._flush_requested = False
        self._in_flight = 0
        self._closing_deadline: float | None = None
        self._closed = False
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="auditseal-client", daemon=True)
        self._thread.start()

    # --- public API ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events queued (or in flight) and not yet answered by the service."""
        with self._cond:
            return len(self._queue)

    def send(self, event: dict[str, Any] | bytes) -> None:
        """Queue one event: a dict (serialized as JSON) or the exact bytes of a JSON object.

        Raises:
            IngestError: the bytes are not one JSON object (nothing is queued).
            ConfigError: the client is closed.
        """
        data = orjson.dumps(event) if isinstance(event, dict) else bytes(event)
        if (reason := validate_event(data)) is not None:
            raise IngestError(f"not an audit event: {reason}")
        with self._cond:
            if self._closed or self._closing_deadline is not None:
                raise ConfigError("the auditseal client is closed")
            self._queue.append(data)
            if self._oldest_at is None:
                self._oldest_at = time.monotonic()
                self._cond.notify_all()  # the sender sleeps without a timeout when idle
            elif len(self._queue) >= self.batch_max_events:
                self._cond.notify_all()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Send everything queued now; True if the queue drained within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while len(self._queue) and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            self._flush_requested = False
            return not len(self._queue)

    def close(self, timeout_s: float = 10.0) -> int:
        """Try to deliver what is queued for up to ``timeout_s``, then stop.

        Returns:
            The number of events left undelivered: kept in ``buffer_dir`` for the next
            start, or lost when the queue is in memory (a warning is logged).
        """
        with self._cond:
            if self._closed:
                return 0
            self._closing_deadline = time.monotonic() + timeout_s
            self._cond.notify_all()
        self._thread.join(timeout_s + 5.0)
        with self._cond:
            self._closed = True
            left = len(self._queue)
            self._queue.close()
        self._http.close()
        if left and isinstance(self._queue, MemoryQueue):
            _log.warning("auditseal client closed with %d undelivered events (no buffer_dir)",
                         left)
        return left

    def __enter__(self) -> AuditsealClient:
        """Use as a context manager; closing on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close, delivering what is queued."""
        self.close()

    def send_now(self, events: Sequence[dict[str, Any] | bytes]) -> list[Result]:
        """Send ``events`` synchronously (not through the queue) and return their results.

        Raises:
            IngestError: an event is not one JSON object.
            StorageUnavailable: the service stayed unreachable or overloaded for
                ``max_retries`` retries.
            ConfigError: the service refused the credentials (401/403).
        """
        batch = [orjson.dumps(e) if isinstance(e, dict) else bytes(e) for e in events]
        for number, data in enumerate(batch):
            if (reason := validate_event(data)) is not None:
                raise IngestError(f"event {number} is not an audit event: {reason}")
        return self._deliver(batch, new_batch_key(), max_retries=self.max_retries)

    def receipt(self, index: int, wait_s: float = 0.0) -> str:
        """The receipt (C2SP tlog-proof text) of entry ``index`` from GET /v1/receipts.

        Waits up to ``wait_s`` while the service answers 202 ``not_yet_sealed``.

        Raises:
            StorageUnavailable: not sealed within ``wait_s``, or the service is unreachable.
            ConfigError: 401/403.
            FormatError: any other refusal (e.g. 404 for an index not in the log).
        """
        deadline = time.monotonic() + wait_s
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self._http.get(f"/v1/receipts/{index}")
            except httpx.TransportError as exc:
                problem = f"cannot reach the service: {exc!r}"
            else:
                if response.status_code == 200:
                    return response.text
                problem = f"HTTP {response.status_code}: {error_text(response)}"
                if response.status_code in _AUTH_STATUS:
                    raise ConfigError(f"receipt {index}: {problem}")
                if response.status_code != 202 and response.status_code not in _RETRY_STATUS:
                    raise FormatError(f"receipt {index}: {problem}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise StorageUnavailable(f"receipt {index}: {problem}")
            time.sleep(min(self._backoff(attempt, response), left))
            attempt += 1

    # --- the sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                claimed = self._next_batch()
                if claimed is None:
                    return
                self._queue.sync()
            batch, key = claimed
            try:
                answered = self._deliver(batch, key, max_retries=None)
            except _Closing:
                return
            with self._cond:
                self._queue.ack(len(batch))
                if not len(self._queue):
                    self._oldest_at = None
                self._cond.notify_all()
            if self._on_result is not None:
                for result in answered:
                    self._on_result(batch[result.item], result)

    def _next_batch(self) -> tuple[list[bytes], str] | None:
        """Wait (holding the condition) until a batch is due; None when closing and done."""
        while True:
            waiting = len(self._queue)
            deadline = self._closing_deadline
            closing = deadline is not None
            if deadline is not None and (not waiting or time.monotonic() >= deadline):
                return None
            if waiting:
                assert self._oldest_at is not None
                due = self._oldest_at + self.batch_max_age_s
                if (waiting >= self.batch_max_events or closing or self._flush_requested
                        or time.monotonic() >= due):
                    return self._queue.claim(self.batch_max_events)
                self._cond.wait(max(0.0, due - time.monotonic()))
            else:
                self._cond.wait()

    def _deliver(self, batch: list[bytes], key: str, *, max_retries: int | None
                 ) -> list[Result]:
        attempt = 0
        while True:
            try:
                return self._post(batch, key)
            except _KeyReused:
                # Only a batch re-formed differently under its key gets here (a corrupt
                # buffer segment): send it as new rather than drop audit events.
                _log.warning("auditseal client: Idempotency-Key %s was used for another "
                             "batch; sending this one under a new key", key)
                key = new_batch_key()
            except _Retry as retry:
                self.last_error = str(retry)
                if max_retries is not None and isinstance(retry, _AuthRefused):
                    raise ConfigError(f"the service refused the credentials: {retry}") from None
                if max_retries is not None and attempt >= max_retries:
                    raise StorageUnavailable(f"gave up after {attempt + 1} attempts: "
                                             f"{retry}") from None
                delay = retry.delay_s if retry.delay_s is not None else self._backoff(attempt)
                attempt += 1
                _log.debug("auditseal client: %s; retrying in %.2f s", retry, delay)
                self._sleep(delay, interruptible=max_retries is None)

    def _post(self, batch: list[bytes], key: str) -> list[Result]:
        # NDJSON unless an event spans lines: ~6x faster to split than an array, same bytes.
        if any(b"\n" in event or b"\r" in event for event in batch):
            body, media = b"[" + b",".join(batch) + b"]", "application/json"
        else:
            body, media = b"\n".join(batch) + b"\n", "application/x-ndjson"
        try:
            response = self._http.post("/v1/events", content=body,
                                       headers={"Content-Type": media, _KEY_HEADER: key})
        except httpx.TransportError as exc:
            raise _Retry(f"cannot reach the service: {exc!r}") from None
        status = response.status_code
        code = error_code(response) if status != 200 else None
        if status == 200 or (status == 400 and code == "no_valid_events"):
            self.last_error = None
            return results(response, len(batch))
        if status == 413 and len(batch) > 1:
            # Each half has its own key, derived from the batch's, so that a retry of the
            # whole batch (the second half failing) sends the first half under its key again.
            half = len(batch) // 2
            first = self._post(batch[:half], key + ".0")
            return first + [shift(r, half) for r in self._post(batch[half:], key + ".1")]
        problem = f"HTTP {status}: {error_text(response)}"
        if status in _RETRY_STATUS or code == "idempotency_key_in_flight":
            raise _Retry(problem, retry_after(response))
        if code == "idempotency_key_reused":
            raise _KeyReused(problem)
        if status in _AUTH_STATUS:
            # Keep the events: a wrong or expired key is fixed by an operator, not by
            # dropping the audit trail. Retry slowly; send_now raises after max_retries.
            _log.error("auditseal client: the service refused the API key (%s)", problem)
            raise _AuthRefused(problem, self.backoff_max_s)
        _log.error("auditseal client: %d events refused for good: %s", len(batch), problem)
        return [Rejection(item, problem) for item in range(len(batch))]

    def _backoff(self, attempt: int, response: httpx.Response | None = None) -> float:
        if response is not None and (after := retry_after(response)) is not None:
            return after
        cap = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(attempt, 30))
        # Equal jitter: at least half the cap, so clients spread out but still back off.
        return cap / 2 + random.uniform(0, cap / 2)  # noqa: S311 -- jitter, not a secret

    def _sleep(self, delay_s: float, *, interruptible: bool) -> None:
        if not interruptible:
            time.sleep(delay_s)
            return
        end = time.monotonic() + delay_s
        with self._cond:
            while (left := end - time.monotonic()) > 0:
                deadline = self._closing_deadline
                if deadline is not None and time.monotonic() >= deadline:
                    raise _Closing
                self._cond.wait(min(left, deadline - time.monotonic()) if deadline else left)
