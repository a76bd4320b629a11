"""Reading a sealed log: entries, inclusion and consistency proofs, from tiles alone.

Proofs are computed from the stored hash tiles (``TileNodeReader``), touching O(log n)
tiles, so they cost the same at ten entries or ten million and need nothing in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from auditseal.core.checkpoint import VerifiedCheckpoint
from auditseal.core.proofs import consistency_proof, inclusion_proof
from auditseal.core.tiles import TILE_WIDTH, bundle_path, decode_bundle
from auditseal.core.tiletree import TileNodeReader
from auditseal.core.tlogproof import TlogProof
from auditseal.log.edge_hint import edge_nodes
from auditseal.verify.source import LogSource


class LogReader:
    """Read-only view of a log at one verified checkpoint."""

    def __init__(self, source: LogSource, checkpoint: VerifiedCheckpoint, cache_tiles: int = 64,
                 edge: Sequence[bytes] | None = None) -> None:
        """Serve reads and proofs for the tree of ``checkpoint``.

        ``edge``: the tree's compact range if known (``LocalLog.edge_hint``); used only if it
        folds to the checkpoint's root, it spares proofs the right edge's partial tiles.
        """
        self.source = source
        self.checkpoint = checkpoint
        self._nodes = TileNodeReader(
            checkpoint.size, lambda tile: source.read(tile.path), cache_tiles=cache_tiles,
            known=edge_nodes(checkpoint, edge),
        )

    @property
    def size(self) -> int:
        """Entries in the checkpointed tree."""
        return self.checkpoint.size

    def entry(self, index: int) -> bytes:
        """The entry at ``index`` as sealed.

        Raises:
            IndexError: ``index`` is outside the checkpointed tree.
            ObjectNotFound / FormatError: the bundle is missing or damaged.
        """
        self._check_index(index)
        bundle = index // TILE_WIDTH
        width = min(TILE_WIDTH, self.size - bundle * TILE_WIDTH)
        entries = decode_bundle(self.source.read(bundle_path(bundle, width)), expected_count=width)
        return entries[index % TILE_WIDTH]

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(index, entry)`` for ``start <= index < end`` (default: to the size),
        reading each bundle once."""
        for first, entries in self.bundles(start, end):
            yield from enumerate(entries, first)

    def bundles(self, start: int = 0, end: int | None = None
                ) -> Iterator[tuple[int, list[bytes]]]:
        """Yield ``(index of the first, entries)`` for ``start <= index < end``, one entry
        bundle's worth at a time (each bundle read once)."""
        end = self.size if end is None else min(end, self.size)
        index = max(start, 0)
        while index < end:
            bundle = index // TILE_WIDTH
            width = min(TILE_WIDTH, self.size - bundle * TILE_WIDTH)
            data = self.source.read(bundle_path(bundle, width))
            entries = decode_bundle(data, expected_count=width)
            stop = min(end, bundle * TILE_WIDTH + width)
            yield index, entries[index - bundle * TILE_WIDTH : stop - bundle * TILE_WIDTH]
            index = stop

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the checkpointed tree."""
        self._check_index(index)
        return inclusion_proof(index, self.size, self._nodes)

    def tlog_proof(self, index: int, *, with_entry: bool = True) -> TlogProof:
        """A C2SP tlog-proof for ``index``; the entry rides in ``extra`` when asked.

        ``extra`` is unauthenticated in the format, but a verifier recomputes the leaf hash
        from it, so a changed entry fails the inclusion check.
        """
        return TlogProof(
            index=index,
            hashes=tuple(self.inclusion_proof(index)),
            checkpoint=self.checkpoint.note_bytes,
            extra=self.entry(index) if with_entry else None,
        )

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 9162 consistency proof from size ``old_size`` to the checkpointed size."""
        if not 0 <= old_size <= self.size:
            raise IndexError(f"old size {old_size} is outside 0..{self.size}")
        return consistency_proof(old_size, self.size, self._nodes)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.size:
            held = f"it holds entries 0..{self.size - 1}" if self.size else "it is empty"
            raise IndexError(f"entry {index} is not in the log: {held}")
