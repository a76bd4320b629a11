"""Reading the log over HTTP: tiles byte for byte, entries, proofs, receipts, history."""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from auditseal.api.keys import KeyStore
from auditseal.config import WriterConfig
from auditseal.core.checkpoint import verify_checkpoint
from auditseal.core.notekeys import NoteVerifier
from auditseal.core.proofs import verify_consistency, verify_inclusion
from tests.api.conftest import Api
from tests.conftest import activity_event, run_cli

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture(scope="module")
def filled(api: Api) -> Api:
    """The shared service with 300 events (one full bundle and a partial one)."""
    with api.client("ingest", **NDJSON) as client:
        body = b"\n".join(activity_event(i) for i in range(300))
        assert client.post("/v1/events", content=body).json()["accepted"] == 300
    api.wait_sealed()
    return api


def test_tiles_are_served_byte_identical_to_the_files(filled: Api) -> None:
    root = filled.log.root
    files = sorted(p for p in (root / "tile").rglob("*") if p.is_file())
    assert any(".p/" in str(p) for p in files)
    with filled.client("reader") as client:
        for path in files:
            key = path.relative_to(root).as_posix()
            answer = client.get(f"/log/{key}")
            assert answer.status_code == 200, key
            assert answer.content == path.read_bytes(), key
            assert answer.headers["content-type"] == "application/octet-stream"
            partial = ".p/" in key
            assert ("immutable" in answer.headers["cache-control"]) is not partial
        head = client.get("/log/checkpoint")
        assert head.headers["content-type"] == "text/plain; charset=utf-8"
        assert head.headers["cache-control"] == "no-cache"
        assert head.content == (root / "checkpoint").read_bytes()
        for bad in ("tile/../.auditseal/signing.key", "tile/0/999", "tile/x/000",
                    "tile/entries/000.p/0"):
            assert client.get(f"/log/{bad}").status_code == 404, bad


def test_inclusion_and_consistency_proofs_verify(filled: Api) -> None:
    verifier = NoteVerifier.from_vkey(filled.vkey)
    with filled.client("auditor") as client:
        inclusion = client.get("/v1/proofs/inclusion", params={"index": 257}).json()
        entry = client.get("/v1/entries/257").json()
        history = client.get("/v1/checkpoints", params={"limit": 50}).json()
        old = history[-1]["size"] if history[-1]["size"] else history[-2]["size"]
        consistency = client.get("/v1/proofs/consistency", params={"old": old}).json()
        text = client.get("/v1/proofs/inclusion", params={"index": 3, "format": "tlog-proof"})
        missing = client.get("/v1/proofs/inclusion", params={"index": 10**6})
    checkpoint = verify_checkpoint(inclusion["checkpoint"].encode(), [verifier])
    proof = [base64.b64decode(h) for h in inclusion["proof"]]
    assert inclusion["leaf_hash"] == entry["leaf_hash"]
    verify_inclusion(bytes.fromhex(inclusion["leaf_hash"]), 257, checkpoint.size, proof,
                     checkpoint.root_hash)
    assert [h["size"] for h in history] == sorted((h["size"] for h in history), reverse=True)
    newer = verify_checkpoint(consistency["new_checkpoint"].encode(), [verifier])
    older = verify_checkpoint(consistency["old_checkpoint"].encode(), [verifier])
    verify_consistency(older.size, newer.size, older.root_hash, newer.root_hash,
                       [base64.b64decode(h) for h in consistency["proof"]])
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text.startswith("c2sp.org/tlog-proof@v1\nextra ")
    assert missing.status_code == 404


def test_entry_document(filled: Api) -> None:
    with filled.client("ingest", **NDJSON) as client:
        index = client.post("/v1/events", content=activity_event(7)).json()["entries"][0]["index"]
    filled.wait_sealed()
    with filled.client("reader") as client:
        entry = client.get(f"/v1/entries/{index}").json()
        assert client.get("/v1/entries/999999").status_code == 404
    assert base64.b64decode(entry["event_b64"]) == activity_event(7)
    assert (entry["index"], entry["kind"]) == (index, "event")
    assert set(entry) == {"index", "leaf_hash", "received", "source", "kind", "event",
                          "event_b64"}


def test_receipt_is_202_until_sealed_then_a_tlog_proof_the_cli_accepts(
        make_server: Callable[..., AbstractContextManager[Api]], tmp_path: Path) -> None:
    slow = WriterConfig(fsync=False, set_immutable=False, publish_interval_s=3600)
    with make_server(writer=slow) as api:
        with api.client("ingest", **NDJSON) as client:
            index = client.post("/v1/events", content=activity_event(1)).json()[
                "entries"][0]["index"]
            waiting = client.get(f"/v1/receipts/{index}")
            assert waiting.status_code == 202
            assert waiting.json()["error"]["code"] == "not_yet_sealed"
            assert int(waiting.headers["Retry-After"]) >= 1
            assert client.get(f"/v1/receipts/{index + 5}").status_code == 404
            api.service.writer.publish()
            receipt = client.get(f"/v1/receipts/{index}")
        assert receipt.status_code == 200
        _, other = KeyStore(api.log.state).create("ingest", "other")
        with api.client(Authorization=f"Bearer {other}") as stranger:
            assert stranger.get(f"/v1/receipts/{index}").status_code == 403
        with api.client("auditor") as auditor:
            assert auditor.get(f"/v1/receipts/{index}").content == receipt.content
        with api.client("reader") as reader:
            assert reader.get(f"/v1/receipts/{index}").status_code == 403
    proof = tmp_path / "receipt.tlog-proof"
    proof.write_bytes(receipt.content)
    assert run_cli("proof", "verify", proof, "--key", api.vkey) == 0


def test_public_log_serves_tiles_without_a_key(
        make_server: Callable[..., AbstractContextManager[Api]]) -> None:
    with make_server(public_log=True) as api, api.client() as anonymous:
        assert anonymous.get("/log/checkpoint").status_code == 200
        assert anonymous.get("/v1/entries/0").status_code == 401
