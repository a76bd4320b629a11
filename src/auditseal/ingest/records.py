"""Records: splitting an input file into audit events, keeping each event's exact bytes.

The sealed log holds every event *as received*, byte for byte, so this module never
re-serializes JSON: it finds where each event starts and ends in the input and slices it
out. It implements the input side of ``auditseal append FILE|-`` (see docs/adr/0001 on why
events are stored raw).

Accepted inputs, and how the format is chosen (the *first-line rule*):

1. A UTF-8 BOM at the very start is skipped (its 3 bytes still count in offsets). UTF-16
   input (what PowerShell's ``>`` writes) is refused as a whole.
2. If the first non-blank byte is ``[``, or it is ``{`` and that object is still open
   (outside any string) when its line ends, the input is one *document*: a pretty-printed
   object, an array of objects, an Azure Monitor envelope ``{"records": [...]}``, or
   several such values one after another. The whole document is read into memory.
3. Otherwise the input is *JSON lines*, streamed chunk by chunk with flat memory. Each
   line holds one or more values (``{...}{...}`` concatenated objects are split; one
   envelope per line, as in Event Hubs captures, is expanded). CRLF, blank lines and
   white space around a line are allowed and are not part of the event. A line that does
   not split cleanly into values is rejected whole, so a corrupt line never yields a
   partial event. A last line without a newline that stops inside a value is rejected as
   "incomplete last line" (a file still being written), never dropped.

In both modes a value is expanded the same way: an object whose only member is
``"records"`` holding an array is an envelope and yields its elements; an array yields
its elements; any other object is one event. Every event must be one UTF-8 JSON object
(checked by :func:`validate_event` with orjson, which also rejects invalid UTF-8 and lone
surrogate escapes); anything else becomes a :class:`Rejected` with line, offset, reason.

Values are delimited by the byte-span scanner in :mod:`auditseal.ingest.jsonscan`; JSON
lines that orjson accepts are not scanned at all. The scanner only finds boundaries;
validity is always decided by orjson. Grammar: RFC 8259 (white space §2, strings and
escapes §7, UTF-8 §8.1).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import orjson

from auditseal.ingest.fastjson import OBJECT, UNDECIDED, classify
from auditseal.ingest.jsonscan import (
    ENVELOPE_HEAD,
    OPENERS,
    WS,
    Incomplete,
    Malformed,
    ScanError,
    array_spans,
    scan_value,
    skip_ws,
)

__all__ = ["Record", "Rejected", "iter_records", "split_records", "validate_event"]

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
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


def iter_records(stream: BinaryIO, *, chunk_bytes: int = 1 << 20) -> Iterator[Record | Rejected]:
    """Split an input into events, in input order.

    JSON lines are streamed ``chunk_bytes`` at a time (memory: one chunk plus the longest
    line); a document (see the module docstring for the first-line rule) is read whole.

    Args:
        stream: a binary stream, e.g. ``open(path, "rb")`` or ``sys.stdin.buffer``.
        chunk_bytes: read size for JSON lines.

    Yields:
        A :class:`Record` for each event and a :class:`Rejected` for each bad part.
    """
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    buf, eof = _read_first_line(stream, chunk_bytes)
    if buf.startswith(_UTF16_BOMS):
        yield Rejected(1, 0, "input is UTF-16 (e.g. written by PowerShell '>'); save it as "
                       "UTF-8", _excerpt(buf[:_EXCERPT_CHARS]))
        return
    start = len(_BOM) if buf.startswith(_BOM) else 0
    first = skip_ws(buf, start, len(buf))
    if first == len(buf):
        return  # empty or white space only
    eol = buf.find(b"\n", first)
    if buf[first] == 0x5B or (eol != -1 and _opens_document(buf, first, eol)):
        yield from _split_document(buf if eof else buf + stream.read(), start)
    else:
        yield from _split_lines(stream, buf, start, chunk_bytes)


def split_records(data: bytes) -> tuple[list[Record], list[Rejected]]:
    """Split an in-memory input; see :func:`iter_records`.

    Args:
        data: the whole input.

    Returns:
        The events and the rejected parts, each in input order.
    """
    items = list(iter_records(io.BytesIO(data)))
    records = [item for item in items if isinstance(item, Record)]
    return records, [item for item in items if isinstance(item, Rejected)]


# --- reading ---------------------------------------------------------------------------------


def _read_first_line(stream: BinaryIO, chunk_bytes: int) -> tuple[bytes, bool]:
    """Read until a newline follows the first non-blank byte, or to the end of input."""
    pieces: list[bytes] = []
    while True:
        more = stream.read(chunk_bytes)
        if not more:
            return b"".join(pieces), True
        pieces.append(more)
        if b"\n" in more:
            buf = b"".join(pieces)
            first = skip_ws(buf, 0, len(buf))
            if first < len(buf) and buf.find(b"\n", first) != -1:
                return buf, False
            pieces = [buf]


def _opens_document(buf: bytes, first: int, eol: int) -> bool:
    """Return True if the value starting at ``first`` is an object still open at ``eol``."""
    if buf[first] != 0x7B:
        return False
    try:
        scan_value(buf, first, eol)
    except Incomplete as exc:
        # Cut inside a string: a raw newline in a string is never valid JSON, so this is
        # a broken JSON line rather than the first line of a pretty-printed document.
        return buf[exc.pos] != 0x22
    except Malformed:
        return False
    return False


def _split_lines(
    stream: BinaryIO, buf: bytes, pos: int, chunk_bytes: int
) -> Iterator[Record | Rejected]:
    """Stream JSON lines; ``buf`` holds the input from offset 0 and ``pos`` skips the BOM."""
    base = 0  # input offset of buf[0]
    line = 1
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    while True:
        nl = buf.find(b"\n", pos)
        last = False
        if nl == -1:
            base += pos
            buf, eof = _read_to_newline(stream, buf[pos:], chunk_bytes)
            pos = 0
            nl = buf.find(b"\n")
            if nl == -1:
                assert eof  # _read_to_newline stops at a newline or at the end
                nl, last = len(buf), True
        segment = buf[pos:nl]
        data = segment.strip(WS)  # in C: a byte loop here was O(white space) in Python
        if data:
            s = pos + len(segment) - len(segment.lstrip(WS))
            e = s + len(data)
            kind = classify(data)
            if kind == UNDECIDED:
                try:
                    value = loads(data)
                except decode_error:
                    value = None  # not a dict either way: _line_events finds out why
                if type(value) is dict and not _is_envelope(value):
                    kind = OBJECT
            if kind == OBJECT:
                yield Record(data, line, base + s)
            else:
                yield from _line_events(buf, s, e, line, base, last=last)
        if last:
            return
        pos = nl + 1
        line += 1


def _read_to_newline(stream: BinaryIO, tail: bytes, chunk_bytes: int) -> tuple[bytes, bool]:
    """Append chunks to ``tail`` until one holds a newline; True if input ended."""
    pieces = [tail]
    while True:
        more = stream.read(chunk_bytes)
        if not more:
            return b"".join(pieces), True
        pieces.append(more)
        if b"\n" in more:
            return b"".join(pieces), False


def _is_envelope(value: dict[str, object]) -> bool:
    return len(value) == 1 and type(value.get("records")) is list


# --- splitting -------------------------------------------------------------------------------


def _line_events(
    buf: bytes, s: int, e: int, line: int, base: int, *, last: bool
) -> list[Record | Rejected]:
    """Split one JSON line that is not a plain object: all of it, or reject it whole."""
    events: list[Record | Rejected] = []
    p = s
    try:
        while p < e:
            if buf[p] not in OPENERS:
                raise Malformed("", p)
            found, p = _value_at(buf, p, e, base, lambda _pos: line)
            events.extend(found)
            p = skip_ws(buf, p, e)
    except ScanError as exc:
        data = buf[s:e]
        if isinstance(exc, Incomplete) and last:
            reason = (f"incomplete last line: the input ends without a newline {exc.message} "
                      "(file still being written?)")
        elif isinstance(exc, Incomplete):
            reason = f"incomplete JSON value: the line ends {exc.message}"
        else:
            reason = validate_event(data) or exc.message or "not a JSON object"
        return [Rejected(line, base + s, reason, _excerpt(data))]
    return events


def _split_document(buf: bytes, start: int) -> Iterator[Record | Rejected]:
    """Split a whole document: one or more top-level values separated by white space."""
    line_of = _LineCounter(buf)
    n = len(buf)
    p = skip_ws(buf, start, n)
    while p < n:
        if buf[p] in OPENERS:
            try:
                found, p = _value_at(buf, p, n, 0, line_of)
            except Incomplete as exc:
                yield Rejected(line_of(p), p, "incomplete JSON document: the input ends "
                               f"{exc.message} (file still being written?)", _excerpt(buf[p:]))
                return
            except Malformed as exc:
                yield Rejected(line_of(p), p, f"malformed JSON document at line "
                               f"{line_of(exc.pos)}: {exc.message}; the {n - p} bytes from "
                               "here on were not read as events", _excerpt(buf[p:]))
                return
            yield from found
        else:
            # Junk between values (a stray comma, a text header): reject up to the end of
            # its line and resynchronise there, where the next value usually starts.
            eol = buf.find(b"\n", p)
            eol = n if eol == -1 else eol
            junk = buf[p:eol].rstrip(WS)
            reason = validate_event(junk) or "not a JSON object"
            yield Rejected(line_of(p), p, reason, _excerpt(junk))
            p = eol
        p = skip_ws(buf, p, n)


def _value_at(
    buf: bytes, p: int, limit: int, base: int, line_of: Callable[[int], int]
) -> tuple[list[Record | Rejected], int]:
    """Expand the value opening at ``buf[p]``; return its events and the index after it."""
    spans: list[tuple[int, int]] | None = None
    if buf[p] == 0x5B:
        spans, end = array_spans(buf, p, limit)
        context = "array element {}: "
    elif head := ENVELOPE_HEAD.match(buf, p, limit):
        spans, end = array_spans(buf, head.end() - 1, limit)
        end = skip_ws(buf, end, limit)
        context = "records[{}]: "
        if end < limit and buf[end] == 0x7D:
            end += 1
        else:
            spans = None  # "records" is not the only member: an ordinary object
    if spans is None:
        end = scan_value(buf, p, limit)
        return [_event(buf, p, end, base, line_of, context="")], end
    return [
        _event(buf, s, e, base, line_of, context=context.format(i))
        for i, (s, e) in enumerate(spans)
    ], end


def _event(
    buf: bytes, s: int, e: int, base: int, line_of: Callable[[int], int], *, context: str
) -> Record | Rejected:
    data = buf[s:e]
    reason = validate_event(data) if data else "empty element (stray comma)"
    if reason is None:
        return Record(data, line_of(s), base + s)
    return Rejected(line_of(s), base + s, context + reason, _excerpt(data))


# --- line numbers ----------------------------------------------------------------------------


class _LineCounter:
    """Line number of a byte position, counting incrementally from the last question."""

    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self._pos = 0
        self._line = 1

    def __call__(self, pos: int) -> int:
        if pos >= self._pos:
            self._line += self._buf.count(b"\n", self._pos, pos)
        else:
            self._line -= self._buf.count(b"\n", pos, self._pos)
        self._pos = pos
        return self._line


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


def _excerpt(raw: bytes) -> str:
    """First ~80 characters of ``raw`` as printable text (escapes for the rest)."""
    text = raw[: _EXCERPT_CHARS * 4].decode("utf-8", "backslashreplace")
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text[:_EXCERPT_CHARS]
    )
    clipped = len(shown) > _EXCERPT_CHARS or len(text) > _EXCERPT_CHARS
    return shown[:_EXCERPT_CHARS] + "..." if clipped else shown
