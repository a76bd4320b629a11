"""The C2SP tlog-tiles layout of the Merkle tree: paths, codecs, writer edge, node reader.

Implements https://c2sp.org/tlog-tiles ("Merkle Tree" and "Log entries"). The tree is
stored as write-once *hash tiles* of height 8: tile ``n`` at level ``L`` holds up to 256
consecutive node hashes of tree level ``8 * L``, i.e. the roots of the perfect subtrees
``(8 * L, n * 256 + i)``. Entries are stored alike as *entry bundles* of up to 256 entries,
each prefixed by its big-endian uint16 length. The rightmost tile of each level is usually
*partial* (fewer than 256 hashes, path suffix ``.p/<W>``): for a tree of size ``s`` it has
``floor(s / 256**L) mod 256`` hashes, and a tile of width 0 does not exist.

:class:`TileWriter` keeps only the right edge of the tiled tree (one partial tile per
level) while entries are appended; :class:`TileNodeReader` answers
:data:`~auditseal.core.merkle.NodeReader` requests from stored tiles so that proofs and
roots can be computed for any tree size a checkpoint was published for.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from auditseal.core.hashing import HASH_SIZE, NODE_PREFIX
from auditseal.core.merkle import CompactRange, perfect_root, perfect_subtrees
from auditseal.errors import EntryTooLarge, FormatError

TILE_HEIGHT = 8
"""Tree levels spanned by one tile."""
TILE_WIDTH = 256
"""Hashes in a full tile, entries in a full bundle (2 ** TILE_HEIGHT)."""
MAX_ENTRY_SIZE = 65535
"""Largest entry an entry bundle can hold: its length prefix is a uint16."""
ENTRIES_LEVEL = -1
"""The ``level`` of a :class:`TileId` that names an entry bundle."""
MAX_TILE_LEVEL = 63

_MASK = TILE_WIDTH - 1
_sha256 = hashlib.sha256


@dataclass(frozen=True, order=True)
class TileId:
    """One hash tile (``level >= 0``) or entry bundle (``level == ENTRIES_LEVEL``).

    Attributes:
        level: tile level L (tree level 8 * L), or -1 for an entry bundle.
        index: N, the tile's position within its level.
        width: number of hashes or entries, 1..256; below 256 the tile is partial.
    """

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not ENTRIES_LEVEL <= self.level <= MAX_TILE_LEVEL:
            raise ValueError(f"tile level must be -1..{MAX_TILE_LEVEL}, got {self.level}")
        if self.index < 0:
            raise ValueError(f"tile index must be >= 0, got {self.index}")
        if not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"tile width must be 1..{TILE_WIDTH}, got {self.width}")

    @property
    def path(self) -> str:
        """The tlog-tiles path, e.g. ``tile/0/x001/234.p/7`` or ``tile/entries/000``."""
        if self.level == ENTRIES_LEVEL:
            return bundle_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)

    @property
    def is_partial(self) -> bool:
        """True when the tile holds fewer than 256 hashes or entries."""
        return self.width < TILE_WIDTH

    @property
    def is_bundle(self) -> bool:
        """True for an entry bundle, False for a hash tile."""
        return self.level == ENTRIES_LEVEL


def _encode_index(index: int) -> str:
    digits = str(index)
    digits = digits.zfill(-(-len(digits) // 3) * 3)  # pad to whole 3-digit groups
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def _suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width must be 1..{TILE_WIDTH}, got {width}")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Path of hash tile ``index`` at ``level``: ``tile/<L>/<N>[.p/<W>]``."""
    if not 0 <= level <= MAX_TILE_LEVEL or index < 0:
        raise ValueError(f"no hash tile at level {level}, index {index}")
    return f"tile/{level}/{_encode_index(index)}{_suffix(width)}"


def bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """Path of entry bundle ``index``: ``tile/entries/<N>[.p/<W>]``."""
    if index < 0:
        raise ValueError(f"no entry bundle at index {index}")
    return f"tile/entries/{_encode_index(index)}{_suffix(width)}"


# The shape of a path; [0-9] and not \d, which also matches non-ASCII digits such as "٣".
_PATH = re.compile(r"tile/(entries|[0-9]+)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([0-9]+))?")


def _canonical_int(text: str, what: str, path: str, high: int) -> int:
    if len(text) > 1 and text[0] == "0":
        raise FormatError(f"tile path {path!r}: {what} {text!r} has leading zeros")
    value = int(text)
    if not (what == "level" or value >= 1) or value > high:
        raise FormatError(f"tile path {path!r}: {what} {value} is out of range")
    return value


def parse_tile_path(path: str) -> TileId:
    """Parse a canonical tlog-tiles path back into a :class:`TileId`.

    Raises:
        FormatError: ``path`` is not exactly what :attr:`TileId.path` would produce
            (wrong shape, level above 63, leading zeros in the level, the index or the
            width, width 0 or >= 256 after ``.p/``).
    """
    match = _PATH.fullmatch(path)
    if match is None:
        raise FormatError(
            f"not a tile path: {path!r} (expected tile/<L>/<N>[.p/<W>] or "
            "tile/entries/<N>[.p/<W>], N as 3-digit groups, all but the last prefixed 'x')"
        )
    level_text, index_text, width_text = match.groups()
    level = ENTRIES_LEVEL
    if level_text != "entries":
        level = _canonical_int(level_text, "level", path, MAX_TILE_LEVEL)
    if index_text.startswith("x000/"):
        raise FormatError(f"tile path {path!r}: index has a leading zero group")
    width = TILE_WIDTH
    if width_text is not None:
        width = _canonical_int(width_text, "partial width", path, TILE_WIDTH - 1)
    return TileId(level, int(index_text.replace("x", "").replace("/", "")), width)


# --- codecs ----------------------------------------------------------------------------------


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode 1..256 entries as an entry bundle (uint16 big-endian length + bytes each).

    Raises:
        EntryTooLarge: an entry is longer than 65,535 bytes.
        ValueError: there are no entries or more than 256.
    """
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise ValueError(f"an entry bundle holds 1..{TILE_WIDTH} entries, got {len(entries)}")
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise EntryTooLarge(len(entry), MAX_ENTRY_SIZE)
        out += len(entry).to_bytes(2, "big")
        out += entry
    return bytes(out)


def decode_bundle(data: bytes, expected_count: int | None = None) -> list[bytes]:
    """Split an entry bundle back into its entries.

    Args:
        data: the bundle's bytes.
        expected_count: the width the bundle's path or the tree size implies, if known.

    Raises:
        FormatError: the bundle is empty, truncated, holds more than 256 entries, or not
            ``expected_count`` entries.
    """
    view = memoryview(data)
    entries: list[bytes] = []
    pos, end = 0, len(view)
    while pos < end:
        if end - pos < 2:
            raise FormatError(
                f"entry bundle truncated in the length prefix of entry {len(entries)}"
            )
        size = (view[pos] << 8) | view[pos + 1]
        pos += 2
        if end - pos < size:
            raise FormatError(
                f"entry bundle truncated: entry {len(entries)} declares {size} bytes, "
                f"{end - pos} remain"
            )
        entries.append(bytes(view[pos : pos + size]))
        pos += size
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise FormatError(f"an entry bundle holds 1..{TILE_WIDTH} entries, found {len(entries)}")
    if expected_count is not None and len(entries) != expected_count:
        raise FormatError(f"entry bundle holds {len(entries)} entries, expected {expected_count}")
    return entries


def encode_tile(hashes: Sequence[bytes]) -> bytes:
    """Concatenate 1..256 hashes into a hash tile.

    Raises:
        ValueError: the count is out of range or a hash is not 32 bytes.
    """
    if not 1 <= len(hashes) <= TILE_WIDTH:
        raise ValueError(f"a hash tile holds 1..{TILE_WIDTH} hashes, got {len(hashes)}")
    data = b"".join(hashes)
    if len(data) != len(hashes) * HASH_SIZE or any(len(h) != HASH_SIZE for h in hashes):
        raise ValueError(f"tile hashes must be {HASH_SIZE} bytes each")
    return data


def decode_tile(data: bytes, expected_width: int | None = None) -> list[bytes]:
    """Split a hash tile into its hashes.

    Raises:
        FormatError: the length is not a multiple of 32, the tile is empty or wider than
            256, or it does not hold ``expected_width`` hashes.
    """
    count, rest = divmod(len(data), HASH_SIZE)
    if rest:
        raise FormatError(f"hash tile is {len(data)} bytes, not a multiple of {HASH_SIZE}")
    if not 1 <= count <= TILE_WIDTH:
        raise FormatError(f"a hash tile holds 1..{TILE_WIDTH} hashes, found {count}")
    if expected_width is not None and count != expected_width:
        raise FormatError(f"hash tile holds {count} hashes, expected {expected_width}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


# --- which tiles a tree size has -------------------------------------------------------------


def _levels(size: int) -> range:
    """Tile levels that hold at least one hash for a tree of ``size``."""
    return range((size.bit_length() + TILE_HEIGHT - 1) // TILE_HEIGHT)


def _rightmost(size: int, level: int) -> tuple[int, int]:
    """(index, width) of the rightmost tile at ``level``; width 0 if there is none."""
    count = size >> (TILE_HEIGHT * level)
    return count >> TILE_HEIGHT, count & _MASK


def tiles_for_size(size: int) -> list[TileId]:
    """Every hash tile and entry bundle of a tree of ``size``, full and partial, sorted."""
    tiles: list[TileId] = []
    for level in (ENTRIES_LEVEL, *_levels(size)):
        full, width = _rightmost(size, max(level, 0))
        tiles.extend(TileId(level, n) for n in range(full))
        if width:
            tiles.append(TileId(level, full, width))
    return tiles


def right_edge(size: int) -> list[TileId]:
    """The partial tiles of a tree of ``size``: the bundle first, then each hash level."""
    tiles: list[TileId] = []
    for level in (ENTRIES_LEVEL, *_levels(size)):
        full, width = _rightmost(size, max(level, 0))
        if width:
            tiles.append(TileId(level, full, width))
    return tiles


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
        writer._tiles = [[] for _ in _levels(size)] or [[]]
        for tile in right_edge(size):
            if not tile.is_bundle:
                writer._tiles[tile.level] = decode_tile(read_tile(tile), tile.width)
        writer._level0 = writer._tiles[0]
        for hashes in reversed(writer._tiles):  # the compact range holds the largest first
            for sub, i in perfect_subtrees(0, len(hashes)):
                writer._stack.append(perfect_root(hashes[i << sub : (i + 1) << sub]))
        writer._flushed = [_rightmost(size, level) for level in range(len(writer._tiles))]
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

    def flush(self) -> list[tuple[TileId, bytes]]:
        """Return the encoded hash tiles that changed since the last flush, sorted.

        That is every full tile completed since then, plus the partial tile of each level
        whose width is > 0 and that differs from the one last flushed. Entry bundles are
        the caller's job.
        """
        out, self._done = self._done, []
        flushed = self._flushed
        for level in _levels(self._size):
            edge = _rightmost(self._size, level)
            if level == len(flushed):
                flushed.append((0, 0))
            if edge[1] and edge != flushed[level]:
                out.append((TileId(level, *edge), b"".join(self._tiles[level])))
            flushed[level] = edge
        out.sort()
        return out


class TileNodeReader:
    """NodeReader over stored hash tiles for a given tree size, with an LRU of decoded tiles.

    Node ``(l, i)`` lives in tile level ``l // 8``; the node is the root of ``2 ** (l % 8)``
    consecutive hashes of that tile, which is hashed here. The tile read is the full one,
    or the partial one of the width the tree size implies.
    """

    def __init__(
        self, size: int, read_tile: Callable[[TileId], bytes], cache_tiles: int = 64
    ) -> None:
        """Read the tiles of the tree of ``size`` through ``read_tile``.

        Args:
            size: tree size whose tiles (including partial ones) exist in storage.
            read_tile: returns the stored bytes of one tile.
            cache_tiles: how many decoded tiles to keep (least recently used goes first).
        """
        self._size = size
        self._read_tile = read_tile
        self._cache_tiles = max(cache_tiles, 1)
        self._cache: OrderedDict[TileId, list[bytes]] = OrderedDict()

    def _tile(self, tile: TileId) -> list[bytes]:
        hashes = self._cache.get(tile)
        if hashes is None:
            hashes = decode_tile(self._read_tile(tile), expected_width=tile.width)
            self._cache[tile] = hashes
            if len(self._cache) > self._cache_tiles:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(tile)
        return hashes

    def __call__(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the hash of each node, in order.

        Raises:
            ValueError: a node is not a complete perfect subtree of the tree.
            FormatError: a stored tile does not decode to the expected width.
        """
        out: list[bytes] = []
        for level, index in nodes:
            if level < 0 or index < 0 or (index + 1) << level > self._size:
                raise ValueError(f"node ({level}, {index}) is not in a tree of size {self._size}")
            tile_level, sub = divmod(level, TILE_HEIGHT)
            first = index << sub  # first stored hash of tile level, global index
            n, offset = first >> TILE_HEIGHT, first & _MASK
            full, width = _rightmost(self._size, tile_level)
            tile = TileId(tile_level, n) if n < full else TileId(tile_level, n, width)
            hashes = self._tile(tile)
            out.append(perfect_root(hashes[offset : offset + (1 << sub)]))
        return out
