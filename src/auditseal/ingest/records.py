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

The work is split by concept: :mod:`auditseal.ingest.event` (what an event and a
rejection are, and the validity test), :mod:`auditseal.ingest.jsonlines` (JSON lines),
:mod:`auditseal.ingest.values` (expanding arrays and envelopes); this module applies the
first-line rule and splits documents. A JSON line that simdjson accepts as one object is
not scanned at all, and an array of objects is cut by simdjson itself
(:func:`auditseal.ingest.fastjson.array_objects`); everything else is delimited by the
byte-span scanner in :mod:`auditseal.ingest.jsonscan`, which only finds boundaries:
validity is always decided by simdjson's "yes" or by orjson. :func:`iter_batches` gives
the same result as :func:`iter_records` in columns, for the sealing hot path. Grammar:
RFC 8259 (white space §2, strings and escapes §7, UTF-8 §8.1).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

from auditseal.ingest.event import Record, Rejected, excerpt, validate_event
from auditseal.ingest.jsonlines import RecordBatch, line_batches, split_lines
from auditseal.ingest.jsonscan import OPENERS, WS, Incomplete, Malformed, scan_value, skip_ws
from auditseal.ingest.values import LineCounter, value_events

__all__ = [
    "Record",
    "RecordBatch",
    "Rejected",
    "iter_batches",
    "iter_records",
    "split_records",
    "validate_event",
]

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_EXCERPT_CHARS = 80
_DOCUMENT_BATCH = 4096  # events per RecordBatch of a document


def iter_records(stream: BinaryIO, *, chunk_bytes: int = 1 << 20) -> Iterator[Record | Rejected]:
    """Split an input into events, in input order.

    JSON lines are streamed ``chunk_bytes`` at a time (memory: one chunk plus the longest
    line); a document (see the module docstring for the first-line rule) is read whole,
    and an ``io.BytesIO`` (already in memory) is split in place, without chunks.

    Args:
        stream: a binary stream, e.g. ``open(path, "rb")`` or ``sys.stdin.buffer``.
        chunk_bytes: read size for JSON lines.

    Yields:
        A :class:`Record` for each event and a :class:`Rejected` for each bad part.
    """
    opened = _open(stream, chunk_bytes)
    if isinstance(opened, Rejected):
        yield opened
    elif opened is not None:
        buf, start, document = opened
        if document:
            yield from _split_document(buf, start)
        else:
            yield from split_lines(stream, buf, start, chunk_bytes)


def iter_batches(stream: BinaryIO, *, chunk_bytes: int = 1 << 20) -> Iterator[RecordBatch]:
    """Split an input like :func:`iter_records`, in batches: the sealing hot path's form.

    The same events and rejections in the same order, grouped: JSON lines one batch per
    chunk read, a document up to 4096 events per batch.

    Args:
        stream: a binary stream, e.g. ``open(path, "rb")`` or ``sys.stdin.buffer``.
        chunk_bytes: read size for JSON lines.

    Yields:
        A :class:`RecordBatch` per chunk of input (some may be empty).
    """
    opened = _open(stream, chunk_bytes)
    if isinstance(opened, Rejected):
        yield RecordBatch(rejected=[opened])
    elif opened is not None:
        buf, start, document = opened
        if not document:
            yield from line_batches(stream, buf, start, chunk_bytes)
            return
        batch = RecordBatch()
        for item in _split_document(buf, start):
            batch.add(item)
            if len(batch.events) >= _DOCUMENT_BATCH:
                yield batch
                batch = RecordBatch()
        yield batch


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


def _open(stream: BinaryIO, chunk_bytes: int) -> tuple[bytes, int, bool] | Rejected | None:
    """Apply the first-line rule: (input so far, offset after a BOM, is a document).

    A document is read whole. None: the input is empty or white space only.
    """
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    if type(stream) is io.BytesIO:
        # A body already in memory (an HTTP request, split_records) is split where it
        # lies: reading it in chunks would only copy every byte once or twice more.
        buf, eof = stream.getvalue()[stream.tell() :], True
        stream.seek(0, io.SEEK_END)
    else:
        buf, eof = _read_first_line(stream, chunk_bytes)
    if buf.startswith(_UTF16_BOMS):
        return Rejected(1, 0, "input is UTF-16 (e.g. written by PowerShell '>'); save it as "
                        "UTF-8", excerpt(buf[:_EXCERPT_CHARS]))
    start = len(_BOM) if buf.startswith(_BOM) else 0
    first = skip_ws(buf, start, len(buf))
    if first == len(buf):
        return None
    eol = buf.find(b"\n", first)
    if buf[first] == 0x5B or (eol != -1 and _opens_document(buf, first, eol)):
        return (buf if eof else buf + stream.read()), start, True
    return buf, start, False


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


def _split_document(buf: bytes, start: int) -> Iterator[Record | Rejected]:
    """Split a whole document: one or more top-level values separated by white space."""
    line_of = LineCounter(buf)
    n = len(buf)
    p = skip_ws(buf, start, n)
    while p < n:
        if buf[p] in OPENERS:
            try:
                found, p = value_events(buf, p, n, 0, line_of)
            except Incomplete as exc:
                yield Rejected(line_of(p), p, "incomplete JSON document: the input ends "
                               f"{exc.message} (file still being written?)", excerpt(buf[p:]))
                return
            except Malformed as exc:
                yield Rejected(line_of(p), p, f"malformed JSON document at line "
                               f"{line_of(exc.pos)}: {exc.message}; the {n - p} bytes from "
                               "here on were not read as events", excerpt(buf[p:]))
                return
            yield from found
        else:
            # Junk between values (a stray comma, a text header): reject up to the end of
            # its line and resynchronise there, where the next value usually starts.
            eol = buf.find(b"\n", p)
            eol = n if eol == -1 else eol
            junk = buf[p:eol].rstrip(WS)
            reason = validate_event(junk) or "not a JSON object"
            yield Rejected(line_of(p), p, reason, excerpt(junk))
            p = eol
        p = skip_ws(buf, p, n)


