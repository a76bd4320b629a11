"""OTLP/HTTP logs decoding and response encoding (auditseal.api.otlp)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.logs.v1.logs_pb2 import (
    LogRecord,
    ResourceLogs,
    ScopeLogs,
    SeverityNumber,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from auditseal.api.otlp import (
    JSON,
    PROTOBUF,
    decode_otlp_logs,
    encode_otlp_response,
    encode_otlp_status,
    media_type,
)
from auditseal.errors import FormatError

# The OTLP/JSON example of the OpenTelemetry protocol repository, transcribed verbatim
# (white space compacted). Source: github.com/open-telemetry/opentelemetry-proto,
# examples/logs.json, commit 36ea555013eacfbe68fc479014d3532e4650af8e.
SPEC_EXAMPLE = b"""{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":
{"stringValue":"my.service"}}]},"scopeLogs":[{"scope":{"name":"my.library","version":"1.0.0",
"attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},
"logRecords":[{"timeUnixNano":1544712660300000000,"observedTimeUnixNano":1544712660300000000,
"severityText":"Information","traceId":"5B8EFFF798038103D269B633813FC60C",
"spanId":"EEE19B7EC3C1B174","body":{"stringValue":"Example log record"},"attributes":[
{"key":"string.attribute","value":{"stringValue":"some string"}},
{"key":"boolean.attribute","value":{"boolValue":true}},
{"key":"int.attribute","value":{"intValue":10}},
{"key":"double.attribute","value":{"doubleValue":637.704}},
{"key":"array.attribute","value":{"arrayValue":{"values":[{"stringValue":"many"},
{"stringValue":"values"}]}}},
{"key":"map.attribute","value":{"kvlistValue":{"values":[{"key":"some.map.key","value":
{"stringValue":"some value"}}]}}}]}]}]}]}"""

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")


def _kv(key: str, text: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=text))


def _request() -> ExportLogsServiceRequest:
    """Two resources, three scopes, four records: covers every nesting level."""
    first = ResourceLogs(
        resource=Resource(attributes=[_kv("service.name", "billing")]),
        schema_url="https://opentelemetry.io/schemas/1.24.0",
        scope_logs=[
            ScopeLogs(
                scope=InstrumentationScope(name="audit", version="2"),
                log_records=[
                    LogRecord(time_unix_nano=1_700_000_000_000_000_001,
                              severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
                              severity_text="INFO", trace_id=TRACE, span_id=SPAN,
                              body=AnyValue(string_value="user alice signed in"),
                              attributes=[_kv("user", "alice")]),
                    LogRecord(time_unix_nano=2, body=AnyValue(array_value=ArrayValue(
                        values=[AnyValue(int_value=-5), AnyValue(bytes_value=b"\x00\xff")]))),
                ],
            ),
            ScopeLogs(log_records=[LogRecord(event_name="login",
                                            severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR)]),
        ],
    )
    second = ResourceLogs(
        resource=Resource(attributes=[_kv("service.name", "web")]),
        scope_logs=[ScopeLogs(scope=InstrumentationScope(name="s"),
                              log_records=[LogRecord(body=AnyValue(bool_value=True))])],
    )
    return ExportLogsServiceRequest(resource_logs=[first, second])


def _as_otlp_json(message: Any) -> bytes:
    """Encode a request as an OTLP/JSON exporter does: ids as upper-case hex, indented."""
    value = json_format.MessageToDict(message, use_integers_for_enums=True)
    for rl in value.get("resourceLogs", ()):
        for sl in rl.get("scopeLogs", ()):
            for rec in sl.get("logRecords", ()):
                for key in ("traceId", "spanId"):
                    if key in rec:
                        rec[key] = base64.b64decode(rec[key]).hex().upper()
    return orjson.dumps(value, option=orjson.OPT_INDENT_2)


def _event_message(data: bytes) -> ResourceLogs:
    """Parse an event back into a ResourceLogs (hex ids back to protobuf bytes)."""
    value = orjson.loads(data)
    for sl in value["scopeLogs"]:
        for rec in sl["logRecords"]:
            for key in ("traceId", "spanId"):
                if key in rec:
                    rec[key] = base64.b64encode(bytes.fromhex(rec[key])).decode()
    message = ResourceLogs()
    json_format.ParseDict(value, message)
    return message


def _expected_singles(request: ExportLogsServiceRequest) -> list[ResourceLogs]:
    out = []
    for rl in request.resource_logs:
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                single = ResourceLogs(schema_url=rl.schema_url)
                if rl.HasField("resource"):
                    single.resource.CopyFrom(rl.resource)
                scope = single.scope_logs.add(schema_url=sl.schema_url, log_records=[rec])
                if sl.HasField("scope"):
                    scope.scope.CopyFrom(sl.scope)
                out.append(single)
    return out


def test_spec_example_json_becomes_one_canonical_event() -> None:
    batch = decode_otlp_logs(SPEC_EXAMPLE, "application/json")
    assert batch.rejected == ()
    assert [e.item for e in batch.events] == [0]
    data = batch.events[0].data
    assert b"\n" not in data  # compact
    assert b": " not in data
    event = orjson.loads(data)
    record = event["scopeLogs"][0]["logRecords"][0]
    assert event["resource"]["attributes"][0] == {
        "key": "service.name", "value": {"stringValue": "my.service"}}
    assert event["scopeLogs"][0]["scope"]["name"] == "my.library"
    assert event["scopeLogs"][0]["scope"]["version"] == "1.0.0"
    assert record["traceId"] == "5b8efff798038103d269b633813fc60c"  # hex, lower case
    assert record["spanId"] == "eee19b7ec3c1b174"
    assert record["timeUnixNano"] == "1544712660300000000"  # int64 as a decimal string
    assert record["body"] == {"stringValue": "Example log record"}
    assert [a["key"] for a in record["attributes"]] == [
        "string.attribute", "boolean.attribute", "int.attribute", "double.attribute",
        "array.attribute", "map.attribute"]
    assert record["attributes"][2]["value"] == {"intValue": "10"}
    assert record["attributes"][3]["value"] == {"doubleValue": 637.704}


def test_protobuf_round_trip_every_record_with_its_resource_and_scope() -> None:
    request = _request()
    batch = decode_otlp_logs(request.SerializeToString(), "application/x-protobuf")
    assert batch.rejected == ()
    assert batch.total == 4
    assert [e.item for e in batch.events] == [0, 1, 2, 3]
    got = [_event_message(e.data) for e in batch.events]
    assert got == _expected_singles(request)
    assert orjson.loads(batch.events[2].data)["scopeLogs"][0]["logRecords"][0] == {
        "severityNumber": 17, "eventName": "login"}  # enum as an integer


def test_json_and_protobuf_of_the_same_request_give_identical_events() -> None:
    request = _request()
    from_pb = decode_otlp_logs(request.SerializeToString(), PROTOBUF)
    from_json = decode_otlp_logs(_as_otlp_json(request), "application/json; charset=utf-8")
    assert [e.data for e in from_json.events] == [e.data for e in from_pb.events]


def test_decoding_is_idempotent_on_its_own_output() -> None:
    """An event is itself a valid OTLP/JSON ResourceLogs: re-wrapped, it decodes to itself."""
    event = decode_otlp_logs(SPEC_EXAMPLE, JSON).events[0].data
    again = decode_otlp_logs(b'{"resourceLogs":[' + event + b"]}", JSON)
    assert [e.data for e in again.events] == [event]


def test_snake_case_keys_and_unknown_fields_are_accepted() -> None:
    body = (b'{"resource_logs":[{"scope_logs":[{"log_records":[{"severity_text":"WARN",'
            b'"future_field":1,"span_id":"0102030405060708"}]}],"newThing":{}}]}')
    batch = decode_otlp_logs(body, JSON)
    assert batch.rejected == ()
    rec = orjson.loads(batch.events[0].data)["scopeLogs"][0]["logRecords"][0]
    assert rec == {"severityText": "WARN", "spanId": "0102030405060708"}


def test_enum_name_is_accepted_and_written_as_integer() -> None:
    batch = decode_otlp_logs(_record_body(b'{"severityNumber":"SEVERITY_NUMBER_WARN"}'), JSON)
    rec = orjson.loads(batch.events[0].data)["scopeLogs"][0]["logRecords"][0]
    assert rec == {"severityNumber": 13}


def test_empty_request_has_no_events() -> None:
    assert decode_otlp_logs(b"{}", JSON).total == 0
    assert decode_otlp_logs(b"", PROTOBUF).total == 0


def _record_body(*records: bytes) -> bytes:
    return (b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[' + b",".join(records)
            + b"]}]}]}")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        pytest.param(b'"text"', "not a JSON object", id="record-not-object"),
        pytest.param(b'{"traceId":"zz"}', "is not hex", id="trace-id-not-hex"),
        pytest.param(b'{"traceId":"W47/95gDgQPSabYzgT/GDA=="}', "is not hex",
                     id="trace-id-base64-not-hex"),
        pytest.param(b'{"traceId":"0102"}', "traceId is 2 bytes, expected 16",
                     id="trace-id-short"),
        pytest.param(b'{"spanId":"0102030405060708090a"}', "spanId is 10 bytes, expected 8",
                     id="span-id-long"),
        pytest.param(b'{"spanId":12}', "not a hex string", id="span-id-number"),
        pytest.param(b'{"severityNumber":"LOUD"}', "is not a SeverityNumber", id="bad-enum"),
        pytest.param(b'{"severityNumber":1.5}', "is not an integer", id="enum-float"),
        pytest.param(b'{"severityNumber":false}', "is not an integer", id="enum-bool"),
        pytest.param(b'{"timeUnixNano":"yesterday"}', "does not decode", id="bad-int64"),
        pytest.param(b'{"body":{"stringValue":5}}', "does not decode", id="bad-body-type"),
    ],
)
def test_json_bad_record_is_rejected_alone(record: bytes, reason: str) -> None:
    body = _record_body(b'{"severityText":"ok-before"}', record, b'{"severityText":"ok-after"}')
    batch = decode_otlp_logs(body, JSON)
    assert [e.item for e in batch.events] == [0, 2]
    assert len(batch.rejected) == 1
    assert batch.rejected[0].item == 1
    assert reason in batch.rejected[0].reason


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        pytest.param("trace_id", b"\x01" * 3, "traceId is 3 bytes", id="trace-id"),
        pytest.param("span_id", b"\x01" * 16, "spanId is 16 bytes", id="span-id"),
    ],
)
def test_protobuf_bad_id_is_rejected_alone(field: str, value: bytes, reason: str) -> None:
    bad = LogRecord(trace_id=value) if field == "trace_id" else LogRecord(span_id=value)
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(
        log_records=[LogRecord(severity_text="a"), bad])])])
    batch = decode_otlp_logs(request.SerializeToString(), PROTOBUF)
    assert [e.item for e in batch.events] == [0]
    assert batch.rejected[0].item == 1
    assert reason in batch.rejected[0].reason


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        pytest.param(b"{not json", JSON, "not valid JSON", id="json-syntax"),
        pytest.param(b"[]", JSON, "not a JSON object", id="json-array"),
        pytest.param(b'{"resourceLogs":{}}', JSON, "is not an array", id="resource-logs-object"),
        pytest.param(b'{"resourceLogs":[5]}', JSON, "resourceLogs[0] is not an object",
                     id="resource-logs-item"),
        pytest.param(b'{"resourceLogs":[{"scopeLogs":[[]]}]}', JSON,
                     "scopeLogs[0] is not an object", id="scope-logs-item"),
        pytest.param(b'{"resourceLogs":[{"schemaUrl":1}]}', JSON, "schemaUrl is not a string",
                     id="schema-url"),
        pytest.param(b'{"resourceLogs":[{"resource":{"attributes":3}}]}', JSON,
                     "resource does not decode", id="resource"),
        pytest.param(b'{"resourceLogs":[{"scopeLogs":[{"scope":{"name":[]}}]}]}', JSON,
                     "scope does not decode", id="scope"),
        pytest.param(b"\x0a\xff\xff\xff", PROTOBUF, "does not parse", id="protobuf-truncated"),
        pytest.param(b"{}", "text/plain", "unsupported content type", id="content-type"),
    ],
)
def test_malformed_body_is_refused_whole(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(FormatError) as info:
        decode_otlp_logs(body, content_type)
    assert message in str(info.value)


def test_protobuf_invalid_utf8_string_is_refused() -> None:
    good = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(
        log_records=[LogRecord(severity_text="AB")])])]).SerializeToString()
    bad = good.replace(b"AB", b"\xff\xfe")
    with pytest.raises(FormatError, match="does not parse"):
        decode_otlp_logs(bad, PROTOBUF)


@pytest.mark.parametrize(
    ("rejected", "message", "json_body"),
    [
        pytest.param(0, "", {}, id="full-success"),
        pytest.param(2, "2 records rejected", {"partialSuccess": {
            "rejectedLogRecords": "2", "errorMessage": "2 records rejected"}}, id="partial"),
        pytest.param(0, "warning", {"partialSuccess": {"errorMessage": "warning"}},
                     id="warning-only"),
    ],
)
def test_response_round_trip(rejected: int, message: str, json_body: dict[str, Any]) -> None:
    assert orjson.loads(encode_otlp_response(rejected, message, JSON)) == json_body
    raw = encode_otlp_response(rejected, message, "application/x-protobuf")
    parsed = ExportLogsServiceResponse()
    parsed.ParseFromString(raw)
    assert parsed.partial_success.rejected_log_records == rejected
    assert parsed.partial_success.error_message == message
    assert parsed.HasField("partial_success") == bool(rejected or message)
    assert (raw == b"") == (not (rejected or message))


def test_response_refuses_other_content_types() -> None:
    with pytest.raises(FormatError, match="unsupported"):
        encode_otlp_response(0, "", "text/html")


def test_status_encodings() -> None:
    assert orjson.loads(encode_otlp_status("bad body", JSON)) == {"code": 3, "message": "bad body"}
    # google.rpc.Status: field 1 varint code, field 2 string message (hand-checked bytes).
    assert encode_otlp_status("hé", PROTOBUF) == b"\x08\x03\x12\x03h\xc3\xa9"
    assert encode_otlp_status("", PROTOBUF, code=300) == b"\x08\xac\x02"
    with pytest.raises(FormatError):
        encode_otlp_status("x", "text/plain")


def test_media_type() -> None:
    assert media_type(" Application/X-Protobuf ; foo=bar") == PROTOBUF
