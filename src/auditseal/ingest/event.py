"""Events and rejections: what splitting an input yields, and the test every event passes.

A :class:`Record` is one event's exact bytes and where it was found; a :class:`Rejected`
is a part of the input that is not an event, with a reason a person can act on. Every
event must be one UTF-8 JSON object (RFC 8259 §8.1): :func:`validate_event` asks
simdjson first (:mod:`auditseal.ingest.fastjson`) and orjson, the reference, for the
verdict and its wording otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from auditseal.ingest.fastjson import UNDECIDED, classify

__all__ = ["Record", "Rejected", "excerpt", "validate_event"]

_EXCERPT_CHARS = 80


@dataclass(frozen=True, slots=True)
class Record:
    """One event, exactly as it appears in the input.

    Attributes:
        data: the event's bytes, a byte-exact slice of the input.
        line: 1-based line of the input where the event starts.
        offset: byte offset of the event in the input (a skipped BOM counts).
    """

    data: bytes
    line: int
    offset: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A part of the input that is not a valid event, and why.

    Attributes:
        line: 1-based line where the rejected bytes start.
        offset: byte offset where they start.
        reason: human text saying what is wrong.
        excerpt: the first ~80 characters, printable, for the error message.
    """

    line: int
    offset: int
    reason: str
    excerpt: str


def validate_event(data: bytes) -> str | None:
    """Check that ``data`` is exactly one UTF-8 JSON object.

    Args:
        data: the candidate event bytes.

    Returns:
        None if valid, else a human-readable reason.
    """
    if classify(data) != UNDECIDED:
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _json_error(data, exc)
    if type(value) is not dict:
        return f"not a JSON object (found {_kind(value)})"
    return None



# --- messages --------------------------------------------------------------------------------


def _json_error(data: bytes, exc: orjson.JSONDecodeError) -> str:
    msg = exc.msg
    if "UTF-8" in msg and "BOM" not in msg:
        # orjson says "surrogates not allowed" for any bad byte; find the real one.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            return (f"invalid UTF-8: byte 0x{data[bad.start]:02x} at byte {bad.start} of "
                    f"the event ({bad.reason})")
    where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
    if "surrogate" in msg:
        return (f"lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair) at {where}: "
                "not valid Unicode")
    if msg.startswith("Input is a zero-length"):
        return "empty event"
    return f"invalid JSON: {msg} at {where}"


def _kind(value: object) -> str:
    if isinstance(value, list | str):
        return "an array" if isinstance(value, list) else "a string"
    return "true/false/null" if value is None or isinstance(value, bool) else "a number"


def excerpt(raw: bytes) -> str:
    """First ~80 characters of ``raw`` as printable text (escapes for the rest)."""
    text = raw[: _EXCERPT_CHARS * 4].decode("utf-8", "backslashreplace")
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text[:_EXCERPT_CHARS]
    )
    clipped = len(shown) > _EXCERPT_CHARS or len(text) > _EXCERPT_CHARS
    return shown[:_EXCERPT_CHARS] + "..." if clipped else shown
