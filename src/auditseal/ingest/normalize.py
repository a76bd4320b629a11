"""Normalized fields derived from one Azure audit record, for search and alerts.

Concept: the *normalized view* of an Azure audit event (docs/azure.md sections 3.3-3.5). The
sealed bytes are never touched; this module reads them and derives a few uniform fields
whatever the shape: diagnostic-settings export (PT1H.json / Event Hubs ``records[]``),
Activity Log REST / portal JSON (``eventTimestamp``, ``operationName.value``) or Log
Analytics row (``TimeGenerated``, ``OperationNameValue``, ``_ResourceId``). Which field lives
where is data in :mod:`~auditseal.ingest.azure_categories` and
:mod:`~auditseal.ingest.azure_analytics`; time formats are in
:mod:`~auditseal.ingest.azure_times`; single-quoted pseudo-JSON is read by
:mod:`~auditseal.ingest.jsliteral`. Nothing here raises on a JSON object: every oddity is
recorded in :attr:`NormalizedEvent.problems` and the field is left empty.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from auditseal.errors import IngestError
from auditseal.ingest import azure_categories as cat
from auditseal.ingest.azure_analytics import ANALYTICS_DEFAULT, ANALYTICS_MAPS
from auditseal.ingest.azure_times import parse_azure_time
from auditseal.ingest.jsliteral import MISSING, read_js_literal
from auditseal.ingest.record_paths import KeySet, RecordReader, Viable, every, viable
from auditseal.ingest.record_paths import label as _label

__all__ = [
    "Fields", "NormalizedEvent", "normalize_bytes", "normalize_event", "normalize_fields",
    "parse_azure_time",
]


@dataclass(frozen=True)
class NormalizedEvent:
    """Fields derived from one Azure audit record; any of them may be unknown (None).

    Attributes:
        table: the Log Analytics table the event belongs in ("AzureActivity", "SigninLogs",
            "AKSAudit", ... or "AzureEvent" when the record is not recognised).
        time: the event time, aware, in UTC.
        category: the record's category as found ("Administrative", "kube-audit", ...).
        operation: what was done ("MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/WRITE", "Update
            user", "update leases kube-system/kube-controller-manager", ...).
        caller: who did it: UPN, app id, object id or Kubernetes user.
        caller_ip: the caller's IP address, without a port.
        result: "Success", "Failure", "Started", "Accepted", "Canceled" or the original text.
        resource_id: the ARM resource id, case preserved.
        subscription_id: lower-case subscription GUID.
        tenant_id: the Entra tenant id (lower-cased when it is a GUID).
        correlation_id: the id grouping related events.
        level: "Informational", "Warning", "Error", "Critical", "Verbose" or the original.
        problems: non-fatal issues met while deriving the fields.
    """

    table: str
    time: datetime | None = None
    category: str | None = None
    operation: str | None = None
    caller: str | None = None
    caller_ip: str | None = None
    result: str | None = None
    resource_id: str | None = None
    subscription_id: str | None = None
    tenant_id: str | None = None
    correlation_id: str | None = None
    level: str | None = None
    problems: tuple[str, ...] = ()


def normalize_bytes(data: bytes) -> NormalizedEvent:
    """Parse one record's bytes and normalize it.

    Single-quoted pseudo-JSON (Function App logs write ``{'appName':'x', ...}``) is read as
    a JavaScript object literal, the way Azure's own consumers do, and noted as a problem.

    Args:
        data: the bytes of one record (not a ``{"records": [...]}`` envelope).

    Returns:
        The normalized fields.

    Raises:
        IngestError: if the bytes are not a JSON object.
    """
    value, problems = _parse(data)
    fields, found = _derive(value)
    return NormalizedEvent(*fields, (*problems, *found) if problems else found)


_Text = str | None
Fields = tuple[str, datetime | None, _Text, _Text, _Text, _Text, _Text, _Text, _Text, _Text,
               _Text, _Text]
"""A :class:`NormalizedEvent`'s fields from ``table`` to ``level``, in that order."""


def normalize_fields(data: bytes) -> tuple[Fields, bool]:
    """:func:`normalize_bytes` without its problems, as a tuple: what the search index
    stores, without building a dataclass per event (~3 us of the indexing hot path); and
    whether ``data`` is strict JSON (RFC 8259, UTF-8, no byte order mark, read by orjson).

    Raises:
        IngestError: if the bytes are not a JSON object.
    """
    value, problems = _parse(data)
    return _derive(value)[0], not problems and data[:3] != b"\xef\xbb\xbf"


def _parse(data: bytes) -> tuple[dict[str, object], list[str]]:
    """The record as a dict, and the problem of reading it leniently if there was one."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise IngestError(f"record must be bytes, not {type(data).__name__}")
    raw = bytes(data).removeprefix(b"\xef\xbb\xbf")
    problems: list[str] = []
    try:
        value: object = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        value = read_js_literal(raw.decode("utf-8", errors="replace"))
        if value is _MISSING:
            raise IngestError(f"record is not valid JSON: {exc}") from exc
        problems.append("record is not valid JSON; read it as a JavaScript object literal")
    if not isinstance(value, dict):
        raise IngestError(f"record is a JSON {_kind(value)}, not an object")
    if _is_envelope(value):
        raise IngestError('record is a {"records": [...]} envelope; split it into records first')
    return value, problems


def normalize_event(event: Mapping[str, object]) -> NormalizedEvent:
    """Derive the normalized fields of one decoded record. Never raises on a JSON object.

    Args:
        event: one decoded record in any of the three shapes.

    Returns:
        The normalized fields; problems met on the way are listed in ``problems``.
    """
    if not isinstance(event, Mapping):
        return NormalizedEvent(cat.FALLBACK_TABLE, problems=(f"event is a {_kind(event)}",))
    fields, problems = _derive(event)
    return NormalizedEvent(*fields, problems)


def _derive(event: Mapping[str, object]) -> tuple[Fields, tuple[str, ...]]:
    """:class:`NormalizedEvent`'s fields in order, and its problems."""
    reader = _Reader(event)
    if _is_envelope(event):
        reader.problems.append('event is a {"records": [...]} envelope, not a record')
    table, fields = _resolve_table(reader)
    time, category, caller, caller_ip, resource, subscription, tenant, correlation, level = (
        _plan(reader, fields))
    take, text = reader.take, reader.text
    resource_id = take("resource_id", resource, text)
    found: Fields = (
        table,
        take("time", time, reader.time),
        take("category", category, text),
        _operation(reader, fields.operation),
        take("caller", caller, text),
        take("caller_ip", caller_ip, reader.ip),
        _result(reader, fields.result),
        resource_id,
        _subscription(reader, subscription, resource_id),
        _tenant(reader, tenant, resource_id),
        take("correlation_id", correlation, text),
        take("level", level, reader.level),
    )
    return found, tuple(dict.fromkeys(reader.problems)) if reader.problems else ()


# --- reading paths ---------------------------------------------------------------------------

_MISSING = MISSING  # one "no value" sentinel, shared with the literal reader
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SUBSCRIPTION_IN_ID = re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE)
_TENANT_IN_ID = re.compile(r"^/tenants/([^/]+)", re.IGNORECASE)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # no leading zero, as ipaddress
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


class _Reader(RecordReader):
    """A ``RecordReader`` with the converters, which note what they reject in problems."""

    __slots__ = ()

    def quiet(self, path: cat.Path) -> str | None:
        """Text at ``path`` for derivations; odd types there are not worth a problem."""
        value = self.lookup(path)
        if value is _MISSING or value is None or value == "":
            return None
        return _quiet_text("", value, "")

    def text(self, field: str, value: object, where: str) -> str | None:
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, Mapping) and isinstance(value.get("value"), str | int):
            # The REST shape wraps names as {"value": ..., "localizedValue": ...}.
            return self.text(field, value["value"], f"{where}.value")
        self.problems.append(f"{field}: expected text at {where}, found {_kind(value)}")
        return None

    def time(self, field: str, value: object, where: str) -> datetime | None:
        parsed = parse_azure_time(value)
        if parsed is None:
            self.problems.append(f"{field} not parseable: {_show(value)} at {where}")
        return parsed

    def ip(self, field: str, value: object, where: str) -> str | None:
        text = self.text(field, value, where)
        if text is None:
            return None
        host = text
        if text.startswith("[") and "]" in text:  # [v6]:port
            host = text[1 : text.index("]")]
        elif text.count(":") == 1:  # v4:port
            host = text.split(":", 1)[0]
        try:
            if not _IPV4.fullmatch(host):  # the common case without ipaddress's cost
                ipaddress.ip_address(host)
        except ValueError:
            self.problems.append(f"{field}: not an IP address: {_show(text)} at {where}")
            return None
        return host

    def level(self, field: str, value: object, where: str) -> str | None:
        text = self.text(field, value, where)
        return None if text is None else cat.LEVEL_NAMES.get(text.lower(), text)


# --- field derivations -----------------------------------------------------------------------

PLANNED = ("time", "category", "caller", "caller_ip", "resource_id", "subscription_id",
           "tenant_id", "correlation_id", "level")
"""The fields of a :class:`~auditseal.ingest.azure_categories.FieldMap` read by plan."""
_PLANS: dict[tuple[int, int], tuple[cat.FieldMap, KeySet, tuple[Viable, ...]]] = {}
_ONE: dict[cat.Path, tuple[cat.Path]] = {}


def _plan(reader: _Reader, fields: cat.FieldMap) -> tuple[Viable, ...]:
    """The viable candidates of each :data:`PLANNED` field of ``fields`` for the record:
    worked out once per (field map, key set), so the hot path makes one lookup, not nine."""
    keys = reader.keys
    if keys is None:
        return tuple(every(getattr(fields, name)) for name in PLANNED)
    known = _PLANS.get((id(fields), id(keys)))
    if known is None or known[0] is not fields or known[1] is not keys:
        event = reader.event
        plan = tuple(viable(getattr(fields, name), event, keys)  # type: ignore[arg-type]
                     for name in PLANNED)
        if len(_PLANS) >= 4096:
            _PLANS.clear()  # bounded as record_paths' memos are
        known = _PLANS[(id(fields), id(keys))] = (fields, keys, plan)
    return known[2]


def _one(path: cat.Path) -> tuple[cat.Path]:
    """``(path,)``, one lasting tuple per path (field maps hold a few hundred paths at
    most), so :meth:`_Reader.first` can memoize it."""
    return _ONE.get(path) or _ONE.setdefault(path, (path,))


def _resolve_table(reader: _Reader) -> tuple[str, cat.FieldMap]:
    """Which table the record belongs in, and so which field map reads it."""
    event = reader.event
    category = reader.first("category", (("category",), ("CategoryValue",)), _quiet_text)
    analytics = "TimeGenerated" in event or "_ResourceId" in event
    if category is not None and not analytics and (known := _BY_CATEGORY.get(category)):
        return known  # the category alone decides (most records): nothing else to look at
    resource = reader.first("resource_id", (("resourceId",), ("_ResourceId",)), _quiet_text)
    by_category = cat.CATEGORY_TABLES.get(category.lower()) if category else None
    # Log Analytics rows: the TenantId column there is a workspace id, so they get own maps.
    if analytics:
        table_type = event.get("Type")
        table = table_type.strip() if isinstance(table_type, str) else None
        table = table or _pick(by_category, resource) or cat.FALLBACK_TABLE
        return table, ANALYTICS_MAPS.get(table, ANALYTICS_DEFAULT)
    table = _pick(by_category, resource)
    lowered = (resource or "").lower()
    for marker, rule in cat.RESOURCE_TABLES if table is None else ():
        if marker in lowered:
            table = _pick(rule, resource)
            break
    if table is None and (
        "eventTimestamp" in event or isinstance(reader.lookup(("operationName",)), Mapping)
    ):
        table = "AzureActivity"  # the REST / portal shape
    table = table or cat.FALLBACK_TABLE
    resolved = table, cat.FIELD_MAPS.get(table, cat.DIAGNOSTIC_DEFAULT)
    if category and isinstance(by_category, str) and by_category and len(_BY_CATEGORY) < 4096:
        _BY_CATEGORY[category] = resolved
    return resolved


_BY_CATEGORY: dict[str, tuple[str, cat.FieldMap]] = {}  # categories naming one table


def _pick(rule: str | cat.ByResource | None, resource: str | None) -> str | None:
    if not isinstance(rule, cat.ByResource):
        return rule
    lowered = (resource or "").lower()
    return next((table for marker, table in rule.markers if marker in lowered), rule.default)


def _quiet_text(field: str, value: object, where: str) -> str | None:
    """Text for table resolution; problems are reported by the main pass, not twice."""
    del field, where
    if isinstance(value, Mapping):
        value = value.get("value")
    return value.strip() or None if isinstance(value, str) else None


def _operation(reader: _Reader, candidates: Sequence[cat.Path | str]) -> str | None:
    for candidate in candidates:
        if isinstance(candidate, str):
            derive = cat.DERIVATIONS.get(candidate)
            value = derive(reader.quiet) if derive else None
        else:
            value = reader.first("operation", _one(candidate), reader.text)
        if value:
            return value
    return None


def _result(reader: _Reader, candidates: Sequence[tuple[cat.Path, cat.ResultKind]]) -> str | None:
    for path, kind in candidates:
        value = reader.lookup(path)
        if value is _MISSING or value is None or value == "":
            continue
        if kind in ("code", "http") and (number := _as_int(value)) is not None:
            if kind == "code":  # Entra: 0 is success, anything else an AADSTS error code
                return "Success" if number == 0 else "Failure"
            if 100 <= number < 400:
                return "Success"
            return "Failure" if 400 <= number < 600 else str(number)
        if kind == "bool" and isinstance(value, bool):
            return "Success" if value else "Failure"
        text = reader.text("result", value, _label(path))
        if text is not None:
            folded = text.lower()
            if kind == "bool" and folded in ("true", "false"):
                return "Success" if folded == "true" else "Failure"
            return cat.RESULT_SPELLINGS.get(folded, text)
    return None


def _subscription(reader: _Reader, found: Viable, resource: str | None) -> str | None:
    value = reader.take("subscription_id", found, reader.text)
    if value is not None and _GUID.fullmatch(value):
        return value.lower()
    if value is not None:
        reader.problems.append(f"subscription_id: not a GUID: {_show(value)}")
    match = _SUBSCRIPTION_IN_ID.search(resource or "")
    if match and _GUID.fullmatch(match.group(1)):
        return match.group(1).lower()
    return None


def _tenant(reader: _Reader, found: Viable, resource: str | None) -> str | None:
    value = reader.take("tenant_id", found, reader.text)
    if value is None:
        match = _TENANT_IN_ID.search(resource or "")
        value = match.group(1) if match else None
    return value.lower() if value and _GUID.fullmatch(value) else value


# --- small helpers ---------------------------------------------------------------------------


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _is_envelope(event: Mapping[str, object]) -> bool:
    return len(event) == 1 and isinstance(event.get("records"), list)


def _kind(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
