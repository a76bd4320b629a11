"""Known-answer tests of the browser verifier (src/auditseal/web/verify.js) in headless Chromium.

verify.js re-implements auditseal.core's checks on Web Crypto; these tests hold it to the
same answers:

- RFC 6962 / RFC 9162 Merkle vectors: tests/vectors/rfc6962_merkle.json (transcribed from
  transparency-dev/merkle; provenance inside the file).
- A real Go checksum database checkpoint, signed by sum.golang.org and cosigned by two
  witness keys the verifier must ignore: tests/vectors/go_sumdb_checkpoint_15081221.txt
  (provenance in tests/unit/test_checkpoint.py); the key is Go's built-in one, golang/go
  src/cmd/go/internal/modfetch/key.go (commit c674ce87c2e47699bb51e02885fb80519ecbfb27).
- Checkpoints and proofs made by auditseal.core itself, and tampered variants that must fail.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from auditseal.core.checkpoint import Checkpoint, sign_checkpoint
from auditseal.core.entry import EntryHeader, encode_entry
from auditseal.core.hashing import leaf_hash
from auditseal.core.note import sign_note
from auditseal.core.notekeys import NoteSigner
from auditseal.core.proofs import inclusion_proof, root_from_inclusion_proof
from auditseal.core.tiles import bundle_path, encode_bundle
from tests.web.browser import WEB_ROOT, chromium

VECTORS = Path(__file__).parents[1] / "vectors"
MERKLE = json.loads((VECTORS / "rfc6962_merkle.json").read_text())
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (VECTORS / "go_sumdb_checkpoint_15081221.txt").read_text()
LOG = NoteSigner.from_seed("example.com/audit", b"\x01" * 32)
OTHER = NoteSigner.from_seed("example.com/audit", b"\x02" * 32)  # same name, other key


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No request log in test output."""


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    """A page on a static server of src/auditseal/web/ (module imports need http)."""
    handler = functools.partial(_Quiet, directory=str(WEB_ROOT))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chromium() as browser:
            tab = browser.new_page()
            tab.goto(f"http://127.0.0.1:{server.server_address[1]}/verify.js")
            yield tab
    finally:
        server.shutdown()
        server.server_close()


def js(page: Page, body: str, arg: object = None) -> Any:
    """Run ``body`` (an async function body with ``V`` = verify.js and ``a`` = arg).

    Returns its value, or ``{"error": message}`` when it throws a VerifyError.
    """
    return page.evaluate(
        "async (a) => { const V = await import('/verify.js');"
        " try { return await (async () => {" + body + "})(); }"
        " catch (e) { if (e instanceof V.VerifyError) return {error: e.message}; throw e; } }",
        arg,
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- RFC 6962 Merkle vectors -------------------------------------------------------------


def test_leaf_hashes_match_rfc6962_vectors(page: Page) -> None:
    got = js(
        page,
        "return Promise.all(a.map(async (x) => V.bytesToHex(await V.leafHash(V.hexToBytes(x)))));",
        MERKLE["leaves_hex"],
    )
    assert got == MERKLE["node_hashes"][0]


INCLUSION = MERKLE["inclusion_proofs"]


@pytest.mark.parametrize(
    "case", INCLUSION, ids=[f"leaf{c['index']}-size{c['size']}" for c in INCLUSION]
)
def test_inclusion_proof_vectors_lead_to_rfc6962_roots(page: Page, case: dict[str, Any]) -> None:
    root = js(
        page,
        """
        const leaf = await V.leafHash(V.hexToBytes(a.leaf));
        const r = await V.rootFromInclusionProof(leaf, a.index, a.size, a.proof.map(V.hexToBytes));
        return V.bytesToHex(r);""",
        {**case, "leaf": MERKLE["leaves_hex"][case["index"]]},
    )
    assert root == MERKLE["roots"][str(case["size"])]


TAMPERED = [
    (
        "flipped-proof-byte",
        lambda c: {**c, "proof": [("ff" + c["proof"][0][2:]), *c["proof"][1:]]},
        None,
    ),
    ("other-index", lambda c: {**c, "index": c["index"] ^ 1}, None),
    ("proof-too-short", lambda c: {**c, "proof": c["proof"][:-1]}, "proof too short"),
    ("proof-too-long", lambda c: {**c, "proof": [*c["proof"], c["proof"][0]]}, "proof too long"),
    ("index-outside-tree", lambda c: {**c, "index": c["size"]}, "outside a tree"),
    ("short-hash", lambda c: {**c, "proof": [c["proof"][0][:62], *c["proof"][1:]]}, "31 bytes"),
]


@pytest.mark.parametrize(("name", "change", "error"), TAMPERED, ids=[t[0] for t in TAMPERED])
def test_tampered_inclusion_proofs_fail(
    page: Page, name: str, change: Any, error: str | None
) -> None:
    case = next(c for c in INCLUSION if c["index"] == 5 and c["size"] == 8)
    bad = change({**case, "leaf": MERKLE["leaves_hex"][5]})
    got = js(
        page,
        """
        const leaf = await V.leafHash(V.hexToBytes(a.leaf));
        const proof = a.proof.map(V.hexToBytes);
        return V.bytesToHex(await V.rootFromInclusionProof(leaf, a.index, a.size, proof));""",
        bad,
    )
    if error is None:
        assert got != MERKLE["roots"]["8"], "a tampered proof still led to the root"
    else:
        assert error in got["error"]


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 2**40 + 1), (2**52 + 3, 2**53 + 5), (2**62, 2**63 - 1)],
    ids=["2^40", "2^53", "2^63-1"],
)
def test_large_trees_match_python(page: Page, index: int, size: int) -> None:
    """Indexes past 2**32 and 2**53: JS Number bit operators would silently truncate."""

    def nodes(wanted: Sequence[tuple[int, int]]) -> list[bytes]:
        return [hashlib.sha256(f"{level}/{i}".encode()).digest() for level, i in wanted]

    leaf = hashlib.sha256(b"leaf").digest()
    proof = inclusion_proof(index, size, nodes)
    expected = root_from_inclusion_proof(leaf, index, size, proof)
    got = js(
        page,
        """const [leaf, proof] = [V.hexToBytes(a.leaf), a.proof.map(V.hexToBytes)];
        const root = await V.rootFromInclusionProof(leaf, BigInt(a.index), BigInt(a.size), proof);
        return V.bytesToHex(root);""",
        {
            "leaf": leaf.hex(),
            "index": str(index),
            "size": str(size),
            "proof": [p.hex() for p in proof],
        },
    )
    assert got == expected.hex()


# --- signed notes, keys, checkpoints ---------------------------------------------------------


def test_go_sumdb_checkpoint_verifies_and_witness_signatures_are_ignored(page: Page) -> None:
    got = js(
        page,
        """
        const key = await V.parseVerifierKey(a.vkey);
        const note = V.parseNote(a.note);
        const sig = await V.verifyNoteSignature(note, key);
        const cp = V.parseCheckpoint(note.text);
        return {id: V.formatKeyId(key.keyId), sigs: note.signatures.length, by: sig.name,
                origin: cp.origin, size: cp.size.toString(), root: V.bytesToB64(cp.rootHash)};""",
        {"vkey": SUMDB_VKEY, "note": SUMDB_NOTE},
    )
    assert got == {
        "id": "033de0ae",
        "sigs": 3,
        "by": "sum.golang.org",
        "origin": "go.sum database tree",
        "size": "15081221",
        "root": "BoMMe1wd25Tco0mYGROkyqxHZWx+hcSCtMV315Lu6Lg=",
    }


def test_key_id_matches_auditseal_core(page: Page) -> None:
    got = js(
        page, "const k = await V.parseVerifierKey(a); return V.formatKeyId(k.keyId);", LOG.vkey
    )
    assert got == f"{LOG.key_id:08x}"


def _signed(size: int = 5, root: bytes = bytes(range(32)), signer: NoteSigner = LOG) -> str:
    return sign_checkpoint(Checkpoint(LOG.name, size, root), [signer]).decode()


def _swap_sig_byte(note: str) -> str:
    text, _, line = note.rpartition("\u2014 ")
    name, raw64 = line.strip().split(" ")
    raw = bytearray(base64.b64decode(raw64))
    raw[10] ^= 1
    return f"{text}\u2014 {name} {b64(bytes(raw))}\n"


def _sign_text(text: str) -> str:
    """Sign any text: a malformed checkpoint body with a valid signature."""
    return sign_note(text, [LOG]).decode()


_VKEY_PARTS = LOG.vkey.split("+")
NOTE_CASES = [
    ("auditseal-checkpoint", LOG.vkey, _signed(), None),
    (
        "text-changed-after-signing",
        LOG.vkey,
        _signed().replace("\n5\n", "\n6\n"),
        "does not verify",
    ),
    ("signature-byte-flipped", LOG.vkey, _swap_sig_byte(_signed()), "does not verify"),
    (
        "signed-by-other-key-same-name",
        LOG.vkey,
        _signed(signer=OTHER),
        "not signed by the pinned key",
    ),
    (
        "pinned-key-id-wrong",
        "+".join([_VKEY_PARTS[0], "00000000", _VKEY_PARTS[2]]),
        _signed(),
        "does not match the key",
    ),
    (
        "pinned-key-not-ed25519",
        "+".join([*_VKEY_PARTS[:2], b64(b"\x02" + b"\x00" * 32)]),
        _signed(),
        "not an Ed25519 key",
    ),
    ("pinned-key-two-parts", "name+AQ==", _signed(), "must be <name>+<key id>+<key data>"),
    ("no-blank-line", LOG.vkey, _signed().replace("\n\n", "\n"), "no blank line"),
    (
        "control-character",
        LOG.vkey,
        _signed().replace("example", "exa\tmple", 1),
        "control character",
    ),
    ("signature-not-em-dash", LOG.vkey, _signed().replace("\u2014 ", "- "), "em dash"),
    ("signature-bad-base64", LOG.vkey, _signed().rstrip("\n") + "!\n", "not valid base64"),
    ("signature-too-short", LOG.vkey, _signed().rsplit(" ", 1)[0] + " AAAA\n", "too short"),
    ("checkpoint-two-lines", LOG.vkey, _sign_text("example.com/audit\n5\n"), "at least 3"),
]


@pytest.mark.parametrize(
    ("name", "vkey", "note", "error"), NOTE_CASES, ids=[c[0] for c in NOTE_CASES]
)
def test_checkpoint_signature_and_syntax(
    page: Page, name: str, vkey: str, note: str, error: str | None
) -> None:
    got = js(
        page,
        """
        const key = await V.parseVerifierKey(a.vkey);
        const note = V.parseNote(a.note);
        await V.verifyNoteSignature(note, key);
        const cp = V.parseCheckpoint(note.text);
        return {size: cp.size.toString(), root: V.bytesToHex(cp.rootHash)};""",
        {"vkey": vkey, "note": note},
    )
    if error is None:
        assert got == {"size": "5", "root": bytes(range(32)).hex()}
    else:
        assert "error" in got, f"{name} was accepted"
        assert error in got["error"]


CHECKPOINT_TEXT_CASES = [
    ("leading-zero-size", "o\n05\n" + b64(bytes(32)) + "\n", "canonical decimal"),
    ("size-too-large", f"o\n{2**63}\n" + b64(bytes(32)) + "\n", "canonical decimal"),
    ("root-31-bytes", "o\n5\n" + b64(bytes(31)) + "\n", "31 bytes"),
    ("empty-origin", "\n5\n" + b64(bytes(32)) + "\n", "origin is empty"),
    ("no-final-newline", "o\n5\n" + b64(bytes(32)), "newline"),
    ("empty-extension", "o\n5\n" + b64(bytes(32)) + "\n\nx\n", "empty extension"),
]


@pytest.mark.parametrize(
    ("name", "text", "error"), CHECKPOINT_TEXT_CASES, ids=[c[0] for c in CHECKPOINT_TEXT_CASES]
)
def test_checkpoint_text_rejections(page: Page, name: str, text: str, error: str) -> None:
    got = js(page, "V.parseCheckpoint(a); return {};", text)
    assert error in got.get("error", ""), f"{name} was accepted"


# --- entry bundles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "size"), [(0, 1), (5, 300), (256, 300), (255, 256), (1234567, 1234600)]
)
def test_bundle_paths_match_core(page: Page, index: int, size: int) -> None:
    bundle = index // 256
    expected = bundle_path(bundle, min(256, size - bundle * 256))
    assert js(page, "return V.bundlePathFor(a[0], a[1]);", [index, size]) == expected


def test_bundle_round_trip(page: Page) -> None:
    entries = [b"", b"a", b"x" * 300, bytes(range(256))]
    got = js(
        page,
        "return V.decodeBundle(V.hexToBytes(a)).map(V.bytesToHex);",
        encode_bundle(entries).hex(),
    )
    assert got == [e.hex() for e in entries]
    truncated = js(
        page, "return V.decodeBundle(V.hexToBytes(a));", encode_bundle(entries)[:-1].hex()
    )
    assert "truncated" in truncated["error"]


# --- the whole check on a real entry -----------------------------------------------------------

HEADER = EntryHeader(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), source="file:t.json").encode()


def _proof_input(index: int, *, size: int = 7, signer: NoteSigner = LOG) -> dict[str, Any]:
    events = [json.dumps({"n": i, "operationName": "x"}).encode() for i in range(size)]
    entries = [encode_entry(HEADER, e) for e in events]  # as auditseal's writer seals them
    leaves = [leaf_hash(e) for e in entries]

    def nodes(wanted: Sequence[tuple[int, int]]) -> list[bytes]:
        out = []
        for level, i in wanted:  # recompute each perfect subtree from its leaves
            out.append(_mth(leaves[i << level : (i + 1) << level]))
        return out

    root = _mth(leaves)
    return {
        "pinnedKey": LOG.vkey,
        "index": index,
        "entry": entries[index].hex(),
        "eventBytes": events[index].hex(),
        "claimedLeafHash": leaves[index].hex(),
        "treeSize": size,
        "proof": [b64(p) for p in inclusion_proof(index, size, nodes)],
        "checkpoint": sign_checkpoint(Checkpoint(LOG.name, size, root), [signer]).decode(),
        "_entries": [e.hex() for e in entries],
    }


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 MTH over leaf hashes, straight from the definition."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


VERIFY = """
    const eventBytes = a.eventBytes && V.hexToBytes(a.eventBytes);
    const input = {...a, entry: V.hexToBytes(a.entry), eventBytes};
    const r = await V.verifyEvent(input);
    const short = (title) => title.split(" ").slice(0, 2).join(" ");  // "Leaf hash", ...
    return {ok: r.ok, steps: r.steps.map((s) => [short(s.title), s.status, s.detail])};"""


def _other_entry(a: dict[str, Any]) -> dict[str, Any]:
    return {**a, "entry": a["_entries"][a["index"] ^ 1]}


def _other_key(a: dict[str, Any]) -> dict[str, Any]:
    return {**a, "checkpoint": _signed(size=a["treeSize"], signer=OTHER)}


VERIFY_CASES = [
    ("genuine", lambda a: a, None),
    (
        "entry-of-another-leaf",
        lambda a: {**_other_entry(a), "claimedLeafHash": None},
        "Entry holds",
    ),
    ("displayed-event-differs", lambda a: {**a, "eventBytes": b'{"n": 99}'.hex()}, "Entry holds"),
    ("server-claims-other-leaf-hash", lambda a: {**a, "claimedLeafHash": "00" * 32}, "Leaf hash"),
    (
        "proof-of-another-entry",
        lambda a: {**a, "proof": _proof_input(a["index"] ^ 1)["proof"]},
        "Inclusion proof",
    ),
    ("checkpoint-by-other-key", _other_key, "Checkpoint signature"),
    (
        "checkpoint-for-other-size",
        lambda a: {**a, "treeSize": 6, "proof": _proof_input(a["index"], size=6)["proof"]},
        "Checkpoint contents",
    ),
    ("nothing-pinned", lambda a: {**a, "pinnedKey": ""}, "Pinned verifier"),
]


@pytest.mark.parametrize(
    ("name", "change", "failing"), VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES]
)
def test_verify_event_step_by_step(page: Page, name: str, change: Any, failing: str | None) -> None:
    result = js(page, VERIFY, change(_proof_input(4)))
    statuses = {title: status for title, status, _ in result["steps"]}
    if failing is None:
        assert result["ok"], result
        assert set(statuses.values()) == {"ok"}
        assert len(statuses) == 6
    else:
        assert not result["ok"], f"{name} verified"
        failed = [title for title, status, _ in result["steps"] if status == "failed"]
        assert failed, result
        assert failed[0] == failing, result
