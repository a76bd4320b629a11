"""Receipts verified on the client, and the logging handler, against the real service."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import orjson
import pytest

from auditseal.client import AuditLogHandler, AuditsealClient, Delivery, verify_receipt
from auditseal.core.notekeys import generate_key
from auditseal.core.tlogproof import TlogProof
from auditseal.errors import EntryMismatch, FormatError, InclusionProofError, SignatureError

from .conftest import LiveServer

EVENT = b'{"action":"role.assign","user":"alice","role":"Owner"}'


@pytest.fixture
def sealed(live: LiveServer) -> Iterator[tuple[AuditsealClient, Delivery, str]]:
    with AuditsealClient(live.url, live.ingest_key) as client:
        client.send_now([{"n": 0}, {"n": 1}])
        result = client.send_now([EVENT])[0]
        assert isinstance(result, Delivery)
        live.events()  # waits until a checkpoint covers it: no 202 round trip
        receipt = client.receipt(result.index)
        yield client, result, receipt


def test_receipt_verifies_against_the_pinned_key(
        live: LiveServer, sealed: tuple[AuditsealClient, Delivery, str]) -> None:
    _, delivery, receipt = sealed
    checkpoint = verify_receipt(receipt, EVENT, live.vkey)
    assert checkpoint.size > delivery.index
    assert checkpoint.origin == "test.local/client"
    assert verify_receipt(receipt, None, [live.vkey], origin="test.local/client") == checkpoint
    proof = TlogProof.parse(receipt.encode())
    assert proof.index == delivery.index


def test_receipt_waits_while_not_yet_sealed(live: LiveServer) -> None:
    with AuditsealClient(live.url, live.ingest_key) as client:
        delivery = client.send_now([EVENT])[0]
        assert isinstance(delivery, Delivery)
        receipt = client.receipt(delivery.index, wait_s=5.0)  # 202 + Retry-After until sealed
    assert verify_receipt(receipt, EVENT, live.vkey).size > delivery.index


def _tamper_extra(receipt: str) -> str:
    proof = TlogProof.parse(receipt.encode())
    assert proof.extra is not None
    forged = proof.extra.replace(b"Owner", b"Guest")
    return TlogProof(proof.index, proof.hashes, proof.checkpoint, forged).to_bytes().decode()


def _tamper_hash(receipt: str) -> str:
    lines = receipt.split("\n")
    position = next(i for i, line in enumerate(lines) if line.startswith("index ")) + 1
    node = bytearray(base64.b64decode(lines[position]))
    node[0] ^= 1
    lines[position] = base64.b64encode(bytes(node)).decode()
    return "\n".join(lines)


def _drop_extra(receipt: str) -> str:
    proof = TlogProof.parse(receipt.encode())
    return TlogProof(proof.index, proof.hashes, proof.checkpoint).to_bytes().decode()


@pytest.mark.parametrize(
    ("tamper", "event", "error"),
    [
        pytest.param(_tamper_extra, None, InclusionProofError, id="entry-changed"),
        pytest.param(_tamper_hash, EVENT, InclusionProofError, id="proof-hash-changed"),
        pytest.param(lambda r: r.replace("index ", "index 1", 1), EVENT, InclusionProofError,
                     id="index-changed"),
        pytest.param(lambda r: r, EVENT.replace(b"Owner", b"Guest"), EntryMismatch,
                     id="other-event"),
        pytest.param(_drop_extra, EVENT, FormatError, id="no-entry"),
        pytest.param(lambda r: "not a receipt", EVENT, FormatError, id="garbage"),
    ],
)
def test_tampered_receipt_fails(sealed: tuple[AuditsealClient, Delivery, str], live: LiveServer,
                                tamper: object, event: bytes | None,
                                error: type[Exception]) -> None:
    _, _, receipt = sealed
    assert callable(tamper)
    with pytest.raises(error):
        verify_receipt(tamper(receipt), event, live.vkey)


def test_receipt_under_another_key_fails(sealed: tuple[AuditsealClient, Delivery, str]) -> None:
    _, _, receipt = sealed
    _, other_vkey = generate_key("test.local/client")
    with pytest.raises(SignatureError):
        verify_receipt(receipt, EVENT, other_vkey)


def test_receipt_of_a_missing_entry_is_refused(
        sealed: tuple[AuditsealClient, Delivery, str]) -> None:
    client, _, _ = sealed
    with pytest.raises(FormatError, match="404"):
        client.receipt(10_000)


def test_logging_handler_seals_records(live: LiveServer) -> None:
    client = AuditsealClient(live.url, live.ingest_key, batch_max_age_s=0.05)
    handler = AuditLogHandler(client, close_client=True)
    logger = logging.getLogger("audit.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("user %s signed in", "alice", extra={"user": "alice", "ip": "10.0.0.1",
                                                          "when": object(), "level": "x"})
        try:
            int("boom")
        except ValueError:
            logger.exception("export failed")
        logger.debug("not sealed: below the level")
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    events = live.events()
    assert [e["message"] for e in events] == ["user alice signed in", "export failed"]
    first, second = events
    assert first["logger"] == "audit.test"
    assert first["level"] == "INFO"
    assert first["user"] == "alice"
    assert first["ip"] == "10.0.0.1"
    assert first["when"].startswith("<object object")  # not JSON: written with str()
    assert first["extra"] == {"level": "x"}  # never overwrites the handler's own fields
    assert first["time"].endswith("Z")
    assert first["source"]["function"] == "test_logging_handler_seals_records"
    assert second["level"] == "ERROR"
    assert "ValueError: invalid literal for int()" in second["exception"]


def test_handler_event_is_one_json_object() -> None:
    record = logging.LogRecord("audit", logging.WARNING, "app.py", 7, "x=%d", (5,), None)
    client = AuditsealClient("http://127.0.0.1:9", "k")
    try:
        event = AuditLogHandler(client).event(record)
    finally:
        client.close(timeout_s=0)
    assert orjson.loads(orjson.dumps(event))["message"] == "x=5"
    assert event["source"] == {"file": "app.py", "line": 7, "function": None}
