"""The tiled Merkle tree: built from leaf hashes into tiles, and read back through them.

Implements the tree side of https://c2sp.org/tlog-tiles ("Merkle Tree"); the tile paths,
codecs and the set of tiles of a tree size are in :mod:`auditseal.core.tiles`.

:class:`TileWriter` keeps only the right edge of the tiled tree (one partial tile per
level) while entries are appended; :class:`TileNodeReader` answers
:data:`~auditseal.core.merkle.NodeReader` requests from stored tiles so that proofs and
roots can be computed for any tree size a checkpoint was published for.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import overload

from auditseal.core.hashing import HASH_SIZE, NODE_PREFIX
from auditseal.core.merkle import CompactRange, perfect_root, perfect_subtrees
from auditseal.core.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    TileId,
    check_tile,
    decode_tile,
    right_edge,
    rightmost_tile,
    tile_levels,
)

__all__ = ["TileNodeReader", "TileWriter"]

_MASK = TILE_WIDTH - 1
_sha256 = hashlib.sha256
_NODE_HASH = hashlib.sha256(NODE_PREFIX)


class _StoredHashes(Sequence[bytes]):
    """The hashes stored in one tile, sliced out of its bytes on demand."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __len__(self) -> int:
        return len(self._data) // HASH_SIZE

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._data[index * HASH_SIZE : (index + 1) * HASH_SIZE]


class TileWriter:
    """Writer-side right edge of the tiled tree: O(levels * 256) memory, never the whole tree.

    Keeps the hashes of the current (partial) tile at each level and a compact range,
    hashes each interior node once as leaves arrive, and hands out the tiles to store on
    :meth:`flush`. Full tiles completed between two flushes are held until the flush.
    """

    __slots__ = ("_done", "_flushed", "_level0", "_size", "_stack", "_tiles")

    def __init__(self) -> None:
        """Start an empty tree."""
        self._size = 0
        self._stack: list[bytes] = []  # compact range: roots of perfect_subtrees(0, size)
        self._tiles: list[list[bytes]] = [[]]  # hashes of the current tile at each level
        self._level0 = self._tiles[0]  # the same list, without an index on the hot path
        self._done: list[tuple[TileId, bytes]] = []  # full tiles completed since flush()
        self._flushed: list[tuple[int, int]] = []  # (index, width) last flushed per level

    @classmethod
    def resume(cls, size: int, read_tile: Callable[[TileId], bytes]) -> TileWriter:
        """Rebuild the writer of a tree of ``size`` from its stored partial hash tiles.

        Reads only the partial hash tiles of ``right_edge(size)``, never a full tile: the
        compact range's nodes in tree levels ``8L .. 8L+7`` are the perfect subtrees of the
        level-L partial tile (one per set bit of its width), so a level of width 0 has no
        node there, and its current tile is empty.

        Raises:
            FormatError: a tile does not decode to the width its path says.
        """
        writer = cls()
        writer._size = size
        writer._tiles = [[] for _ in tile_levels(size)] or [[]]
        for tile in right_edge(size):
            if not tile.is_bundle:
                writer._tiles[tile.level] = decode_tile(read_tile(tile), tile.width)
        writer._level0 = writer._tiles[0]
        for hashes in reversed(writer._tiles):  # the compact range holds the largest first
            for sub, i in perfect_subtrees(0, len(hashes)):
                writer._stack.append(perfect_root(hashes[i << sub : (i + 1) << sub]))
        writer._flushed = [rightmost_tile(size, level) for level in range(len(writer._tiles))]
        return writer

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash. Hot path: 255 of 256 appends take the short loop.

        Raises:
            ValueError: ``leaf_hash`` is not 32 bytes (it would corrupt the tiles).
        """
        if len(leaf_hash) != 32:
            raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
        size = self._size
        self._size = size + 1
        self._level0.append(leaf_hash)
        if (size + 1) & 255:
            stack = self._stack
            h = leaf_hash
            while size & 1:  # merges stay below tree level 8: no tile completes
                h = _sha256(NODE_PREFIX + stack.pop() + h).digest()
                size >>= 1
            stack.append(h)
        else:
            self._carry(size, leaf_hash)

    def _carry(self, size: int, h: bytes) -> None:
        """The append that fills the level-0 tile: carry hashes up through the tile levels."""
        stack, tiles = self._stack, self._tiles
        level = 0  # tree level of h
        while size & 1:
            h = _sha256(NODE_PREFIX + stack.pop() + h).digest()
            size >>= 1
            level += 1
            if level % TILE_HEIGHT == 0:  # h is the root of the full tile just completed
                below = level // TILE_HEIGHT - 1
                done = TileId(below, (self._size - 1) >> level)
                self._done.append((done, b"".join(tiles[below])))
                tiles[below].clear()
                if len(tiles) == below + 1:
                    tiles.append([])
                tiles[below + 1].append(h)
        stack.append(h)

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes; same result as :meth:`append` on each."""
        append = self.append
        for h in leaf_hashes:
            append(h)

    def root(self) -> bytes:
        """MTH of the tree so far."""
        return CompactRange(self._size, self._stack).root()

    @property
    def compact_range(self) -> tuple[bytes, ...]:
        """Roots of ``perfect_subtrees(0, size)``, left to right: the tree's right edge."""
        return tuple(self._stack)

    def flush(self) -> list[tuple[TileId, bytes]]:
        """Return the encoded hash tiles that changed since the last flush, sorted.

        That is every full tile completed since then, plus the partial tile of each level
        whose width is > 0 and that differs from the one last flushed. Entry bundles are
        the caller's job.
        """
        out, self._done = self._done, []
        flushed = self._flushed
        for level in tile_levels(self._size):
            edge = rightmost_tile(self._size, level)
            if level == len(flushed):
                flushed.append((0, 0))
            if edge[1] and edge != flushed[level]:
                out.append((TileId(level, *edge), b"".join(self._tiles[level])))
            flushed[level] = edge
        out.sort()
        return out


_MAX_TILE_LEVELS = 8  # 256**8 = 2**64 leaves: every tree a uint64 size can name


class TileNodeReader:
    """NodeReader over stored hash tiles for a given tree size, with an LRU of decoded tiles.

    Node ``(l, i)`` lives in tile level ``l // 8``; the node is the root of ``2 ** (l % 8)``
    consecutive hashes of that tile, which is hashed here. The tile read is the full one,
    or the partial one of the width the tree size implies.
    """

    def __init__(
        self, size: int, read_tile: Callable[[TileId], bytes], cache_tiles: int = 64,
        known: Mapping[tuple[int, int], bytes] | None = None,
    ) -> None:
        """Read the tiles of the tree of ``size`` through ``read_tile``.

        Args:
            size: tree size whose tiles (including partial ones) exist in storage.
            read_tile: returns the stored bytes of one tile.
            cache_tiles: how many decoded tiles to keep (least recently used goes first).
            known: node hashes the caller already has and has checked, answered without
                reading a tile: the tree's compact range (``CompactRange.nodes``) spares a
                proof the right edge's partial tiles, a third of a cold proof's hashing.
        """
        self._known = known or {}
        self._size = size
        self._read_tile = read_tile
        self._cache_tiles = max(cache_tiles, 1)
        self._cache: OrderedDict[tuple[int, int, int], list[Sequence[bytes]]] = OrderedDict()
        self._edges = [rightmost_tile(size, level) for level in range(_MAX_TILE_LEVELS)]

    def _tile(self, key: tuple[int, int, int]) -> list[Sequence[bytes]]:
        """The tile's hashes and every complete node above them inside the tile.

        ``levels[k][j]`` is the root of stored hashes ``j * 2**k .. (j+1) * 2**k - 1``.
        Computing all of them costs what one proof needs anyway (255 hashes for a full
        tile), and keeping them makes a cached proof a few lookups with no hashing. The
        cache is keyed by plain tuples: building a TileId per node cost more than the rest.
        The first level above the stored hashes is hashed straight from the tile's bytes
        (pairs are adjacent 64-byte runs) and the stored hashes are sliced only when asked
        for: splitting all 256 cost ~15 % of a cold proof that reads two or three of them.
        """
        cache = self._cache
        levels = cache.get(key)
        if levels is not None:
            cache.move_to_end(key)
            return levels
        tile = TileId(*key)
        data = self._read_tile(tile)
        check_tile(data, expected_width=tile.width)
        fresh = _NODE_HASH.copy  # the node prefix already hashed: one update per node
        above: list[bytes] = []
        for start in range(0, len(data) - HASH_SIZE, 2 * HASH_SIZE):  # odd last waits
            node = fresh()
            node.update(data[start : start + 2 * HASH_SIZE])
            above.append(node.digest())
        levels = [_StoredHashes(data), above]
        while len(above) > 1:
            pairs = iter(above)
            above = []
            for left, right in zip(pairs, pairs, strict=False):
                node = fresh()
                node.update(left + right)
                above.append(node.digest())
            levels.append(above)
        if len(levels[-1]) == 0:  # a one-hash tile has nothing above it
            levels.pop()
        cache[key] = levels
        if len(cache) > self._cache_tiles:
            cache.popitem(last=False)
        return levels

    def __call__(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the hash of each node, in order.

        Raises:
            ValueError: a node is not a complete perfect subtree of the tree.
            FormatError: a stored tile does not decode to the expected width.
        """
        out: list[bytes] = []
        cache, edges, size, known = self._cache, self._edges, self._size, self._known
        # The tiles of this request, whatever the cache keeps: a proof's nodes alternate
        # between tiles, and a small cache would otherwise read and hash each one again
        # (5.4 tile reads per cold proof at 1 M leaves instead of 3).
        held: dict[tuple[int, int, int], list[Sequence[bytes]]] = {}
        for level, index in nodes:  # hot loop of cached proofs: kept to plain operations
            if level < 0 or index < 0 or (index + 1) << level > size:
                raise ValueError(f"node ({level}, {index}) is not in a tree of size {size}")
            if known:
                hash_ = known.get((level, index))
                if hash_ is not None:
                    out.append(hash_)
                    continue
            tile_level, sub = level >> 3, level & 7  # TILE_HEIGHT == 8
            first = index << sub  # first stored hash of tile level, global index
            n = first >> TILE_HEIGHT
            full, width = edges[tile_level]
            key = (tile_level, n, TILE_WIDTH if n < full else width)
            levels = held.get(key)
            if levels is None:
                levels = cache.get(key)
                if levels is None:
                    levels = self._tile(key)
                else:
                    cache.move_to_end(key)
                held[key] = levels
            out.append(levels[sub][(first & _MASK) >> sub])
        return out
