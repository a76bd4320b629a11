"""Tests of auditseal.core.tlogproof: the C2SP tlog-proof format and its verification.

A 5-leaf tree is built by hand below from hashing.leaf_hash / node_hash (RFC 9162
section 2.1.1), so its proofs do not depend on the code under test.

A real proof from the Go checksum database (sum.golang.org) that
github.com/transparency-dev/tessera v1.0.0 is entry 43930254, transcribed byte for byte
from transparency-dev/incubator, cmd/tlog-verify/testdata/
go.sum-database-tree-43930254.tlog-proof and .raw (commit
f33a1190445c1be7c8b9a2c133a39759835e521d), into tests/vectors/go_sumdb_43930254.*.
Its README gives the leaf hash 0fa57c511c3b2ffc...96f2ab1, checked below.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from auditseal.core.checkpoint import Checkpoint, sign_checkpoint
from auditseal.core.hashing import leaf_hash, node_hash
from auditseal.core.notekeys import NoteSigner, NoteVerifier
from auditseal.core.tlogproof import MAX_PROOF_HASHES, TlogProof, verify_tlog_proof
from auditseal.errors import FormatError, InclusionProofError, SignatureError

VECTORS = Path(__file__).parents[1] / "vectors"

# --- a 5-leaf tree, by hand ------------------------------------------------------------------
#
#            root
#           /    \
#        h0123    l4
#        /   \
#     h01    h23
#     / \    / \
#    l0 l1  l2 l3
ENTRIES = [f"event {i}\n".encode() for i in range(5)]
L = [leaf_hash(e) for e in ENTRIES]
H01, H23 = node_hash(L[0], L[1]), node_hash(L[2], L[3])
H0123 = node_hash(H01, H23)
ROOT = node_hash(H0123, L[4])
PROOFS = {
    0: (L[1], H23, L[4]),
    1: (L[0], H23, L[4]),
    2: (L[3], H01, L[4]),
    3: (L[2], H01, L[4]),
    4: (H0123,),
}

ORIGIN = "example.com/log"
LOG = NoteSigner.from_seed(ORIGIN, b"\x07" * 32)
LOG_KEY = NoteVerifier.from_vkey(LOG.vkey)
ATTACKER = NoteSigner.from_seed(ORIGIN, b"\x08" * 32)  # same name, different key
SIGNED = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), [LOG])


def proof_for(index: int, extra: bytes | None = None) -> TlogProof:
    return TlogProof(index, PROOFS[index], SIGNED, extra)


# --- codec -------------------------------------------------------------------------------


def test_encoding_matches_the_spec_layout() -> None:
    proof = TlogProof(4, (H0123,), SIGNED, extra=b"age-v1.2.1")
    expected = (
        b"c2sp.org/tlog-proof@v1\n"
        b"extra " + base64.b64encode(b"age-v1.2.1") + b"\n"
        b"index 4\n" + base64.b64encode(H0123) + b"\n"
        b"\n" + SIGNED
    )
    assert proof.to_bytes() == expected


@pytest.mark.parametrize(
    "proof",
    [proof_for(i) for i in range(5)]
    + [
        proof_for(0, extra=b"\x00opaque\xff"),
        proof_for(4, extra=b""),
        TlogProof(0, (), sign_checkpoint(Checkpoint(ORIGIN, 1, L[0]), [LOG])),
    ],
    ids=[f"index-{i}" for i in range(5)] + ["extra", "empty-extra", "no-hashes"],
)
def test_round_trip(proof: TlogProof) -> None:
    data = proof.to_bytes()
    assert TlogProof.parse(data) == proof
    assert TlogProof.parse(data).to_bytes() == data


GOOD = proof_for(2).to_bytes()
HEAD, _, CHECKPOINT = GOOD.partition(b"\n\n")
H = [base64.b64encode(h) for h in PROOFS[2]]

BAD_PROOFS = {
    "wrong-header": GOOD.replace(b"tlog-proof@v1", b"tlog-proof@v2", 1),
    "header-only": b"c2sp.org/tlog-proof@v1\n\n" + CHECKPOINT,
    "extra-bad-base64": GOOD.replace(b"\nindex", b"\nextra no!\nindex", 1),
    "extra-after-index": GOOD.replace(b"index 2\n", b"index 2\nextra AAAA\n", 1),
    "missing-index": GOOD.replace(b"index 2\n", b"", 1),
    "index-leading-zero": GOOD.replace(b"index 2\n", b"index 02\n", 1),
    "index-negative": GOOD.replace(b"index 2\n", b"index -2\n", 1),
    "index-not-number": GOOD.replace(b"index 2\n", b"index two\n", 1),
    "index-no-space": GOOD.replace(b"index 2\n", b"index2\n", 1),
    "hash-bad-base64": GOOD.replace(H[1], b"!" + H[1][1:], 1),
    "hash-31-bytes": GOOD.replace(H[1], base64.b64encode(PROOFS[2][1][:31]), 1),
    "hash-33-bytes": GOOD.replace(H[1], base64.b64encode(PROOFS[2][1] + b"x"), 1),
    "too-many-hashes": HEAD + (b"\n" + H[0]) * (MAX_PROOF_HASHES + 1) + b"\n\n" + CHECKPOINT,
    "no-blank-line": HEAD + b"\n",
    "no-checkpoint": HEAD + b"\n\n",
    "checkpoint-not-a-note": HEAD + b"\n\nexample.com/log\n5\n",
    "checkpoint-bad-size": HEAD + b"\n\n" + CHECKPOINT.replace(b"\n5\n", b"\n05\n", 1),
    "non-ascii-header": GOOD.replace(b"index 2", b"index \xd9\xa3", 1),
}


@pytest.mark.parametrize("data", BAD_PROOFS.values(), ids=BAD_PROOFS.keys())
def test_parse_rejects(data: bytes) -> None:
    with pytest.raises(FormatError):
        TlogProof.parse(data)


@pytest.mark.parametrize(
    "proof",
    [TlogProof(-1, (), SIGNED), TlogProof(0, (b"short",), SIGNED)],
    ids=["negative-index", "short-hash"],
)
def test_to_bytes_rejects(proof: TlogProof) -> None:
    with pytest.raises(FormatError):
        proof.to_bytes()


# --- verification --------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(5))
def test_every_leaf_of_the_hand_built_tree_verifies(index: int) -> None:
    proof = TlogProof.parse(proof_for(index).to_bytes())
    verified = verify_tlog_proof(proof, ENTRIES[index], [LOG_KEY], origin=ORIGIN)
    assert (verified.size, verified.root_hash, verified.origin) == (5, ROOT, ORIGIN)
    assert verified.note_bytes == SIGNED


def test_extra_is_ignored_by_verification() -> None:
    for extra in (None, b"", b"anything at all"):
        assert verify_tlog_proof(proof_for(3, extra), ENTRIES[3], [LOG_KEY]).size == 5


@pytest.mark.parametrize(
    ("proof", "entry", "what"),
    [
        (proof_for(2), b"event 2 (edited)\n", "proof does not lead to root"),
        (proof_for(2), ENTRIES[3], "proof does not lead to root"),
        (TlogProof(2, PROOFS[3], SIGNED), ENTRIES[2], "proof does not lead to root"),
        (TlogProof(3, PROOFS[2], SIGNED), ENTRIES[2], "proof does not lead to root"),
        (TlogProof(2, (L[3], H23, L[4]), SIGNED), ENTRIES[2], "proof does not lead to root"),
        (TlogProof(2, PROOFS[2][:2], SIGNED), ENTRIES[2], "proof too short"),
        (TlogProof(2, (*PROOFS[2], L[0]), SIGNED), ENTRIES[2], "proof too long"),
        (TlogProof(5, PROOFS[4], SIGNED), ENTRIES[4], "index beyond tree size"),
    ],
    ids=[
        "edited-entry",
        "other-entry",
        "other-proof",
        "wrong-index",
        "tampered-hash",
        "short-proof",
        "long-proof",
        "index-past-end",
    ],
)
def test_inclusion_failures(proof: TlogProof, entry: bytes, what: str) -> None:
    with pytest.raises(InclusionProofError) as caught:
        verify_tlog_proof(proof, entry, [LOG_KEY])
    assert caught.value.what == what
    assert caught.value.where == f"entry {proof.index}"


def test_checkpoint_by_unknown_key() -> None:
    forged = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), [ATTACKER])
    with pytest.raises(SignatureError, match="signed by unknown key"):
        verify_tlog_proof(TlogProof(2, PROOFS[2], forged), ENTRIES[2], [LOG_KEY])


def test_checkpoint_with_tampered_root() -> None:
    other_root = base64.b64encode(H0123)
    tampered = SIGNED.replace(base64.b64encode(ROOT), other_root, 1)
    with pytest.raises(SignatureError, match="invalid signature"):
        verify_tlog_proof(TlogProof(4, (), tampered), ENTRIES[4], [LOG_KEY])


def test_checkpoint_of_another_log() -> None:
    with pytest.raises(SignatureError, match="wrong origin"):
        verify_tlog_proof(proof_for(1), ENTRIES[1], [LOG_KEY], origin="example.com/other")


# --- the real Go checksum database -----------------------------------------------------------

SUMDB = NoteVerifier.from_vkey(
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
)
SUMDB_PROOF = (VECTORS / "go_sumdb_43930254.tlog-proof").read_bytes()
SUMDB_ENTRY = (VECTORS / "go_sumdb_43930254.raw").read_bytes()


def test_real_sumdb_proof_round_trips_byte_for_byte() -> None:
    proof = TlogProof.parse(SUMDB_PROOF)
    assert (proof.index, len(proof.hashes), proof.extra) == (43930254, 26, None)
    assert proof.to_bytes() == SUMDB_PROOF


def test_real_sumdb_proof_verifies() -> None:
    assert leaf_hash(SUMDB_ENTRY).hex() == (
        "0fa57c511c3b2ffcc0a05ad63172568d265aaf9844e9b636a0978795396f2ab1"
    )
    verified = verify_tlog_proof(
        TlogProof.parse(SUMDB_PROOF), SUMDB_ENTRY, [SUMDB], origin="go.sum database tree"
    )
    assert verified.size == 58253265
    assert verified.root_hash == base64.b64decode("lIyLAEe4zJUQAda6pFFg3yPOf7j1SgfMEDrpgoX39JU=")
    assert verified.verified_by == ("sum.golang.org",)


def test_real_sumdb_proof_rejects_another_entry() -> None:
    other = SUMDB_ENTRY.replace(b"v1.0.0 h1:4OT1", b"v1.0.0 h1:4OT2")
    with pytest.raises(InclusionProofError, match="proof does not lead to root"):
        verify_tlog_proof(TlogProof.parse(SUMDB_PROOF), other, [SUMDB])
