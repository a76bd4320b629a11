"""Tests of auditseal.core.merkle: MTH, perfect subtrees, compact ranges, tree_root.

Known answers come from tests/vectors/rfc6962_merkle.json, transcribed from
transparency-dev/merkle testonly/constants.go (commit 582a6ad1); see the file's
"provenance" block.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditseal.core.hashing import EMPTY_ROOT, leaf_hash, node_hash
from auditseal.core.merkle import (
    CompactRange,
    fold_right,
    perfect_root,
    perfect_subtrees,
    root_from_leaf_hashes,
    tree_root,
)
from tests.unit.merkle_helpers import TableReader, cheap_leaves

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "rfc6962_merkle.json").read_text()
)
LEAVES = [leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves_hex"]]
ROOTS = {int(k): bytes.fromhex(v) for k, v in VECTORS["roots"].items()}
NODES = [[bytes.fromhex(h) for h in level] for level in VECTORS["node_hashes"]]




@pytest.mark.parametrize("size", range(9), ids=lambda s: f"size{s}")
def test_roots_match_rfc6962_vectors(size: int) -> None:
    leaves = LEAVES[:size]
    assert root_from_leaf_hashes(leaves) == ROOTS[size]
    cr = CompactRange()
    cr.extend(leaves)
    assert cr.root() == ROOTS[size]
    assert tree_root(size, TableReader(LEAVES)) == ROOTS[size]


def test_node_hashes_match_rfc6962_vectors() -> None:
    table = TableReader(LEAVES)
    for level, hashes in enumerate(NODES):
        assert table.levels[level][: len(hashes)] == hashes


@pytest.mark.parametrize(
    ("start", "end", "want"),
    [
        (0, 0, []),
        (5, 5, []),
        (0, 1, [(0, 0)]),
        (0, 7, [(2, 0), (1, 2), (0, 6)]),
        (0, 8, [(3, 0)]),
        (3, 8, [(0, 3), (2, 1)]),
        (3, 13, [(0, 3), (2, 1), (2, 2), (0, 12)]),
        (4, 7, [(1, 2), (0, 6)]),
        (
            256,
            70000,
            [
                (8, 1),
                (9, 1),
                (10, 1),
                (11, 1),
                (12, 1),
                (13, 1),
                (14, 1),
                (15, 1),
                (12, 16),
                (8, 272),
                (6, 1092),
                (5, 2186),
                (4, 4374),
            ],
        ),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else None,
)
def test_perfect_subtrees_table(start: int, end: int, want: list[tuple[int, int]]) -> None:
    assert perfect_subtrees(start, end) == want


@given(st.integers(0, 5000), st.integers(0, 5000))
def test_perfect_subtrees_tile_the_range(a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    nodes = perfect_subtrees(start, end)
    pos = start
    for level, index in nodes:
        assert index << level == pos  # contiguous and aligned
        pos += 1 << level
    assert pos == end
    # Maximal: no two neighbours of one size could merge into an aligned parent.
    for (l1, i1), (l2, _) in itertools.pairwise(nodes):
        assert not (l1 == l2 and i1 % 2 == 0)


@pytest.mark.parametrize(("start", "end"), [(-1, 3), (4, 3)], ids=["negative", "reversed"])
def test_perfect_subtrees_rejects_bad_range(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="invalid leaf range"):
        perfect_subtrees(start, end)


def test_compact_range_hashes_are_perfect_subtree_roots() -> None:
    leaves = cheap_leaves(300)
    table = TableReader(leaves)
    cr = CompactRange()
    for size in range(301):
        want = [table.levels[lvl][i] for lvl, i in perfect_subtrees(0, size)]
        assert cr.size == size
        assert cr.hashes == tuple(want)
        assert cr.root() == root_from_leaf_hashes(leaves[:size])
        if size < 300:
            cr.append(leaves[size])


@given(st.integers(0, 300), st.integers(0, 300))
def test_compact_range_resumes_from_its_hashes(split: int, more: int) -> None:
    leaves = cheap_leaves(split + more)
    first = CompactRange()
    first.extend(leaves[:split])
    resumed = CompactRange(first.size, first.hashes)
    resumed.extend(leaves[split:])
    first.extend(leaves[split:])
    assert resumed.hashes == first.hashes
    assert resumed.root() == root_from_leaf_hashes(leaves)


def test_compact_range_extend_keeps_size_when_iterable_fails() -> None:
    leaves = cheap_leaves(5)

    def broken() -> Any:
        yield from leaves
        raise RuntimeError("source failed")

    cr = CompactRange()
    with pytest.raises(RuntimeError):
        cr.extend(broken())
    assert cr.size == 5
    assert cr.root() == root_from_leaf_hashes(leaves)


@pytest.mark.parametrize(
    ("size", "hashes", "match"),
    [
        (-1, (), "size must be >= 0"),
        (3, (b"\x00" * 32,), "has 2 perfect subtrees"),
        (0, (b"\x00" * 32,), "has 0 perfect subtrees"),
        (1, (b"\x00" * 31,), "must be 32 bytes"),
    ],
    ids=["negative-size", "too-few", "too-many", "short-hash"],
)
def test_compact_range_rejects_bad_state(size: int, hashes: tuple[bytes, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CompactRange(size, hashes)


def test_empty_tree() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT
    table = TableReader([])
    assert tree_root(0, table) == EMPTY_ROOT
    assert table.calls == []  # nothing to read for an empty tree


def test_tree_root_reads_one_batch_of_log_n_nodes() -> None:
    leaves = cheap_leaves(1000)
    table = TableReader(leaves)
    assert tree_root(1000, table) == root_from_leaf_hashes(leaves)
    assert table.calls == [perfect_subtrees(0, 1000)]
    assert len(table.calls[0]) == bin(1000).count("1")


def test_tree_root_rejects_short_reader_answer() -> None:
    with pytest.raises(ValueError, match="returned 0 hashes for 2 nodes"):
        tree_root(3, lambda nodes: [])


def test_fold_right() -> None:
    a, b, c = LEAVES[:3]
    assert fold_right([a]) == a
    assert fold_right([a, b, c]) == node_hash(a, node_hash(b, c))
    with pytest.raises(ValueError, match="empty"):
        fold_right([])


def test_perfect_root() -> None:
    assert perfect_root(LEAVES[:1]) == LEAVES[0]
    assert perfect_root(LEAVES[:8]) == ROOTS[8]
    for count in (0, 3, 6):
        with pytest.raises(ValueError, match="2\\*\\*k hashes"):
            perfect_root(LEAVES[:count])


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33], ids=len)
def test_compact_range_rejects_leaf_hash_of_wrong_size(bad: bytes) -> None:
    cr = CompactRange()
    with pytest.raises(ValueError, match="expected 32"):
        cr.append(bad)
    with pytest.raises(ValueError, match="expected 32"):
        cr.extend([LEAVES[0], bad])
    assert cr.size == 1  # the good leaf before the bad one was appended
