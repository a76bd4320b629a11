"""Positions in source blobs: a collector's durable cursor, and records found at an offset.

A collector that tails growing blobs must seal every record exactly once, across
restarts and crashes. Sealing (the log's journal) and the cursor (a local file) cannot
change in one atomic step, so neither is trusted alone:

* Every sealed entry names its own position in its header: ``src`` is
  ``azblob:<account>/<container>/<blob>#<offset>`` (:func:`position_source`), the byte
  offset where the record starts in the blob.
* The cursor is written only *after* the records it covers are durable in the log, and it
  records the log size at that moment (``log_size``). After a crash the log can hold more
  of our records than the cursor says, never fewer.
* On start the collector scans the log's entries from ``log_size`` on and treats every
  position it finds there as already sealed (``Collector.reconcile``).

The cursor file is JSON, replaced atomically (temporary file, fsync, rename, directory
fsync), so a crash leaves the old cursor or the new one, never a torn one. Deleting or
rolling it back is safe: the scan starts earlier and finds more, at worst the whole log.

Records that can never parse are skipped so they cannot block a blob forever; each is
kept in a rejects file beside the cursor (JSON lines, appended and fsynced before the
cursor moves past the record), so a rejection is never silent and is reported once.

``split_chunk`` splits bytes read from a blob offset into records with offsets relative
to that position (``auditseal.ingest.records`` does the splitting).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from auditseal.errors import ConfigError
from auditseal.ingest.records import Record, Rejected, split_records
from auditseal.storage.durable import replace_file

CURSOR_FORMAT = 1
SOURCE_SCHEME = "azblob:"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class BlobPosition:
    """How far one blob has been consumed.

    Attributes:
        offset: bytes consumed; always just after a newline (or at a settled blob's end),
            so reading resumes at the start of a line.
        line: 1-based number of the line that starts at ``offset`` (for messages).
    """

    offset: int = 0
    line: int = 1


@dataclass(frozen=True)
class Cursor:
    """The positions of every blob seen, and the log size when they were last durable.

    Attributes:
        log_size: entries in the log when this cursor was written; every record it
            covers is at an index below this.
        blobs: position per blob key ``<container>/<blob name>``.
    """

    log_size: int = 0
    blobs: Mapping[str, BlobPosition] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The cursor file's bytes."""
        return orjson.dumps(
            {
                "format": CURSOR_FORMAT,
                "log_size": self.log_size,
                "blobs": {key: [pos.offset, pos.line] for key, pos in sorted(self.blobs.items())},
            },
            option=orjson.OPT_INDENT_2,
        ) + b"\n"

    @classmethod
    def parse(cls, data: bytes, where: str) -> Cursor:
        """Decode a cursor file.

        Raises:
            ConfigError: not a cursor of this format (the message says how to recover).
        """
        try:
            return cls._decode(orjson.loads(data))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ConfigError(
                f"collector cursor {where} is damaged ({exc}); move it aside and run again: "
                "the collector then rescans the log and seals nothing twice"
            ) from exc

    @classmethod
    def _decode(cls, value: object) -> Cursor:
        if not isinstance(value, dict) or value.get("format") != CURSOR_FORMAT:
            raise ValueError("not a version-1 cursor")
        log_size = value["log_size"]
        blobs = {
            str(key): BlobPosition(int(pair[0]), int(pair[1]))
            for key, pair in value["blobs"].items()
        }
        if not isinstance(log_size, int) or log_size < 0:
            raise ValueError("log_size must be a non-negative integer")
        if any(p.offset < 0 or p.line < 1 for p in blobs.values()):
            raise ValueError("negative offset or line")
        return cls(log_size=log_size, blobs=blobs)


def load_cursor(path: Path) -> Cursor:
    """Read the cursor at ``path``; an absent file is an empty cursor (scan everything).

    Raises:
        ConfigError: the file is damaged.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Cursor()
    return Cursor.parse(data, str(path))


def save_cursor(path: Path, cursor: Cursor, *, fsync: bool = True) -> None:
    """Replace the cursor at ``path`` atomically: temp file, fsync, rename, dir fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, cursor.encode(), fsync=fsync)


def position_source(account: str, key: str, offset: int) -> str:
    """The entry ``src`` naming where a record starts: ``azblob:<account>/<key>#<offset>``."""
    return f"{SOURCE_SCHEME}{account}/{key}#{offset}"


def parse_position(source: str | None, account: str) -> tuple[str, int] | None:
    """``(blob key, offset)`` of a ``src`` made by :func:`position_source` for ``account``,
    or None for any other source (another account, another collector, a file)."""
    prefix = f"{SOURCE_SCHEME}{account}/"
    if source is None or not source.startswith(prefix):
        return None
    key, sep, offset = source[len(prefix) :].rpartition("#")
    if not sep or not key or not offset.isdigit():
        return None
    return key, int(offset)


@dataclass(frozen=True)
class RejectedRecord:
    """A record that will never be sealed, and why (one line of the rejects file)."""

    blob: str
    offset: int
    line: int
    reason: str
    excerpt: str
    seen: str  # RFC 3339 time it was rejected


class RejectsFile:
    """The append-only list of rejected records of one collector (JSON lines)."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        """Open ``path`` and remember which positions it already holds."""
        self.path = path
        self._fsync = fsync
        self._known: set[tuple[str, int]] = set()
        self.count = 0
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        if data and not data.endswith(b"\n"):
            # A crash cut the last append short; drop the torn line so the next append
            # starts on a fresh line (its record is reported again and re-added).
            data = data[: data.rfind(b"\n") + 1]
            with path.open("r+b") as out:
                out.truncate(len(data))
        for raw in data.splitlines():
            try:
                item = orjson.loads(raw)
                self._known.add((str(item["blob"]), int(item["offset"])))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # not ours to judge: keep the line, it just names no position
        self.count = len(self._known)

    def __contains__(self, position: tuple[str, int]) -> bool:
        """Whether the record at ``(blob, offset)`` was already rejected."""
        return position in self._known

    def add(self, records: Iterable[RejectedRecord]) -> None:
        """Append ``records`` (those not already listed) durably."""
        fresh = [r for r in records if (r.blob, r.offset) not in self._known]
        if not fresh:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(
            orjson.dumps({"blob": r.blob, "offset": r.offset, "line": r.line,
                          "reason": r.reason, "excerpt": r.excerpt, "seen": r.seen}) + b"\n"
            for r in fresh
        )
        with self.path.open("ab") as out:
            out.write(data)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
        self._known.update((r.blob, r.offset) for r in fresh)
        self.count = len(self._known)


# -- splitting a chunk read from a position ----------------------------------------------------


def opens_document(data: bytes) -> bool:
    """Whether the blob's first line opens a multi-line JSON document (records.py's
    first-line rule) instead of being a JSON line."""
    first = len(data) - len(data.lstrip())
    newline = data.find(b"\n", first)
    _, rejected = split_records(data if newline < 0 else data[: newline + 1])
    return any(r.reason.startswith("incomplete JSON document") for r in rejected)


_LINES_PREFIX = b"{}\n"


def split_chunk(
    chunk: bytes, *, document: bool, at_start: bool
) -> tuple[list[Record], list[Rejected]]:
    """Split a chunk; offsets and lines relative to its start.

    A chunk from the middle of a blob is always JSON lines: records.py picks the mode by
    the first line, and a broken first line must not turn the rest into one "document".
    Leading the chunk with a known JSON line pins the mode; it is dropped again here.
    """
    if document:
        records, rejected = split_records(chunk)
        if not any(r.reason.startswith("malformed JSON document") for r in rejected):
            return records, rejected
        # Not a document after all (a broken first line): read it as JSON lines instead.
    skip = len(_BOM) if at_start and chunk.startswith(_BOM) else 0
    records, rejected = split_records(_LINES_PREFIX + chunk[skip:])
    shift = skip - len(_LINES_PREFIX)
    return (
        [Record(r.data, r.line - 1, r.offset + shift) for r in records[1:]],
        [Rejected(r.line - 1, r.offset + shift, r.reason, r.excerpt) for r in rejected],
    )
