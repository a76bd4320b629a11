"""The auditseal entry format, version 1: what one leaf of the log holds.

An entry is one header line and the event's bytes exactly as received::

    {"src":"file:signins.json","t":"2026-11-27T07:35:32.123456Z","v":1}\\n
    {"time":"...","operationName":"...", ...}          <- the event, byte for byte

The header is a compact JSON object (keys sorted, no insignificant white space, so it
never holds a raw newline); the first ``\\n`` of the entry ends it. Everything after it
is the event, never re-serialized or escaped, so the original can be recovered exactly
and its SHA-256 matches what the sender computed. The header is inside the leaf, so the
metadata is covered by the Merkle hash like the event itself. See
docs/adr/0001-entry-format.md for why this shape and how the next modes fit.

Header fields (v1):

- ``v`` (int, required): format version; a reader refuses versions it does not know.
- ``t`` (str, required): receive time, RFC 3339 UTC with microseconds.
- ``src`` (str, optional): where the event came from ("file:NAME", "stdin", "http").
- ``kind`` (str, optional): "event" when absent; "alert" and "admin" for auditseal's
  own records.
- ``mode`` (str, optional): "raw" when absent: the event bytes as received. Reserved:
  "private", where configured personal fields are replaced by salted commitments.

Unknown header fields are an error in v1: a reader that silently skipped them could
misread a later mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from auditseal.errors import EntryTooLarge, FormatError

ENTRY_FORMAT_VERSION = 1
MAX_ENTRY_BYTES = 65535
"""tlog-tiles entry bundles prefix each entry with a big-endian uint16 length."""

_KNOWN_FIELDS = frozenset({"v", "t", "src", "kind", "mode"})
_KNOWN_MODES = frozenset({"raw"})


@dataclass(frozen=True)
class EntryHeader:
    """The metadata sealed in front of an event."""

    received: datetime
    source: str | None = None
    kind: str = "event"
    mode: str = "raw"

    def encode(self) -> bytes:
        """Return the header line, including its terminating newline."""
        if self.received.tzinfo is None:
            raise ValueError("EntryHeader.received must be timezone-aware")
        fields: dict[str, object] = {
            "t": format_time(self.received),
            "v": ENTRY_FORMAT_VERSION,
        }
        if self.source is not None:
            fields["src"] = self.source
        if self.kind != "event":
            fields["kind"] = self.kind
        if self.mode != "raw":
            fields["mode"] = self.mode
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS) + b"\n"


@dataclass(frozen=True)
class Entry:
    """A decoded entry: its header and the event bytes as received."""

    header: EntryHeader
    event: bytes


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits and a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_entry(header_line: bytes, event: bytes) -> bytes:
    """Join an encoded header line and event bytes into one entry.

    The header line is passed encoded so that a batch sharing one header pays for its
    encoding once (``EntryHeader.encode``).

    Raises:
        EntryTooLarge: the entry would exceed the 65,535-byte tlog-tiles limit.
    """
    entry = header_line + event
    if len(entry) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(len(entry), MAX_ENTRY_BYTES)
    return entry


def max_event_bytes(header_line: bytes) -> int:
    """The largest event that fits in one entry behind ``header_line``."""
    return MAX_ENTRY_BYTES - len(header_line)


def decode_entry(entry: bytes) -> Entry:
    """Split an entry into its header and the verbatim event bytes.

    Raises:
        FormatError: not a v1 auditseal entry.
    """
    newline = entry.find(b"\n")
    if newline < 0:
        raise FormatError("entry has no header line")
    try:
        fields = orjson.loads(entry[:newline])
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"entry header is not JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise FormatError("entry header is not a JSON object")
    version = fields.get("v")
    if version != ENTRY_FORMAT_VERSION:
        raise FormatError(f"unsupported entry format version {version!r}")
    unknown = set(fields) - _KNOWN_FIELDS
    if unknown:
        raise FormatError(f"entry header has unknown fields: {', '.join(sorted(unknown))}")
    mode = fields.get("mode", "raw")
    if mode not in _KNOWN_MODES:
        raise FormatError(f"entry mode {mode!r} is not supported by this version")
    received = _parse_time(fields.get("t"))
    source = fields.get("src")
    kind = fields.get("kind", "event")
    if source is not None and not isinstance(source, str):
        raise FormatError("entry header 'src' must be a string")
    if not isinstance(kind, str):
        raise FormatError("entry header 'kind' must be a string")
    header = EntryHeader(received=received, source=source, kind=kind, mode=mode)
    return Entry(header=header, event=entry[newline + 1 :])


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise FormatError(f"entry header 't' must be an RFC 3339 UTC time, got {value!r}")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise FormatError(f"entry header 't' is not a valid time: {value!r}") from exc
