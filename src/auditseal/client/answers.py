"""The service's answers to the client, read: deliveries, rejections, retry hints.

Concept: *ingest answers* as the client SDK sees them (docs/api.md, "Ingest"). A 200 (or a
400 ``no_valid_events``) answer becomes one :data:`Result` per event of the batch, in
batch order; an error document gives its machine code and message; ``Retry-After`` (seconds
or an HTTP date) gives the delay before the next attempt, capped.
"""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass

import httpx

__all__ = ["Delivery", "Rejection", "Result"]

_log = logging.getLogger("auditseal.client.client")  # the name the client always logged as
MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event the service sealed: its position in the batch, log index and leaf hash."""

    item: int
    index: int
    leaf_hash: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event the service refused for good, and why (it will not be sent again)."""

    item: int
    reason: str


Result = Delivery | Rejection


def results(response: httpx.Response, size: int) -> list[Result]:
    try:
        body = response.json()
        results: list[Result] = [Delivery(int(e["item"]), int(e["index"]), str(e["leaf_hash"]))
                                 for e in body.get("entries", ())]
        results += [Rejection(int(e["item"]), str(e.get("reason", "rejected")))
                    for e in body.get("errors", ())]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        problem = f"unreadable answer from the service: {exc!r}"
    else:
        if sorted(r.item for r in results) == list(range(size)):
            return sorted(results, key=lambda r: r.item)
        problem = f"the service answered for {len(results)} of {size} events"
    # The service took the batch (it answered 200/400): sending it again could seal the
    # events twice, so they are reported, not retried.
    _log.error("auditseal client: %s", problem)
    return [Rejection(item, problem) for item in range(size)]


def shift(result: Result, offset: int) -> Result:
    if isinstance(result, Delivery):
        return Delivery(result.item + offset, result.index, result.leaf_hash)
    return Rejection(result.item + offset, result.reason)


def error_code(response: httpx.Response) -> str | None:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return "no_valid_events" if _has_errors(response) else None
    return str(code)


def _has_errors(response: httpx.Response) -> bool:
    try:
        return isinstance(response.json().get("errors"), list)
    except (ValueError, AttributeError):
        return False


def error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or f"HTTP {response.status_code}"


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
