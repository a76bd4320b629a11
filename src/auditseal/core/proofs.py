"""Inclusion and consistency proofs of the log's Merkle tree (RFC 9162 section 2.1.3-2.1.4).

Generation (:func:`inclusion_proof`, :func:`consistency_proof`) follows the recursive PATH
and SUBPROOF definitions of RFC 9162 sections 2.1.3.1 and 2.1.4.1, unrolled into loops
that first work out which leaf ranges the proof needs, then fetch the roots of their
perfect subtrees in a single :data:`~auditseal.core.merkle.NodeReader` batch (each call
may hit storage), and only then hash. A range on the right edge of the tree is not a
perfect subtree; its hash is folded from the perfect subtrees that compose it.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) is the algorithm of
RFC 9162 sections 2.1.3.2 and 2.1.4.2, and raises an
:class:`~auditseal.errors.IntegrityError` subclass that carries the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditseal.core.hashing import EMPTY_ROOT, HASH_SIZE, node_hash
from auditseal.core.merkle import NodeReader, fold_right, perfect_subtrees
from auditseal.errors import ConsistencyProofError, InclusionProofError

_Range = tuple[int, int]


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[_Range]:
    """Leaf ranges whose hashes form PATH(index, D[0:size]), bottom (leaf sibling) first."""
    ranges: list[_Range] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
    ranges.reverse()  # the recursion emits the deepest sibling first
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[_Range]:
    """Leaf ranges whose hashes form PROOF(old_size, D[0:new_size]), deepest first."""
    ranges: list[_Range] = []
    start, end, whole_old_tree = 0, new_size, True
    while True:
        m, n = old_size - start, end - start
        if m == n:
            # SUBPROOF(m, D[m], true) is empty: the verifier already knows the old root.
            if not whole_old_tree:
                ranges.append((start, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            whole_old_tree = False
    ranges.reverse()
    return ranges


def _range_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees covering [start, end); most proof ranges are one aligned node."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:  # fast path: skips the general decomposition
        return [(n.bit_length() - 1, start // n)]
    return perfect_subtrees(start, end)


def _hash_ranges(ranges: Sequence[_Range], read_nodes: NodeReader) -> list[bytes]:
    """Hash each leaf range from its perfect subtrees, fetched in one batch."""
    per_range = [_range_nodes(start, end) for start, end in ranges]
    wanted = list(dict.fromkeys(node for nodes in per_range for node in nodes))
    if not wanted:  # a one-leaf tree's proof is empty: do not touch storage
        return []
    fetched = read_nodes(wanted)
    if len(fetched) != len(wanted):
        raise ValueError(f"node reader returned {len(fetched)} hashes for {len(wanted)} nodes")
    by_node = dict(zip(wanted, fetched, strict=True))
    return [
        by_node[nodes[0]] if len(nodes) == 1 else fold_right([by_node[node] for node in nodes])
        for nodes in per_range
    ]


def inclusion_proof(index: int, size: int, read_nodes: NodeReader) -> list[bytes]:
    """Return the inclusion proof PATH(index, D[size]) of RFC 9162 section 2.1.3.1.

    Args:
        index: leaf index, ``0 <= index < size``.
        size: tree size.
        read_nodes: source of node hashes; called once, for O(log size) nodes.

    Returns:
        The sibling hashes from the leaf up to the root (empty for a one-leaf tree).

    Raises:
        ValueError: ``index`` is not a leaf of the tree of ``size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return _hash_ranges(_inclusion_ranges(index, size), read_nodes)


def consistency_proof(old_size: int, new_size: int, read_nodes: NodeReader) -> list[bytes]:
    """Return the consistency proof PROOF(old_size, D[new_size]) of RFC 9162 2.1.4.1.

    Args:
        old_size: size of the earlier tree, ``0 <= old_size <= new_size``.
        new_size: size of the later tree.
        read_nodes: source of node hashes; called at most once, for O(log size) nodes.

    Returns:
        The proof hashes; empty when ``old_size`` is 0 or equals ``new_size`` (every tree
        extends the empty tree and itself).

    Raises:
        ValueError: the sizes are negative or out of order.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    return _hash_ranges(_consistency_ranges(old_size, new_size), read_nodes)


def _check_hash(value: bytes, name: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{name} is {len(value)} bytes, a SHA-256 hash is {HASH_SIZE}")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Compute the root an inclusion proof leads to (RFC 9162 section 2.1.3.2, steps 1-5).

    Args:
        leaf_hash: hash of the entry, ``leaf_hash(entry)``.
        index: the entry's leaf index.
        size: size of the tree the proof is for.
        proof: the proof hashes, bottom first.

    Raises:
        InclusionProofError: ``index >= size``, a hash is not 32 bytes, or the proof has
            the wrong length for ``index`` and ``size``.
    """
    where = f"entry {index}"
    if not 0 <= index < size:
        raise InclusionProofError(
            what="index outside tree", where=where, detail=f"tree size is {size}"
        )
    try:
        _check_hash(leaf_hash, "leaf hash")
        for i, p in enumerate(proof):
            _check_hash(p, f"proof hash {i}")
    except ValueError as exc:
        raise InclusionProofError(what="malformed proof", where=where, detail=str(exc)) from None
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise InclusionProofError(
                what="proof too long", where=where, detail=_length_detail(len(proof), size)
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:  # skip levels where our node has no right sibling
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InclusionProofError(
            what="proof too short", where=where, detail=_length_detail(len(proof), size)
        )
    return r


def _length_detail(got: int, size: int) -> str:
    return f"{got} hashes do not fit a tree of size {size}"


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows the leaf at ``index`` is in the tree with ``root``.

    Raises:
        InclusionProofError: the proof is malformed or does not lead to ``root``; the
            error names the entry and carries both roots as evidence.
    """
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise InclusionProofError(
            what="proof does not lead to root",
            where=f"entry {index}",
            detail=f"expected root {root.hex()}, proof leads to {computed.hex()}",
            evidence={"tree_size": str(size), "expected": root.hex(), "found": computed.hex()},
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``new_root`` of ``new_size`` extends ``old_root`` of ``old_size``.

    RFC 9162 section 2.1.4.2. Two cases the RFC leaves to the caller are decided here:
    equal sizes need an empty proof and equal roots, and size 0 needs an empty proof and
    ``old_root == EMPTY_ROOT`` (any tree extends the empty tree).

    Raises:
        ConsistencyProofError: the sizes are out of order, the proof is malformed, or it
            does not lead to both roots. ``what`` says which; ``evidence`` holds the roots.
    """
    where = f"sizes {old_size}->{new_size}"

    def fail(what: str, detail: str = "") -> ConsistencyProofError:
        return ConsistencyProofError(
            what=what,
            where=where,
            detail=detail,
            evidence={"old_root": old_root.hex(), "new_root": new_root.hex()},
        )

    if not 0 <= old_size <= new_size:
        raise fail("tree shrank", f"size {new_size} cannot extend size {old_size}")
    if old_size in (0, new_size):
        if proof:
            raise fail("proof too long", f"expected no hashes, got {len(proof)}")
        expected = EMPTY_ROOT if old_size == 0 else new_root
        if old_root != expected:
            raise fail("old root mismatch", f"expected {expected.hex()}, got {old_root.hex()}")
        return
    if not proof:
        raise fail("proof too short", "a proof between different sizes cannot be empty")
    try:
        for i, p in enumerate(proof):
            _check_hash(p, f"proof hash {i}")
    except ValueError as exc:
        raise fail("malformed proof", str(exc)) from None

    # Steps 2-7 of RFC 9162 section 2.1.4.2.
    hashes = list(proof)
    if old_size & (old_size - 1) == 0:  # old tree is a perfect subtree: its root comes first
        hashes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise fail("proof too long", f"{len(proof)} hashes are more than the sizes need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise fail("proof too short", f"{len(proof)} hashes are fewer than the sizes need")
    if fr != old_root:
        raise fail("old root mismatch", f"expected {old_root.hex()}, proof leads to {fr.hex()}")
    if sr != new_root:
        raise fail("new root mismatch", f"expected {new_root.hex()}, proof leads to {sr.hex()}")
