"""OTLP/HTTP logs: turning an OpenTelemetry export request into audit events.

Implements the receiving side of ``POST /v1/otlp/v1/logs`` (docs/api.md, "Ingest") as the
OTLP specification defines it (https://opentelemetry.io/docs/specs/otlp/, "OTLP/HTTP"):
the body is an ``ExportLogsServiceRequest`` as binary protobuf (``application/x-protobuf``)
or as OTLP/JSON (``application/json``), and the answer is an ``ExportLogsServiceResponse``
in the same encoding, with ``partial_success`` when records were rejected.

Each ``LogRecord`` becomes one event: the *canonical OTLP JSON* of a ``ResourceLogs``
holding that one record with its resource and its scope, so an event carries everything
needed to read it alone. Canonical here means: the protobuf JSON mapping with
lowerCamelCase keys in field-number order, default values omitted, 64-bit integers as
decimal strings, enums as integers, ``traceId``/``spanId`` as lowercase hex (OTLP/JSON,
"JSON Protobuf Encoding": ids are hex, not base64; enums are integers), and no white
space. The same record sent as JSON or as protobuf thus yields the same bytes.

A body that does not parse at all is refused whole (:class:`~auditseal.errors.FormatError`);
within a parsed JSON body a record that does not decode is rejected alone, and in both
encodings a record with a malformed trace or span id is rejected alone, so the rest of
the batch is kept (OTLP's partial success).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import (
    LogRecord,
    ResourceLogs,
    ScopeLogs,
    SeverityNumber,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from auditseal.errors import FormatError

__all__ = [
    "JSON",
    "PROTOBUF",
    "OtlpBatch",
    "OtlpEvent",
    "OtlpRejected",
    "decode_otlp_logs",
    "encode_otlp_response",
    "encode_otlp_status",
    "media_type",
]

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
_MEDIA_TYPES = frozenset({JSON, PROTOBUF})
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
# The OTLP/JSON keys holding hex ids in a LogRecord (camelCase, and the proto names a
# lenient sender may use: protobuf's JSON parser accepts both spellings).
_ID_KEYS = {"traceId": _TRACE_ID_BYTES, "trace_id": _TRACE_ID_BYTES,
            "spanId": _SPAN_ID_BYTES, "span_id": _SPAN_ID_BYTES}
_SEVERITY_NAMES = frozenset(SeverityNumber.keys())
_PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError, RecursionError)


@dataclass(frozen=True, slots=True)
class OtlpEvent:
    """One log record converted to an audit event.

    Attributes:
        item: 0-based position of the record in the request (all records, in order).
        data: the canonical OTLP JSON of a ResourceLogs holding only this record.
    """

    item: int
    data: bytes


@dataclass(frozen=True, slots=True)
class OtlpRejected:
    """A log record that could not be converted, and why.

    Attributes:
        item: 0-based position of the record in the request.
        reason: human text naming the problem.
    """

    item: int
    reason: str


@dataclass(frozen=True, slots=True)
class OtlpBatch:
    """The events and rejected records of one export request, both in request order."""

    events: tuple[OtlpEvent, ...]
    rejected: tuple[OtlpRejected, ...]

    @property
    def total(self) -> int:
        """Number of log records in the request."""
        return len(self.events) + len(self.rejected)


def media_type(content_type: str) -> str:
    """Return the bare, lower-case media type of a Content-Type header value.

    >>> media_type("Application/JSON; charset=utf-8")
    'application/json'
    """
    return content_type.split(";", 1)[0].strip().lower()


def decode_otlp_logs(body: bytes, content_type: str) -> OtlpBatch:
    """Decode an OTLP/HTTP logs export request into one event per log record.

    Args:
        body: the request body (already decompressed).
        content_type: the request's Content-Type (parameters are ignored).

    Returns:
        The converted events and the rejected records.

    Raises:
        FormatError: the content type is neither OTLP encoding, or the body does not parse
            as an ExportLogsServiceRequest (nothing in it is kept).
    """
    kind = media_type(content_type)
    if kind == PROTOBUF:
        return _collect(_records_from_protobuf(body))
    if kind == JSON:
        return _collect(_records_from_json(body))
    raise FormatError(
        f"unsupported content type {kind!r} for OTLP logs: use {JSON} or {PROTOBUF}"
    )


def encode_otlp_response(rejected: int, message: str, content_type: str) -> bytes:
    """Encode an ExportLogsServiceResponse in the request's encoding.

    ``partial_success`` is set only when something was rejected or there is a message,
    as the OTLP spec asks ("Partial Success"); a full success is an empty message.

    Args:
        rejected: number of rejected log records.
        message: why they were rejected (or a warning); may be empty.
        content_type: the request's Content-Type, which selects the encoding.

    Raises:
        FormatError: the content type is neither OTLP encoding.
    """
    response = ExportLogsServiceResponse()
    if rejected or message:
        response.partial_success.CopyFrom(
            ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
        )
    kind = media_type(content_type)
    if kind == PROTOBUF:
        return bytes(response.SerializeToString())
    if kind == JSON:
        return orjson.dumps(_to_dict(response))
    raise FormatError(f"unsupported content type {kind!r} for an OTLP response")


def encode_otlp_status(message: str, content_type: str, code: int = 3) -> bytes:
    """Encode the ``google.rpc.Status`` OTLP/HTTP returns with a failed request.

    The message has two fields (code = 1, varint; message = 2, string), written here
    directly so no googleapis package is needed. ``code`` 3 is INVALID_ARGUMENT.

    Raises:
        FormatError: the content type is neither OTLP encoding.
    """
    kind = media_type(content_type)
    if kind == JSON:
        return orjson.dumps({"code": code, "message": message})
    if kind != PROTOBUF:
        raise FormatError(f"unsupported content type {kind!r} for an OTLP status")
    text = message.encode("utf-8")
    out = bytearray()
    if code:
        out += b"\x08" + _varint(code)
    if text:
        out += b"\x12" + _varint(len(text)) + text
    return bytes(out)


# --- decoding --------------------------------------------------------------------------------

# One record in request order: its resource and scope context, and the record or the
# reason it could not be decoded.
_Item = tuple[ResourceLogs, ScopeLogs, "LogRecord | str"]


def _records_from_protobuf(body: bytes) -> Iterator[_Item]:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise FormatError(f"OTLP protobuf body does not parse: {exc}") from None
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                yield resource_logs, scope_logs, record


def _records_from_json(body: bytes) -> Iterator[_Item]:
    """Walk the JSON request by hand so that a bad record is rejected alone."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"OTLP JSON body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise FormatError("OTLP JSON body is not a JSON object")
    for r, raw_rl in enumerate(_list(request, "resourceLogs", "resource_logs", "request")):
        where = f"resourceLogs[{r}]"
        rl_dict = _object(raw_rl, where)
        resource_logs = ResourceLogs(schema_url=_str(rl_dict, "schemaUrl", "schema_url", where))
        if (resource := _member(rl_dict, "resource", "resource")) is not None:
            _parse_into(resource, resource_logs.resource, f"{where}.resource")
        for s, raw_sl in enumerate(_list(rl_dict, "scopeLogs", "scope_logs", where)):
            where_s = f"{where}.scopeLogs[{s}]"
            sl_dict = _object(raw_sl, where_s)
            scope_logs = ScopeLogs(schema_url=_str(sl_dict, "schemaUrl", "schema_url", where_s))
            if (scope := _member(sl_dict, "scope", "scope")) is not None:
                _parse_into(scope, scope_logs.scope, f"{where_s}.scope")
            for raw in _list(sl_dict, "logRecords", "log_records", where_s):
                yield resource_logs, scope_logs, _json_record(raw)


def _json_record(raw: object) -> LogRecord | str:
    if not isinstance(raw, dict):
        return "log record is not a JSON object"
    fixed = dict(raw)
    for key, size in _ID_KEYS.items():
        value = fixed.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            return f"{key} is not a hex string"
        try:
            decoded = binascii.unhexlify(value)
        except (binascii.Error, ValueError):
            return f"{key} {value[:40]!r} is not hex (OTLP/JSON ids are hex, not base64)"
        if len(decoded) != size:
            return f"{key} is {len(decoded)} bytes, expected {size}"
        fixed[key] = base64.b64encode(decoded).decode("ascii")
    severity = _member(fixed, "severityNumber", "severity_number")
    # protobuf's parser silently drops an unknown enum name (ignore_unknown_fields) and
    # truncates 1.5 to 1; in an audit event a wrong severity is worse than a refusal.
    if isinstance(severity, str) and severity not in _SEVERITY_NAMES:
        return f"severityNumber {severity[:40]!r} is not a SeverityNumber"
    if isinstance(severity, bool) or not isinstance(severity, str | int | None):
        return f"severityNumber {str(severity)[:40]} is not an integer"
    record = LogRecord()
    try:
        json_format.ParseDict(fixed, record, ignore_unknown_fields=True)
    except _PARSE_ERRORS as exc:
        return f"log record does not decode: {_first_line(exc)}"
    return record


def _collect(items: Iterator[_Item]) -> OtlpBatch:
    events: list[OtlpEvent] = []
    rejected: list[OtlpRejected] = []
    for item, (resource_logs, scope_logs, record) in enumerate(items):
        reason = record if isinstance(record, str) else _check_record(record)
        if reason is not None:
            rejected.append(OtlpRejected(item, reason))
            continue
        assert not isinstance(record, str)
        events.append(OtlpEvent(item, _canonical(resource_logs, scope_logs, record)))
    return OtlpBatch(tuple(events), tuple(rejected))


def _check_record(record: LogRecord) -> str | None:
    # Protobuf accepts bytes of any length; the data model does not (ids are 16 and 8).
    if record.trace_id and len(record.trace_id) != _TRACE_ID_BYTES:
        return f"traceId is {len(record.trace_id)} bytes, expected {_TRACE_ID_BYTES}"
    if record.span_id and len(record.span_id) != _SPAN_ID_BYTES:
        return f"spanId is {len(record.span_id)} bytes, expected {_SPAN_ID_BYTES}"
    return None


def _canonical(resource_logs: ResourceLogs, scope_logs: ScopeLogs, record: LogRecord) -> bytes:
    single = ResourceLogs(schema_url=resource_logs.schema_url)
    if resource_logs.HasField("resource"):
        single.resource.CopyFrom(resource_logs.resource)
    scope = single.scope_logs.add(schema_url=scope_logs.schema_url)
    if scope_logs.HasField("scope"):
        scope.scope.CopyFrom(scope_logs.scope)
    scope.log_records.append(record)
    value = _to_dict(single)
    for logs in value.get("scopeLogs", ()):
        for log in logs.get("logRecords", ()):
            for key in ("traceId", "spanId"):
                if key in log:
                    log[key] = base64.b64decode(log[key]).hex()
    return orjson.dumps(value)


def _to_dict(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    return result


# --- JSON walking helpers --------------------------------------------------------------------


def _member(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


def _list(obj: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = _member(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FormatError(f"OTLP JSON {where}.{camel} is not an array")
    return value


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"OTLP JSON {where} is not an object")
    return value


def _str(obj: dict[str, Any], camel: str, snake: str, where: str) -> str:
    value = _member(obj, camel, snake)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FormatError(f"OTLP JSON {where}.{camel} is not a string")
    return value


def _parse_into(value: object, message: Resource | InstrumentationScope, where: str) -> None:
    try:
        json_format.ParseDict(value, message, ignore_unknown_fields=True)
    except _PARSE_ERRORS as exc:
        raise FormatError(f"OTLP JSON {where} does not decode: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
