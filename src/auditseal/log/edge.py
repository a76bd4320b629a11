"""The sealed tree's right edge: what sealing a batch adds to the write-once tree.

Concept: extending a C2SP tlog-tiles tree by a batch of entries. The edge is the partial
entry bundle and the hash tiles' right edge (:class:`~auditseal.core.tiletree.TileWriter`);
extending it yields the objects to create: every bundle the batch completes, the new
partial bundle, and the full and partial hash tiles. Kept between publishes so that the
writer never reads its own tree back; rebuilt from storage (:meth:`TreeEdge.resume`) after
a failed publish, since a half-extended edge is in an unknown state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from auditseal.core.hashing import leaf_hash
from auditseal.core.tiles import TILE_WIDTH, bundle_path, decode_bundle, encode_bundle
from auditseal.core.tiletree import TileWriter

__all__ = ["TreeEdge"]


@dataclass
class TreeEdge:
    """The right edge of a tree of ``size`` entries."""

    size: int = 0
    tiles: TileWriter = field(default_factory=TileWriter)
    bundle: list[bytes] = field(default_factory=list)  # entries of the partial bundle

    @classmethod
    def resume(cls, size: int, read: Callable[[str], bytes]) -> TreeEdge:
        """Rebuild the edge of a stored tree of ``size`` entries from its objects."""
        tiles = TileWriter.resume(size, lambda tile: read(tile.path))
        partial = size % TILE_WIDTH
        bundle: list[bytes] = []
        if partial:
            data = read(bundle_path(size // TILE_WIDTH, partial))
            bundle = decode_bundle(data, expected_count=partial)
        return cls(size, tiles, bundle)

    def extend(self, batch: list[bytes], leaves: Sequence[bytes] | None = None
               ) -> list[tuple[str, bytes]]:
        """Add ``batch`` (``leaves``: their leaf hashes, if already computed).

        Returns the objects to create (path, bytes), bundles first.
        """
        self.tiles.extend(map(leaf_hash, batch) if leaves is None else leaves)
        objects: list[tuple[str, bytes]] = []
        bundle_index = self.size // TILE_WIDTH
        bundle = self.bundle
        # Fill the partial bundle, then whole bundles by slicing: no per-entry bookkeeping.
        taken = TILE_WIDTH - len(bundle)
        bundle.extend(batch[:taken])
        while len(bundle) == TILE_WIDTH:
            objects.append((bundle_path(bundle_index), encode_bundle(bundle)))
            bundle_index += 1
            bundle = batch[taken : taken + TILE_WIDTH]
            taken += TILE_WIDTH
        if bundle and batch:
            objects.append((bundle_path(bundle_index, len(bundle)), encode_bundle(bundle)))
        objects.extend((tile.path, data) for tile, data in self.tiles.flush())
        self.bundle = bundle
        self.size += len(batch)
        return objects

    def root(self) -> bytes:
        """The tree's root hash."""
        return self.tiles.root()
