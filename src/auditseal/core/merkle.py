"""The Merkle tree of the log: tree hashes, perfect subtrees and compact ranges.

Implements the Merkle Tree Hash MTH of RFC 9162 section 2.1.1 over leaf hashes, and the
"compact range" (a.k.a. Merkle frontier) that lets an appender keep the root of a growing
tree in O(log n) memory.

Vocabulary used across ``auditseal.core``: a *node* ``(level, index)`` is the root of the
perfect subtree covering leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds
the leaf hashes. Any range of leaves ``[start, end)`` splits uniquely into maximal aligned
perfect subtrees (:func:`perfect_subtrees`); the tree of size ``n`` is the right fold of the
perfect subtrees of ``[0, n)`` (RFC 9162's left-balanced tree), which is what
:class:`CompactRange` and :func:`tree_root` compute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from auditseal.core.hashing import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX, node_hash

NodeReader = Callable[[Sequence[tuple[int, int]]], Sequence[bytes]]
"""Given node ids ``(level, index)``, return their hashes in the same order.

Batched so that an implementation backed by storage can group its reads. Callers only
ask for nodes inside a complete perfect subtree of the tree they are working on.
"""

_sha256 = hashlib.sha256


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) for the given leaf hashes, as RFC 9162 section 2.1.1 defines it.

    This is the plain recursive definition (split at the largest power of two smaller than
    n), kept deliberately simple because tests use it as the oracle for everything else.

    Args:
        leaf_hashes: the leaf hashes ``leaf_hash(d)`` of the entries, in log order.

    Returns:
        The 32-byte root; :data:`EMPTY_ROOT` for no leaves.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def _mth(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    n = end - start
    if n == 1:
        return leaf_hashes[start]
    k = 1 << ((n - 1).bit_length() - 1)  # largest power of two < n
    return node_hash(_mth(leaf_hashes, start, start + k), _mth(leaf_hashes, start + k, end))


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """Split the leaf range ``[start, end)`` into maximal aligned perfect subtrees.

    Greedy from the left: each step takes the largest subtree that is aligned at ``start``
    and fits before ``end``. The result is the unique minimal decomposition; its sizes
    first grow then shrink.

    Args:
        start: first leaf of the range.
        end: one past the last leaf; ``start <= end``.

    Returns:
        Node ids ``(level, index)``, left to right; empty for an empty range.

    Raises:
        ValueError: ``start`` is negative or greater than ``end``.
    """
    if start < 0 or start > end:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    nodes: list[tuple[int, int]] = []
    while start < end:
        level = (end - start).bit_length() - 1  # largest subtree that fits ...
        if start:
            level = min(level, (start & -start).bit_length() - 1)  # ... and is aligned
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash the roots of consecutive, decreasing perfect subtrees into one subtree hash.

    ``fold_right([a, b, c]) == node_hash(a, node_hash(b, c))``: the shape RFC 9162 gives to
    a range whose perfect subtrees shrink to the right (the right edge of a tree).

    Args:
        hashes: one or more subtree roots, left to right.

    Raises:
        ValueError: ``hashes`` is empty.
    """
    if not hashes:
        raise ValueError("cannot fold an empty list of subtree hashes")
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = _sha256(NODE_PREFIX + left + root).digest()
    return root


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Return the root of a perfect subtree from its 2**k bottom hashes, level by level.

    Raises:
        ValueError: the number of hashes is not a power of two.
    """
    if not hashes or len(hashes) & (len(hashes) - 1):
        raise ValueError(f"a perfect subtree has 2**k hashes, got {len(hashes)}")
    level = list(hashes)
    while len(level) > 1:
        pairs = iter(level)
        level = [_sha256(NODE_PREFIX + a + b).digest() for a, b in zip(pairs, pairs, strict=True)]
    return level[0]


def tree_root(size: int, read_nodes: NodeReader) -> bytes:
    """Return the root of the tree of ``size`` leaves from its stored perfect subtrees.

    Reads the O(log n) roots of ``perfect_subtrees(0, size)`` in one batch.

    Args:
        size: tree size, >= 0.
        read_nodes: where node hashes come from.
    """
    if size == 0:
        return EMPTY_ROOT
    nodes = perfect_subtrees(0, size)
    hashes = read_nodes(nodes)
    if len(hashes) != len(nodes):
        raise ValueError(f"node reader returned {len(hashes)} hashes for {len(nodes)} nodes")
    return fold_right(hashes)


class CompactRange:
    """Incremental builder of the tree ``[0, size)`` in O(log n) memory.

    Holds one hash per set bit of ``size``: the roots of ``perfect_subtrees(0, size)``,
    largest (leftmost) first. Appending a leaf merges equal-sized subtrees like a binary
    counter carrying, so an append costs one hash on average.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Start from the tree of ``size`` leaves described by its perfect subtree roots.

        Args:
            size: number of leaves already in the tree.
            hashes: roots of ``perfect_subtrees(0, size)``, left to right.

        Raises:
            ValueError: the number or size of ``hashes`` does not fit ``size``.
        """
        if size < 0:
            raise ValueError("tree size must be >= 0")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} perfect subtrees, "
                f"got {len(hashes)} hashes"
            )
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"subtree hashes must be {HASH_SIZE} bytes")
        self._size = size
        self._hashes = [bytes(h) for h in hashes]

    @property
    def size(self) -> int:
        """Number of leaves in the tree."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Roots of ``perfect_subtrees(0, size)``, left to right."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash at the right edge.

        Hot path of the appender: the loop is written out with local names instead of
        calling :func:`node_hash` because the call overhead is a third of the cost.

        Raises:
            ValueError: ``leaf_hash`` is not 32 bytes.
        """
        if len(leaf_hash) != 32:
            raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
        size = self._size
        self._size = size + 1
        hashes = self._hashes
        h = leaf_hash
        while size & 1:  # each trailing one bit is a subtree of the same size to merge
            h = _sha256(NODE_PREFIX + hashes.pop() + h).digest()
            size >>= 1
        hashes.append(h)

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes; same result as calling :meth:`append` for each."""
        size = self._size
        hashes = self._hashes
        pop = hashes.pop
        push = hashes.append
        sha256 = _sha256
        prefix = NODE_PREFIX
        try:
            for leaf in leaf_hashes:
                if len(leaf) != 32:
                    raise ValueError(f"leaf hash is {len(leaf)} bytes, expected {HASH_SIZE}")
                h = leaf
                carry = size
                while carry & 1:
                    h = sha256(prefix + pop() + h).digest()
                    carry >>= 1
                push(h)
                size += 1
        finally:  # keep size in step with the hashes if the iterable raises
            self._size = size

    def root(self) -> bytes:
        """Return MTH of the tree so far; :data:`EMPTY_ROOT` when it is empty."""
        if not self._hashes:
            return EMPTY_ROOT
        return fold_right(self._hashes)

    def nodes(self) -> dict[tuple[int, int], bytes]:
        """The hashes keyed by node id: ``perfect_subtrees(0, size)`` zipped with them."""
        return dict(zip(perfect_subtrees(0, self._size), self._hashes, strict=True))
