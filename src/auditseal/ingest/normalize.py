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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

import orjson

from auditseal.errors import IngestError
from auditseal.ingest import azure_categories as cat
from auditseal.ingest.azure_analytics import ANALYTICS_DEFAULT, ANALYTICS_MAPS
from auditseal.ingest.azure_times import parse_azure_time
from auditseal.ingest.jsliteral import MISSING, read_js_literal
from auditseal.ingest.record_paths import candidates, key_set, walk
from auditseal.ingest.record_paths import label as _label

__all__ = ["NormalizedEvent", "normalize_bytes", "normalize_event", "parse_azure_time"]


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
    event = normalize_event(value)
    return replace(event, problems=(*problems, *event.problems)) if problems else event


def normalize_event(event: Mapping[str, object]) -> NormalizedEvent:
    """Derive the normalized fields of one decoded record. Never raises on a JSON object.

    Args:
        event: one decoded record in any of the three shapes.

    Returns:
        The normalized fields; problems met on the way are listed in ``problems``.
    """
    if not isinstance(event, Mapping):
        return NormalizedEvent(cat.FALLBACK_TABLE, problems=(f"event is a {_kind(event)}",))
    reader = _Reader(event)
    if _is_envelope(event):
        reader.problems.append('event is a {"records": [...]} envelope, not a record')
    table, fields = _resolve_table(reader)
    resource_id = reader.first("resource_id", fields.resource_id, reader.text)
    return NormalizedEvent(
        table=table,
        time=reader.first("time", fields.time, reader.time),
        category=reader.first("category", fields.category, reader.text),
        operation=_operation(reader, fields.operation),
        caller=reader.first("caller", fields.caller, reader.text),
        caller_ip=reader.first("caller_ip", fields.caller_ip, reader.ip),
        result=_result(reader, fields.result),
        resource_id=resource_id,
        subscription_id=_subscription(reader, fields.subscription_id, resource_id),
        tenant_id=_tenant(reader, fields.tenant_id, resource_id),
        correlation_id=reader.first("correlation_id", fields.correlation_id, reader.text),
        level=reader.first("level", fields.level, reader.level),
        problems=tuple(dict.fromkeys(reader.problems)),
    )


# --- reading paths ---------------------------------------------------------------------------

_MISSING = MISSING  # one "no value" sentinel, shared with the literal reader
_T = TypeVar("_T")
_Convert = Callable[[str, object, str], _T | None]
"""(field name, raw value, where) -> converted value, or None after noting a problem."""
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SUBSCRIPTION_IN_ID = re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE)
_TENANT_IN_ID = re.compile(r"^/tenants/([^/]+)", re.IGNORECASE)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # no leading zero, as ipaddress
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


class _Reader:
    """Case-insensitive path lookups over one record, decoding JSON held in strings once.

    Hot (every indexed event): a field's candidate paths are walked together, compiled
    (:mod:`~auditseal.ingest.record_paths`), with which keys are present known per key set.
    """

    __slots__ = ("_decoded", "_keys", "event", "problems")

    def __init__(self, event: Mapping[str, object]) -> None:
        self.event = event
        self.problems: list[str] = []
        self._decoded: dict[str, object] = {}
        self._keys = key_set(event) if type(event) is dict else None

    def lookup(self, path: cat.Path, node: object = _MISSING, depth: int = 0) -> object:
        """The value at ``path`` (or at ``path[depth:]`` from ``node``), or ``_MISSING``."""
        return walk(self.event if node is _MISSING else node, path, depth, self._decode)

    def first(self, field: str, paths: Sequence[cat.Path], convert: _Convert[_T]) -> _T | None:
        """The first candidate path whose value converts; ``convert`` notes what it rejects.

        ``paths`` should be a lasting tuple (a field map's): which candidates the record's
        keys rule out is worked out once per key set, not looked up for every record.
        """
        event, keys = self.event, self._keys
        if keys is None:
            return self.first_of(field, paths, convert)
        compiled = candidates(paths)
        for index, key in compiled.viable(event, keys):  # type: ignore[arg-type]
            path = compiled.paths[index]
            if len(path) == 1:
                value = event[key]  # type: ignore[index]
            else:
                value = self.lookup(path, event[key], 1) if path else event  # type: ignore[index]
            if value is _MISSING or value is None or value == "":
                continue
            converted = convert(field, value, compiled.labels[index])
            if converted is not None:
                return converted
        return None

    def first_of(self, field: str, paths: Sequence[cat.Path], convert: _Convert[_T]
                 ) -> _T | None:
        """:meth:`first` for passing tuples: each candidate is looked up in turn."""
        for path in paths:
            value = self.lookup(path)
            if value is _MISSING or value is None or value == "":
                continue
            converted = convert(field, value, _label(path))
            if converted is not None:
                return converted
        return None

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

    def _decode(self, where: str, text: str) -> object:
        """JSON held in a string (AKS ``properties.log``), decoded once per path."""
        if where not in self._decoded:
            decoded: object = _MISSING
            if text.lstrip()[:1] in ("{", "["):
                try:
                    decoded = orjson.loads(text)
                except orjson.JSONDecodeError:
                    decoded = read_js_literal(text)
                    if decoded is _MISSING:
                        self.problems.append(f"{where} is not valid JSON")
                    else:
                        self.problems.append(f"{where} is not valid JSON; read it leniently")
            self._decoded[where] = decoded
        return self._decoded[where]


# --- field derivations -----------------------------------------------------------------------


def _resolve_table(reader: _Reader) -> tuple[str, cat.FieldMap]:
    """Which table the record belongs in, and so which field map reads it."""
    event = reader.event
    resource = reader.first("resource_id", (("resourceId",), ("_ResourceId",)), _quiet_text)
    category = reader.first("category", (("category",), ("CategoryValue",)), _quiet_text)
    by_category = cat.CATEGORY_TABLES.get(category.lower()) if category else None
    # Log Analytics rows: the TenantId column there is a workspace id, so they get own maps.
    if "TimeGenerated" in event or "_ResourceId" in event:
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
    return table, cat.FIELD_MAPS.get(table, cat.DIAGNOSTIC_DEFAULT)


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
            value = reader.first_of("operation", (candidate,), reader.text)
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


def _subscription(reader: _Reader, paths: Sequence[cat.Path], resource: str | None) -> str | None:
    value = reader.first("subscription_id", paths, reader.text)
    if value is not None and _GUID.fullmatch(value):
        return value.lower()
    if value is not None:
        reader.problems.append(f"subscription_id: not a GUID: {_show(value)}")
    match = _SUBSCRIPTION_IN_ID.search(resource or "")
    if match and _GUID.fullmatch(match.group(1)):
        return match.group(1).lower()
    return None


def _tenant(reader: _Reader, paths: Sequence[cat.Path], resource: str | None) -> str | None:
    value = reader.first("tenant_id", paths, reader.text)
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
