"""Tests of auditseal.core.proofs: generation and verification of RFC 9162 proofs.

Known answers come from tests/vectors/rfc6962_merkle.json, transcribed from
transparency-dev/merkle proof/verify_test.go (commit 02194e9a: inclusionProofs,
consistencyProofs, roots) and proof/proof_test.go (commit 02a3e202: the node ids each
proof is made of). The tampering probes mirror corruptInclusionProof and
corruptConsistencyProof in verify_test.go.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.core.hashing import EMPTY_ROOT, leaf_hash
from auditseal.core.merkle import root_from_leaf_hashes
from auditseal.core.proofs import (
    consistency_proof,
    inclusion_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from auditseal.errors import ConsistencyProofError, InclusionProofError
from tests.unit.merkle_helpers import TableReader, cheap_leaves

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "rfc6962_merkle.json").read_text()
)
LEAVES = [leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves_hex"]]
ROOTS = {int(k): bytes.fromhex(v) for k, v in VECTORS["roots"].items()}
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def hexes(values: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]




EIGHT = TableReader(LEAVES)

# --- known answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vec", VECTORS["inclusion_proofs"], ids=lambda v: f"index{v['index']}-size{v['size']}"
)
def test_inclusion_proof_vectors(vec: dict[str, Any]) -> None:
    index, size, want = vec["index"], vec["size"], hexes(vec["proof"])
    assert inclusion_proof(index, size, EIGHT) == want
    assert root_from_inclusion_proof(LEAVES[index], index, size, want) == ROOTS[size]
    verify_inclusion(LEAVES[index], index, size, want, ROOTS[size])


@pytest.mark.parametrize(
    "vec", VECTORS["consistency_proofs"], ids=lambda v: f"{v['old_size']}to{v['new_size']}"
)
def test_consistency_proof_vectors(vec: dict[str, Any]) -> None:
    old, new, want = vec["old_size"], vec["new_size"], hexes(vec["proof"])
    assert consistency_proof(old, new, EIGHT) == want
    verify_consistency(old, new, ROOTS[old], ROOTS[new], want)


@pytest.mark.parametrize(
    "vec", VECTORS["inclusion_node_ids"], ids=lambda v: f"index{v['index']}-size{v['size']}"
)
def test_inclusion_reads_exactly_the_reference_nodes(vec: dict[str, Any]) -> None:
    reader = TableReader(cheap_leaves(vec["size"]))
    inclusion_proof(vec["index"], vec["size"], reader)
    want = sorted(tuple(n) for n in vec["nodes"])
    assert [sorted(call) for call in reader.calls] == ([want] if want else [])  # one batch


@pytest.mark.parametrize(
    "vec", VECTORS["consistency_node_ids"], ids=lambda v: f"{v['old_size']}to{v['new_size']}"
)
def test_consistency_reads_exactly_the_reference_nodes(vec: dict[str, Any]) -> None:
    reader = TableReader(cheap_leaves(vec["new_size"]))
    consistency_proof(vec["old_size"], vec["new_size"], reader)
    assert len(reader.calls) == 1
    assert sorted(reader.calls[0]) == sorted(tuple(n) for n in vec["nodes"])


# --- verification failures (verify_test.go corruptInclusionProof) ----------------------------


def inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    probes = [
        ("index-1", index - 1, size, proof, root, leaf),
        ("index+1", index + 1, size, proof, root, leaf),
        ("index^2", index ^ 2, size, proof, root, leaf),
        ("size*2", index, size * 2, proof, root, leaf),
        ("size/2", index, size // 2, proof, root, leaf),
        ("index>=size", size, size, proof, root, leaf),
        ("wrong-leaf", index, size, proof, root, leaf_hash(b"WrongLeaf")),
        ("empty-root", index, size, proof, EMPTY_ROOT, leaf),
        ("random-root", index, size, proof, SOME_HASH, leaf),
        ("trailing-empty", index, size, [*proof, b""], root, leaf),
        ("trailing-root", index, size, [*proof, root], root, leaf),
        ("preceding-empty", index, size, [b"", *proof], root, leaf),
        ("preceding-root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((f"bit-flip-{i}", index, size, flipped, root, leaf))
    if proof:
        probes.append(("truncated", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append(("inserted", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf))
    return probes


INCLUSION_FAILURES = [
    pytest.param(*probe[1:], id=f"index{v['index']}-size{v['size']}-{probe[0]}")
    for v in VECTORS["inclusion_proofs"]
    for probe in inclusion_probes(
        v["index"], v["size"], hexes(v["proof"]), ROOTS[v["size"]], LEAVES[v["index"]]
    )
    if probe[1] >= 0 and probe[2] >= 0
]


@pytest.mark.parametrize(("index", "size", "proof", "root", "leaf"), INCLUSION_FAILURES)
def test_inclusion_rejects_tampering(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> None:
    with pytest.raises(InclusionProofError) as info:
        verify_inclusion(leaf, index, size, proof, root)
    assert info.value.where == f"entry {index}"


def test_inclusion_error_carries_the_evidence() -> None:
    proof = hexes(VECTORS["inclusion_proofs"][1]["proof"])
    with pytest.raises(InclusionProofError) as info:
        verify_inclusion(LEAVES[0], 0, 8, proof, SOME_HASH)
    err = info.value
    assert err.what == "proof does not lead to root"
    assert err.detail == f"expected root {SOME_HASH.hex()}, proof leads to {ROOTS[8].hex()}"
    assert err.evidence["found"] == ROOTS[8].hex()
    assert str(err).startswith("entry 0: proof does not lead to root: expected root ")


@pytest.mark.parametrize(
    ("index", "size", "leaf", "proof", "what"),
    [
        (0, 0, SOME_HASH, [], "index outside tree"),
        (1, 0, SOME_HASH, [], "index outside tree"),
        (2, 1, SOME_HASH, [], "index outside tree"),
        (-1, 4, SOME_HASH, [], "index outside tree"),
        (0, 1, b"", [], "malformed proof"),
        (0, 2, SOME_HASH, [b"short"], "malformed proof"),
        (0, 2, SOME_HASH, [SOME_HASH, SOME_HASH], "proof too long"),
        (0, 4, SOME_HASH, [SOME_HASH], "proof too short"),
    ],
    ids=["0-of-0", "1-of-0", "2-of-1", "negative", "short-leaf", "short-hash", "long", "short"],
)
def test_root_from_inclusion_proof_rejects(
    index: int, size: int, leaf: bytes, proof: list[bytes], what: str
) -> None:
    with pytest.raises(InclusionProofError) as info:
        root_from_inclusion_proof(leaf, index, size, proof)
    assert info.value.what == what


# --- consistency failures (verify_test.go corruptConsistencyProof, TestVerifyConsistency) ----


def consistency_probes(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    probes = [
        ("old-1", old - 1, new, r1, r2, proof),
        ("old+1", old + 1, new, r1, r2, proof),
        ("old^2", old ^ 2, new, r1, r2, proof),
        ("new*2", old, new * 2, r1, r2, proof),
        ("new/2", old, new // 2, r1, r2, proof),
        ("wrong-old-root", old, new, SOME_HASH, r2, proof),
        ("wrong-new-root", old, new, r1, SOME_HASH, proof),
        ("swapped-roots", old, new, r2, r1, proof),
        ("empty-proof", old, new, r1, r2, []),
        ("trailing-empty", old, new, r1, r2, [*proof, b""]),
        ("trailing-root1", old, new, r1, r2, [*proof, r1]),
        ("trailing-root2", old, new, r1, r2, [*proof, r2]),
        ("preceding-empty", old, new, r1, r2, [b"", *proof]),
        ("preceding-root1", old, new, r1, r2, [r1, *proof]),
        ("preceding-root2", old, new, r1, r2, [r2, *proof]),
        ("preceding-proof0", old, new, r1, r2, [proof[0], *proof]),
        ("truncated", old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((f"bit-flip-{i}", old, new, r1, r2, flipped))
    return probes


CONSISTENCY_FAILURES = [
    pytest.param(*probe[1:], id=f"{v['old_size']}to{v['new_size']}-{probe[0]}")
    for v in VECTORS["consistency_proofs"]
    if v["proof"]
    for probe in consistency_probes(
        v["old_size"],
        v["new_size"],
        ROOTS[v["old_size"]],
        ROOTS[v["new_size"]],
        hexes(v["proof"]),
    )
]


@pytest.mark.parametrize(("old", "new", "r1", "r2", "proof"), CONSISTENCY_FAILURES)
def test_consistency_rejects_tampering(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ConsistencyProofError) as info:
        verify_consistency(old, new, r1, r2, proof)
    assert info.value.where == f"sizes {old}->{new}"


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2", "proof", "what"),
    [
        (1, 0, ROOTS[1], EMPTY_ROOT, [], "tree shrank"),
        (2, 1, ROOTS[2], ROOTS[1], [], "tree shrank"),
        (0, 0, SOME_HASH, SOME_HASH, [], "old root mismatch"),
        (0, 1, SOME_HASH, ROOTS[1], [], "old root mismatch"),
        (1, 1, ROOTS[1], ROOTS[2], [], "old root mismatch"),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], "proof too long"),
        (1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT], "proof too long"),
        (1, 2, ROOTS[1], ROOTS[2], [], "proof too short"),
        (1, 2, ROOTS[1], ROOTS[2], [b"x"], "malformed proof"),
        (3, 8, ROOTS[3], ROOTS[8], [ROOTS[3]], "proof too short"),
    ],
    ids=[
        "1to0",
        "2to1",
        "0to0-not-empty-root",
        "0to1-not-empty-root",
        "same-size-forked",
        "0to0-extra-hash",
        "1to1-extra-hash",
        "1to2-empty",
        "1to2-short-hash",
        "3to8-short",
    ],
)
def test_consistency_rejects_edge_cases(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes], what: str
) -> None:
    with pytest.raises(ConsistencyProofError) as info:
        verify_consistency(old, new, r1, r2, proof)
    assert info.value.what == what


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2"),
    [(0, 0, EMPTY_ROOT, EMPTY_ROOT), (0, 5, EMPTY_ROOT, ROOTS[5]), (4, 4, ROOTS[4], ROOTS[4])],
    ids=["0to0", "0to5", "4to4"],
)
def test_consistency_trivial_cases_accept_empty_proof(
    old: int, new: int, r1: bytes, r2: bytes
) -> None:
    verify_consistency(old, new, r1, r2, [])
    assert consistency_proof(old, new, EIGHT) == []


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: inclusion_proof(8, 8, EIGHT), "not in a tree of size 8"),
        (lambda: inclusion_proof(-1, 8, EIGHT), "not in a tree of size 8"),
        (lambda: consistency_proof(5, 4, EIGHT), "from size 5 to size 4"),
        (lambda: consistency_proof(-1, 4, EIGHT), "from size -1 to size 4"),
        (lambda: inclusion_proof(0, 8, lambda nodes: []), "returned 0 hashes for 3 nodes"),
    ],
    ids=["index-eq-size", "negative-index", "shrink", "negative-size", "short-reader"],
)
def test_generation_rejects_bad_arguments(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# --- properties ------------------------------------------------------------------------------

LEAVES_300 = cheap_leaves(300)
TABLE_300 = TableReader(LEAVES_300)
ROOTS_300 = [root_from_leaf_hashes(LEAVES_300[:n]) for n in range(301)]


def flip(proof: list[bytes], i: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ 1]) + out[i][1:]
    return out


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_generated_inclusion_proofs_verify_and_tampering_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    TABLE_300.calls.clear()
    proof = inclusion_proof(index, size, TABLE_300)
    assert len(TABLE_300.calls) <= 1
    assert sum(map(len, TABLE_300.calls)) <= 2 * size.bit_length()
    verify_inclusion(LEAVES_300[index], index, size, proof, ROOTS_300[size])
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="flipped")
        with pytest.raises(InclusionProofError):
            verify_inclusion(LEAVES_300[index], index, size, flip(proof, i), ROOTS_300[size])
        with pytest.raises(InclusionProofError):
            verify_inclusion(LEAVES_300[index], index, size, proof[:-1], ROOTS_300[size])
    other = data.draw(st.integers(0, size - 1), label="other")
    if LEAVES_300[other] != LEAVES_300[index]:
        with pytest.raises(InclusionProofError):
            verify_inclusion(LEAVES_300[other], index, size, proof, ROOTS_300[size])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_generated_consistency_proofs_verify_and_tampering_fails(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, 300), label="new")
    old = data.draw(st.integers(1, new), label="old")
    TABLE_300.calls.clear()
    proof = consistency_proof(old, new, TABLE_300)
    assert len(TABLE_300.calls) <= 1
    assert sum(map(len, TABLE_300.calls)) <= 2 * new.bit_length()
    verify_consistency(old, new, ROOTS_300[old], ROOTS_300[new], proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="flipped")
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, new, ROOTS_300[old], ROOTS_300[new], flip(proof, i))
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, new, ROOTS_300[old], ROOTS_300[new], proof[:-1])
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, new, ROOTS_300[old], ROOTS_300[new], [*proof, proof[0]])
        # A fork: the last leaf of the old tree is rewritten in the new one.
        forked = [*LEAVES_300[: old - 1], leaf_hash(b"forked"), *LEAVES_300[old:new]]
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, new, ROOTS_300[old], root_from_leaf_hashes(forked), proof)
