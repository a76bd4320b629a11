"""Azure timestamps: every spelling the Azure log pipelines are seen to emit, read as UTC.

Concept: the *event time* of an Azure audit record, as written by diagnostic settings
(Storage / Event Hubs), the Activity Log REST API and Log Analytics exports. The formats come
from the real records in the shared corpus (docs/azure.md section 3.4 and the corpus
SUMMARY "What surprised us"):

* ISO 8601 with 0-9 fractional digits and ``Z`` (``2025-04-11T16:17:00.7397744Z``: .NET
  writes 7 digits, Go 9), with an offset (``+00:00``), or without a zone; ``T`` or a space
  between date and time; hours with one digit (``2025-04-14T3:15:37.008Z``).
* US locale, as .NET's ``DateTime.ToString()`` writes it under en-US: ``4/14/2025 11:35:37 AM``
  and ``05/28/2025 01:15:14`` (month first, no zone).
* .NET JSON dates ``/Date(1744711621000)/``, epoch seconds / milliseconds and .NET ticks as
  numbers (``__UDI_RequiredFields_EventTime`` in Graph activity logs).

A time without a zone is taken as UTC: every Azure pipeline writes UTC, the zone is only
dropped by formatting. Fractions beyond microseconds are truncated, never rounded, so a
truncated time never moves past the next event's.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

__all__ = ["parse_azure_time"]

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[Tt ](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?"
    r"\s*(?P<z>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_US = re.compile(
    r"(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
    r"(?:\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?:\s*(?P<ampm>[AaPp][Mm]))?)?"
    r"\s*(?P<z>[Zz]|[+-]\d{2}:?\d{2})?"
)
_NET_JSON_DATE = re.compile(r"/Date\((?P<ms>-?\d+)(?P<z>[+-]\d{4})?\)/")

# Plausibility windows for numeric times (why: a bare number is ambiguous, so accept only
# the ranges where one reading is certain): epoch seconds and milliseconds between 2000
# and 2100, and .NET ticks (100 ns since 0001-01-01) in the same years.
_EPOCH_S = (946_684_800, 4_102_444_800)
_TICKS_AT_EPOCH = 621_355_968_000_000_000
_TICKS_PER_S = 10_000_000


def parse_azure_time(value: object) -> datetime | None:
    """Read an Azure timestamp in any of the formats above.

    Args:
        value: a string, a number (epoch seconds/milliseconds, .NET ticks) or a datetime.

    Returns:
        An aware datetime in UTC, or None if the value is not a recognisable time.
    """
    if type(value) is str and (moment := _common_iso(value)) is not None:
        return moment
    if isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float):
        return _from_number(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if match := _ISO.fullmatch(text):
        return _build(match, hour_12=None)
    if match := _US.fullmatch(text):
        return _build(match, hour_12=match.group("ampm"))
    if match := _NET_JSON_DATE.fullmatch(text):
        # The optional +hhmm of a .NET JSON date only says which zone to display; the number
        # itself is already milliseconds since the epoch in UTC.
        return _from_epoch(int(match.group("ms")) / 1000)
    return None


def _common_iso(text: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SS[.fffffff]Z``, what nearly every record holds, read in C.

    A fast path only: it answers for exactly this shape and leaves anything else (and any
    value ``fromisoformat`` refuses) to the general parser, which reads this shape the same.
    """
    size = len(text)
    if not 20 <= size <= 30 or text[-1] != "Z" or text[10] != "T":
        return None
    if text[4] != "-" or text[7] != "-" or text[13] != ":" or text[16] != ":":
        return None
    fraction = text[20:-1]
    if size == 20:
        fraction = "0"
    elif text[19] != "." or not (fraction.isascii() and fraction.isdigit()):
        return None
    try:
        # fromisoformat reads ASCII digits only; the fraction is truncated, never rounded.
        return datetime.fromisoformat(f"{text[:19]}.{fraction[:6]:0<6}+00:00")
    except ValueError:
        return None


def _build(match: re.Match[str], hour_12: str | None) -> datetime | None:
    parts = match.groupdict()
    hour = int(parts["h"] or 0)
    if hour_12 is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if hour_12.lower() == "pm" else 0)
    fraction = (parts["f"] or "")[:6].ljust(6, "0")
    try:
        moment = datetime(
            int(parts["y"]),
            int(parts["mo"]),
            int(parts["d"]),
            hour,
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            int(fraction),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    offset = _offset(parts["z"])
    if offset is None:
        return None
    try:
        return moment - offset
    except OverflowError:
        return None


def _offset(zone: str | None) -> timedelta | None:
    """The UTC offset of a zone suffix; no suffix and ``Z`` are both UTC."""
    if zone is None or zone in ("Z", "z"):
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        return None
    sign = -1 if zone[0] == "-" else 1
    return sign * timedelta(hours=hours, minutes=minutes)


def _from_number(number: float) -> datetime | None:
    if math.isnan(number):
        return None
    if _EPOCH_S[0] <= number < _EPOCH_S[1]:
        return _from_epoch(number)
    if _EPOCH_S[0] * 1000 <= number < _EPOCH_S[1] * 1000:
        return _from_epoch(number / 1000)
    ticks_low = _TICKS_AT_EPOCH + _EPOCH_S[0] * _TICKS_PER_S
    ticks_high = _TICKS_AT_EPOCH + _EPOCH_S[1] * _TICKS_PER_S
    if isinstance(number, int) and ticks_low <= number < ticks_high:
        # Integer arithmetic keeps the full 100 ns precision down to microseconds.
        micros = (number - _TICKS_AT_EPOCH) // 10
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    return None


def _from_epoch(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
