"""JSON lines: splitting a stream of one-event-per-line input, chunk by chunk.

Two forms of the same splitter. :func:`split_lines` yields one :class:`Record` or
:class:`Rejected` per event (what :func:`auditseal.ingest.records.iter_records` promises);
:func:`line_batches` yields a :class:`RecordBatch` per chunk, the sealing hot path's
form: each event a view into the chunk (no copy) and no Python object per event. A line
that simdjson accepts as one plain object is taken as it is; every other line (several
values, an envelope, anything refused) is split or rejected by the same code in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson
import simdjson

from auditseal.ingest.event import Record, Rejected, excerpt, validate_event
from auditseal.ingest.fastjson import OBJECT, UNDECIDED, classify, parser
from auditseal.ingest.jsonscan import OPENERS, WS, Incomplete, Malformed, ScanError, skip_ws
from auditseal.ingest.values import value_events

__all__ = ["RecordBatch", "line_batches", "split_lines"]


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records in columns: the events of one chunk, without a Python object per event.

    Attributes:
        events: each event's bytes, a byte-exact view into the input (or bytes).
        lines: the 1-based line where each event starts.
        offsets: the byte offset of each event in the input.
        rejected: the rejected parts of the chunk, in input order.
    """

    events: list[bytes | memoryview] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def add(self, item: Record | Rejected) -> None:
        """Add one record or rejection (after those already in the batch)."""
        if isinstance(item, Rejected):
            self.rejected.append(item)
        else:
            self.events.append(item.data)
            self.lines.append(item.line)
            self.offsets.append(item.offset)

    def record(self, i: int) -> Record:
        """Event ``i`` as a :class:`Record`."""
        return Record(bytes(self.events[i]), self.lines[i], self.offsets[i])


def line_batches(
    stream: BinaryIO, buf: bytes, pos: int, chunk_bytes: int
) -> Iterator[RecordBatch]:
    """Like :func:`split_lines`, one :class:`RecordBatch` per chunk of whole lines."""
    base = 0  # input offset of buf[0]
    line = 1
    while True:
        # At most a chunk per batch, also where the whole input is in memory already,
        # so that sealing can start (and overlap) while the rest is being split.
        end = buf.rfind(b"\n", pos, pos + chunk_bytes)
        if end == -1:
            end = buf.find(b"\n", pos + chunk_bytes)  # a line longer than a chunk
        last = False
        if end == -1:
            base += pos
            buf, eof = _read_to_newline(stream, buf[pos:], chunk_bytes)
            pos = 0
            end = buf.rfind(b"\n")
            if end == -1:
                assert eof  # _read_to_newline stops at a newline or at the end
                end, last = len(buf), True
        batch = RecordBatch()
        line = _fill(batch, buf, pos, end, base=base, line=line, last=last)
        yield batch
        if last:
            return
        pos = end + 1


def _fill(
    batch: RecordBatch, buf: bytes, p: int, end: int, *, base: int, line: int, last: bool
) -> int:
    """Split the lines of ``buf[p:end]`` into ``batch``; return the line after them.

    The hot loop: one simdjson parse of a view per line, no copy and no object per event.
    """
    view = memoryview(buf)
    parse = parser().parse
    find = buf.find
    events, lines, offsets = batch.events, batch.lines, batch.offsets
    while True:
        nl = find(b"\n", p, end)
        s, e = p, end if nl == -1 else nl
        if s < e and (buf[s] in WS or buf[e - 1] in WS):
            s = skip_ws(buf, s, e)
            while e > s and buf[e - 1] in WS:  # CRLF, trailing blanks: a byte or two
                e -= 1
        if s < e:
            data = view[s:e]
            plain = False
            if buf[s] == 0x7B:  # also keeps a BOM, which simdjson would skip, off this path
                try:
                    value = parse(data)
                except (ValueError, RuntimeError):
                    pass
                else:
                    plain = type(value) is simdjson.Object and (
                        len(value) != 1 or type(value.get("records")) is not simdjson.Array
                    )
                    del value  # the parser refuses to parse again while a proxy is alive
            if plain:
                events.append(data)
                lines.append(line)
                offsets.append(base + s)
            else:
                for item in _line_events(buf, s, e, line, base, last=last and nl == -1):
                    batch.add(item)
        if nl == -1:
            return line + 1
        p = nl + 1
        line += 1


def split_lines(
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
            found, p = value_events(buf, p, e, base, lambda _pos: line)
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
        return [Rejected(line, base + s, reason, excerpt(data))]
    return events

