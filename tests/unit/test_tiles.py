"""Tests of auditseal.core.tiles: C2SP tlog-tiles paths, codecs, TileWriter, TileNodeReader.

Path vectors come from the C2SP tlog-tiles spec, https://c2sp.org/tlog-tiles (repo
C2SP/C2SP, file tlog-tiles.md, commit 0ad71eb1): "index 1234067 will be encoded as
x001/x234/067", and the tiles of a tree of size 70,000 and of size 256. The
``tile/3/5/x123/x456/078`` style seeds are FuzzParseTilePath's in golang/mod
sumdb/tlog/tile_test.go, minus the height element that sumdb has and tlog-tiles drops.

The writer is cross-checked against tiles built by brute force from the RFC 9162 MTH.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditseal.core.hashing import leaf_hash
from auditseal.core.merkle import CompactRange, perfect_subtrees, root_from_leaf_hashes, tree_root
from auditseal.core.proofs import (
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from auditseal.core.tiles import (
    ENTRIES_LEVEL,
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    TileId,
    bundle_path,
    decode_bundle,
    decode_tile,
    encode_bundle,
    encode_tile,
    parse_tile_path,
    right_edge,
    tile_path,
    tiles_for_size,
)
from auditseal.core.tiletree import TileNodeReader, TileWriter
from auditseal.errors import EntryTooLarge, FormatError

N_LEAVES = 70_000
LEAVES = [leaf_hash(i.to_bytes(8, "big")) for i in range(N_LEAVES)]


@functools.cache
def span_root(level: int, index: int) -> bytes:
    """Brute-force hash ``index`` of tile level ``level``: MTH of its 256**level leaves."""
    span = TILE_WIDTH**level
    return root_from_leaf_hashes(LEAVES[index * span : (index + 1) * span])


def brute_tile(tile: TileId) -> bytes:
    """The tile's bytes straight from the tlog-tiles definition."""
    first = tile.index * TILE_WIDTH
    return b"".join(span_root(tile.level, first + i) for i in range(tile.width))


def hash_tiles(size: int) -> set[TileId]:
    return {t for t in tiles_for_size(size) if not t.is_bundle}


# --- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (TileId(0, 0), "tile/0/000"),
        (TileId(0, 1234067), "tile/0/x001/x234/067"),  # the spec's example
        (TileId(5, 123456078), "tile/5/x123/x456/078"),
        (TileId(5, 123456078, 2), "tile/5/x123/x456/078.p/2"),
        (TileId(4, 1, 5), "tile/4/001.p/5"),
        (TileId(1, 3057500), "tile/1/x003/x057/500"),
        (TileId(1, 1000), "tile/1/x001/000"),
        (TileId(2, 999), "tile/2/999"),
        (TileId(63, 0, 255), "tile/63/000.p/255"),
        (TileId(0, 273, 112), "tile/0/273.p/112"),  # size 70,000, from the spec
        (TileId(1, 1, 17), "tile/1/001.p/17"),
        (TileId(2, 0, 1), "tile/2/000.p/1"),
        (TileId(ENTRIES_LEVEL, 273, 112), "tile/entries/273.p/112"),
        (TileId(ENTRIES_LEVEL, 1234067), "tile/entries/x001/x234/067"),
        (TileId(0, 2**64 - 1), "tile/0/x018/x446/x744/x073/x709/x551/615"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_path_vectors(tile: TileId, path: str) -> None:
    assert tile.path == path
    assert parse_tile_path(path) == tile
    if tile.is_bundle:
        assert bundle_path(tile.index, tile.width) == path
    else:
        assert tile_path(tile.level, tile.index, tile.width) == path
    assert tile.is_partial == (tile.width < TILE_WIDTH)


@given(st.integers(-1, 63), st.integers(0, 10**15), st.integers(1, 256))
def test_path_round_trip(level: int, index: int, width: int) -> None:
    tile = TileId(level, index, width)
    assert parse_tile_path(tile.path) == tile


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("tiles/0/000", "not a tile path"),
        ("tile/0", "not a tile path"),
        ("tile/-1/000", "not a tile path"),
        ("tile/\u0661/000", "not a tile path"),  # ARABIC-INDIC DIGIT ONE
        ("tile/0/1", "not a tile path"),
        ("tile/0/0001", "not a tile path"),
        ("tile/0/001/002", "not a tile path"),
        ("tile/0/x001", "not a tile path"),
        ("tile/0/x00a/000", "not a tile path"),
        ("tile/0/000/", "not a tile path"),
        ("tile/0/000.p", "not a tile path"),
        ("tile/0/000.q/5", "not a tile path"),
        ("tile/0/000.p/5/6", "not a tile path"),
        ("tile/0/000.p/-5", "not a tile path"),
        ("tile/0/000\n", "not a tile path"),
        ("tile/00/000", "level '00' has leading zeros"),
        ("tile/64/000", "level 64 is out of range"),
        ("tile/0/x000/001", "leading zero group"),
        ("tile/0/000.p/0", "partial width 0 is out of range"),
        ("tile/0/000.p/256", "partial width 256 is out of range"),
        ("tile/0/000.p/05", "partial width '05' has leading zeros"),
        ("tile/entries/000.p/300", "partial width 300 is out of range"),
    ],
    ids=lambda v: v if "/" in v else None,
)
def test_parse_rejects_non_canonical_paths(path: str, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        parse_tile_path(path)


@pytest.mark.parametrize(
    "args", [(-2, 0, 1), (64, 0, 1), (0, -1, 1), (0, 0, 0), (0, 0, 257)], ids=str
)
def test_tile_id_rejects_out_of_range(args: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="tile"):
        TileId(*args)
    with pytest.raises(ValueError, match="tile"):
        tile_path(*args)


@pytest.mark.parametrize("args", [(-1, 1), (0, 0), (0, 257)], ids=str)
def test_bundle_path_rejects_out_of_range(args: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"bundle|width"):
        bundle_path(*args)


# --- codecs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [[b""], [b"a"], [b"x" * MAX_ENTRY_SIZE, b""], [bytes([i]) * i for i in range(256)]],
    ids=["one-empty", "one-byte", "max-size", "full-bundle"],
)
def test_bundle_round_trip(entries: list[bytes]) -> None:
    data = encode_bundle(entries)
    assert decode_bundle(data, expected_count=len(entries)) == entries
    assert data[:2] == len(entries[0]).to_bytes(2, "big")


def test_bundle_rejects_oversized_entry() -> None:
    with pytest.raises(EntryTooLarge) as info:
        encode_bundle([b"ok", b"x" * (MAX_ENTRY_SIZE + 1)])
    assert (info.value.size, info.value.limit) == (MAX_ENTRY_SIZE + 1, MAX_ENTRY_SIZE)


@pytest.mark.parametrize("count", [0, 257])
def test_encode_bundle_rejects_count(count: int) -> None:
    with pytest.raises(ValueError, match=r"holds 1\.\.256 entries"):
        encode_bundle([b""] * count)


@pytest.mark.parametrize(
    ("data", "expected", "match"),
    [
        (b"", None, "found 0"),
        (b"\x00", None, "truncated in the length prefix of entry 0"),
        (b"\x00\x01a\x00", None, "truncated in the length prefix of entry 1"),
        (b"\x00\x05abc", None, "entry 0 declares 5 bytes, 3 remain"),
        (b"\x00\x00" * 257, None, "found 257"),
        (b"\x00\x01a\x00\x01b", 3, "holds 2 entries, expected 3"),
    ],
    ids=["empty", "short-prefix", "short-second-prefix", "short-body", "too-many", "count"],
)
def test_decode_bundle_rejects(data: bytes, expected: int | None, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        decode_bundle(data, expected)


def test_tile_round_trip() -> None:
    for width in (1, 7, 256):
        hashes = LEAVES[:width]
        assert decode_tile(encode_tile(hashes), expected_width=width) == hashes


@pytest.mark.parametrize(
    ("hashes", "match"),
    [([], "1..256 hashes"), (LEAVES[:257], "1..256 hashes"), ([b"\x00" * 31], "32 bytes")],
    ids=["empty", "too-many", "short-hash"],
)
def test_encode_tile_rejects(hashes: list[bytes], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_tile(hashes)


@pytest.mark.parametrize(
    ("data", "expected", "match"),
    [
        (b"\x00" * 33, None, "33 bytes, not a multiple of 32"),
        (b"", None, "found 0"),
        (b"\x00" * 32 * 257, None, "found 257"),
        (b"\x00" * 64, 3, "holds 2 hashes, expected 3"),
    ],
    ids=["ragged", "empty", "too-wide", "width"],
)
def test_decode_tile_rejects(data: bytes, expected: int | None, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        decode_tile(data, expected)


# --- which tiles a size has ------------------------------------------------------------------


def test_tiles_of_size_70000_match_the_spec() -> None:
    # "273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1 tile,
    # one partial level 1 tile of width 17, and one partial level 2 tile of width 1"
    tiles = tiles_for_size(70_000)
    assert [t for t in tiles if t.level == 0] == [
        *(TileId(0, n) for n in range(273)),
        TileId(0, 273, 112),
    ]
    assert [t for t in tiles if t.level >= 1] == [TileId(1, 0), TileId(1, 1, 17), TileId(2, 0, 1)]
    assert [t for t in tiles if t.is_bundle] == [TileId(-1, n) for n in range(273)] + [
        TileId(-1, 273, 112)
    ]
    assert right_edge(70_000) == [
        TileId(-1, 273, 112),
        TileId(0, 273, 112),
        TileId(1, 1, 17),
        TileId(2, 0, 1),
    ]


@pytest.mark.parametrize(
    ("size", "tiles", "edge"),
    [
        (0, [], []),
        (1, [TileId(-1, 0, 1), TileId(0, 0, 1)], [TileId(-1, 0, 1), TileId(0, 0, 1)]),
        # "a tree of size 256 will be represented by a full level 0 tile and a partial
        # level 1 tile of width 1"
        (256, [TileId(-1, 0), TileId(0, 0), TileId(1, 0, 1)], [TileId(1, 0, 1)]),
        (
            65536,
            [
                *(TileId(-1, n) for n in range(256)),
                *(TileId(0, n) for n in range(256)),
                TileId(1, 0),
                TileId(2, 0, 1),
            ],
            [TileId(2, 0, 1)],
        ),
    ],
    ids=["0", "1", "256", "65536"],
)
def test_tiles_for_size_table(size: int, tiles: list[TileId], edge: list[TileId]) -> None:
    assert tiles_for_size(size) == tiles
    assert right_edge(size) == edge


# --- TileWriter ------------------------------------------------------------------------------


def check_step(writer: TileWriter, store: dict[TileId, bytes], previous: int) -> None:
    """Flush and check the output is exactly the tiles new since size ``previous``."""
    size = writer.size
    flushed = writer.flush()
    assert [t for t, _ in flushed] == sorted(hash_tiles(size) - hash_tiles(previous))
    for tile, data in flushed:
        assert data == brute_tile(tile), tile
        store[tile] = data


def test_writer_matches_brute_force_for_every_size_to_600() -> None:
    writer = TileWriter()
    store: dict[TileId, bytes] = {}
    assert writer.flush() == []
    for size in range(1, 601):
        writer.append(LEAVES[size - 1])
        check_step(writer, store, size - 1)
        assert writer.root() == root_from_leaf_hashes(LEAVES[:size])
    assert writer.flush() == []  # nothing changed since the last flush


def test_writer_with_random_flushes_stores_every_tile() -> None:
    rng = random.Random(7)
    writer = TileWriter()
    store: dict[TileId, bytes] = {}
    while writer.size < 3000:
        previous = writer.size
        writer.extend(LEAVES[previous : previous + rng.randint(1, 700)])
        check_step(writer, store, previous)
        assert set(store) >= hash_tiles(writer.size)
    assert writer.root() == root_from_leaf_hashes(LEAVES[: writer.size])


def test_writer_around_65536() -> None:
    # A smaller synthetic check: only sizes near the level-2 boundary are compared tile by
    # tile; the tiles below are checked once, at the end, against brute force.
    writer = TileWriter()
    store: dict[TileId, bytes] = {}
    writer.extend(LEAVES[:65_000])
    store.update(writer.flush())
    for size in range(65_001, 66_100):
        writer.append(LEAVES[size - 1])
        if 65_530 <= size <= 65_800 or size % 256 in (0, 1, 255):
            check_step(writer, store, size - 1)
    store.update(writer.flush())
    assert writer.root() == root_from_leaf_hashes(LEAVES[: writer.size])
    for tile in hash_tiles(writer.size) - hash_tiles(65_000):
        assert store[tile] == brute_tile(tile), tile


def test_writer_rejects_leaf_hash_of_wrong_size() -> None:
    writer = TileWriter()
    with pytest.raises(ValueError, match="expected 32"):
        writer.append(b"\x00" * 31)
    assert writer.size == 0
    assert writer.flush() == []


def stored_tree(sizes: list[int]) -> tuple[dict[TileId, bytes], dict[int, bytes]]:
    """Append LEAVES, flushing at each of ``sizes``; return the tiles and roots by size."""
    writer = TileWriter()
    store: dict[TileId, bytes] = {}
    roots: dict[int, bytes] = {}
    for size in sorted(sizes):
        writer.extend(LEAVES[writer.size : size])
        store.update(writer.flush())
        roots[size] = writer.root()
    return store, roots


RESUME_SIZES = [0, 1, 255, 256, 257, 511, 512, 700, 65_535, 65_536, 65_541, 65_792, 66_047]
STORE, ROOTS = stored_tree([*RESUME_SIZES, 69_999, 70_000])


@pytest.mark.parametrize("size", RESUME_SIZES)
def test_resume_reads_only_partial_tiles_and_continues_identically(size: int) -> None:
    read: list[TileId] = []

    def read_tile(tile: TileId) -> bytes:
        assert tile.is_partial, f"resume read the full tile {tile.path}"
        read.append(tile)
        return STORE[tile]

    resumed = TileWriter.resume(size, read_tile)
    assert sorted(read) == [t for t in right_edge(size) if not t.is_bundle]
    assert resumed.size == size
    assert resumed.root() == ROOTS[size] == root_from_leaf_hashes(LEAVES[:size])
    assert resumed.flush() == []  # a resumed edge is already stored

    original = TileWriter()
    original.extend(LEAVES[:size])
    original.flush()
    for batch in (1, 254, 300, 5):
        start = original.size
        original.extend(LEAVES[start : start + batch])
        resumed.extend(LEAVES[start : start + batch])
        assert resumed.flush() == original.flush()
        assert resumed.root() == original.root()


def test_resume_rejects_tile_of_wrong_width() -> None:
    def read_tile(tile: TileId) -> bytes:
        return b"\x00" * 32 * (tile.width + 1)

    with pytest.raises(FormatError, match="holds 113 hashes, expected 112"):
        TileWriter.resume(70_000, read_tile)


# --- TileNodeReader and proofs over tiles ----------------------------------------------------


def counting_reader(calls: list[TileId]) -> Callable[[TileId], bytes]:
    def read_tile(tile: TileId) -> bytes:
        calls.append(tile)
        return STORE[tile]

    return read_tile


@pytest.mark.parametrize("size", [1, 256, 257, 700, 65_536, 65_541, 66_047, 70_000])
def test_node_reader_roots_and_inclusion_proofs_verify(size: int) -> None:
    reader = TileNodeReader(size, STORE.__getitem__)
    assert tree_root(size, reader) == ROOTS[size]
    rng = random.Random(size)
    for index in {0, size - 1, size // 2, *(rng.randrange(size) for _ in range(20))}:
        proof = inclusion_proof(index, size, reader)
        verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


def test_node_reader_consistency_proofs_verify_across_tile_boundaries() -> None:
    sizes = sorted(s for s in ROOTS if s)
    for old in sizes:
        for new in sizes:
            if old <= new:
                proof = consistency_proof(old, new, TileNodeReader(new, STORE.__getitem__))
                verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def test_node_reader_nodes_match_brute_force() -> None:
    reader = TileNodeReader(70_000, STORE.__getitem__)
    for level in range(17):
        for index in {0, (70_000 >> level) - 1}:
            span = LEAVES[index << level : (index + 1) << level]
            assert reader([(level, index)]) == [root_from_leaf_hashes(span)], (level, index)


def test_node_reader_caches_decoded_tiles() -> None:
    calls: list[TileId] = []
    reader = TileNodeReader(70_000, counting_reader(calls), cache_tiles=2)
    reader([(0, 0), (0, 1), (3, 5)])
    assert calls == [TileId(0, 0)]
    reader([(0, 4), (0, 69_999)])
    assert calls == [TileId(0, 0), TileId(0, 273, 112)]
    reader([(9, 0)])  # third tile: evicts the least recently used, tile/0/000
    reader([(0, 69_998)])
    assert calls == [TileId(0, 0), TileId(0, 273, 112), TileId(1, 0)]
    reader([(0, 5)])
    assert calls[-1] == TileId(0, 0)


@pytest.mark.parametrize(("node"), [(0, 70_000), (4, 4375), (17, 0), (-1, 0)], ids=str)
def test_node_reader_rejects_nodes_outside_the_tree(node: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="not in a tree of size 70000"):
        TileNodeReader(70_000, STORE.__getitem__)([node])


def test_node_reader_rejects_tile_of_wrong_width() -> None:
    reader = TileNodeReader(70_000, lambda tile: b"\x00" * 32)
    with pytest.raises(FormatError, match="expected 256"):
        reader([(0, 0)])


def test_known_nodes_spare_the_right_edge_partial_tiles() -> None:
    """Given the compact range, proofs left of the edge read only full tiles, and are equal."""
    size = 70_000
    edge = CompactRange()
    edge.extend(LEAVES[:size])
    assert edge.root() == ROOTS[size]
    plain_calls: list[TileId] = []
    hinted_calls: list[TileId] = []
    rng = random.Random(7)
    for index in [0, 65_535, *(rng.randrange(65_536) for _ in range(30))]:
        plain = inclusion_proof(index, size, TileNodeReader(size, counting_reader(plain_calls)))
        hinted = inclusion_proof(index, size, TileNodeReader(
            size, counting_reader(hinted_calls), known=edge.nodes()))
        assert hinted == plain
        verify_inclusion(LEAVES[index], index, size, hinted, ROOTS[size])
    assert any(tile.width < 256 for tile in plain_calls)  # the edge costs partial tiles ...
    assert all(tile.width == 256 for tile in hinted_calls)  # ... which the hint spares
    for index in (65_536, 69_999):  # on the edge itself, proofs still agree
        reader = TileNodeReader(size, STORE.__getitem__, known=edge.nodes())
        proof = inclusion_proof(index, size, reader)
        assert proof == inclusion_proof(index, size, TileNodeReader(size, STORE.__getitem__))
    for old in (1, 700, 65_536):
        hinted_consistency = consistency_proof(
            old, size, TileNodeReader(size, STORE.__getitem__, known=edge.nodes()))
        verify_consistency(old, size, ROOTS[old], ROOTS[size], hinted_consistency)


def test_writer_compact_range_is_the_edge_of_its_tree() -> None:
    writer = TileWriter()
    writer.extend(LEAVES[:70_000])
    assert writer.compact_range == tuple(
        root_from_leaf_hashes(LEAVES[i << level : (i + 1) << level])
        for level, i in perfect_subtrees(0, 70_000))
