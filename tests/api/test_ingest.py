"""POST /v1/events: every body shape sealed byte for byte, per-item errors, atomic mode."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import orjson
import pytest

from auditseal.core.entry import EntryHeader
from tests.api.conftest import Api
from tests.conftest import run_cli

A = b'{"time":"2026-11-27T07:00:00Z",  "operationName":"A", "n":1}'
B = b'{ "operationName" : "B",\n  "nested": {"x": [1, 2.50, "\\u00e9"]} }'
C = b'{"c":"\xc3\xa9t\xc3\xa9"}'


def _sealed_bytes(api: Api, index: int) -> bytes:
    with api.client("reader") as client:
        found = client.get(f"/v1/entries/{index}")
    assert found.status_code == 200, found.text
    return base64.b64decode(found.json()["event_b64"])


SHAPES = [
    pytest.param("application/json", A, [A], id="one-object"),
    pytest.param("application/json", b"[" + A + b",\n " + B + b"]", [A, B], id="array"),
    pytest.param("application/json", b'{"records": [' + A + b", " + C + b"]}", [A, C],
                 id="records-envelope"),
    pytest.param("application/x-ndjson", A + b"\r\n" + C + b"\n", [A, C], id="ndjson"),
    pytest.param("application/jsonl; charset=utf-8", C + b"\n" + A, [C, A], id="jsonl"),
]


@pytest.mark.parametrize(("content_type", "body", "events"), SHAPES)
def test_every_body_shape_is_sealed_byte_for_byte(api: Api, content_type: str, body: bytes,
                                                  events: list[bytes]) -> None:
    with api.client("ingest", **{"Content-Type": content_type}) as client:
        answer = client.post("/v1/events", content=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["accepted"], result["rejected"], result["errors"]) == (len(events), 0, [])
    assert [e["item"] for e in result["entries"]] == list(range(len(events)))
    api.wait_sealed()
    for entry, event in zip(result["entries"], events, strict=True):
        assert _sealed_bytes(api, entry["index"]) == event
        with api.client("reader") as client:
            sealed = client.get(f"/v1/entries/{entry['index']}").json()
        assert sealed["leaf_hash"] == entry["leaf_hash"]
        header = EntryHeader(received=_parse(sealed["received"]), source=sealed["source"])
        assert entry["leaf_hash"] == hashlib.sha256(b"\0" + header.encode() + event).hexdigest()
        assert sealed["source"].startswith("http:key/")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_bad_items_are_reported_and_good_ones_kept(api: Api) -> None:
    body = b"[" + A + b', [1], "text", ' + B + b", {bad}]"
    with api.client("ingest", **{"Content-Type": "application/json"}) as client:
        answer = client.post("/v1/events", content=body)
    assert answer.status_code == 200
    result = answer.json()
    assert result["accepted"] == 2
    assert [e["item"] for e in result["entries"]] == [0, 3]
    assert [e["item"] for e in result["errors"]] == [1, 2, 4]
    assert "not a JSON object (found an array)" in result["errors"][0]["reason"]
    assert "not a JSON object (found a string)" in result["errors"][1]["reason"]
    assert "invalid JSON" in result["errors"][2]["reason"]
    api.wait_sealed()
    assert _sealed_bytes(api, result["entries"][1]["index"]) == B


def test_ndjson_errors_name_their_line(api: Api) -> None:
    body = A + b"\n{not json\n" + C + b"\n"
    with api.client("ingest", **{"Content-Type": "application/x-ndjson"}) as client:
        result = client.post("/v1/events", content=body).json()
    assert result["accepted"] == 2
    assert result["errors"][0]["item"] == 1
    assert result["errors"][0]["line"] == 2


def test_atomic_request_seals_nothing_when_one_item_is_bad(api: Api) -> None:
    before = api.service.writer.size
    with api.client("ingest", **{"Content-Type": "application/json"}) as client:
        answer = client.post("/v1/events?atomic=true", content=b"[" + A + b", 7]")
        good = client.post("/v1/events?atomic=true", content=b"[" + A + b"]")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "rejected"
    assert answer.json()["accepted"] == 0
    assert answer.json()["errors"][0]["item"] == 1
    assert good.status_code == 200
    assert api.service.writer.size == before + 1


def test_all_rejected_is_400_no_valid_events(api: Api) -> None:
    with api.client("ingest", **{"Content-Type": "application/json"}) as client:
        answer = client.post("/v1/events", content=b"[1, 2]")
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"]["code"] == "no_valid_events"
    assert (body["accepted"], body["rejected"]) == (0, 2)


def test_oversized_event_is_rejected_alone(api: Api) -> None:
    big = orjson.dumps({"blob": "x" * 70_000})
    with api.client("ingest", **{"Content-Type": "application/x-ndjson"}) as client:
        result = client.post("/v1/events", content=A + b"\n" + big + b"\n").json()
    assert result["accepted"] == 1
    assert "65,535" in result["errors"][0]["reason"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_wrong_content_type_is_415(api: Api, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with api.client("ingest", **headers) as client:
        answer = client.post("/v1/events", content=A)
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"


def test_sealed_log_verifies_with_the_cli(api: Api) -> None:
    with api.client("ingest", **{"Content-Type": "application/json"}) as client:
        assert client.post("/v1/events", content=b"[" + A + b"," + B + b"]").status_code == 200
    api.wait_sealed()
    assert run_cli("verify", "--log", api.log.root, "--key", api.vkey, "--no-progress",
                   "--workers", "1") == 0
