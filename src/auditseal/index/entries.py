"""The sealed entries a feed indexes, a bundle at a time, with their stored leaf hashes.

Concept: the *feed's view of the log*. A row carries its entry's leaf hash, SHA-256 over
the whole entry (~2 KB): recomputing it was ~3 us per event. The level-0 hash tiles
already hold exactly those hashes, 256 per tile, aligned with the entry bundles (tile
``tile/0/N`` covers bundle ``tile/entries/N``, with the same width), so the feed reads them
instead: 8 KB per 256 entries.

The index is derived data and never trusted: ``auditseal verify`` is what proves that the
tiles hash the entries, and :func:`auditseal.index.duckdb_index.check_index` re-derives
its copy with ``stored=False`` (hashing every entry), so an index row whose leaf hash
disagrees with its entry is still found, even when a tampered tile put it there. A tile
that is missing or of the wrong size is not an error here either: those entries are hashed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from auditseal.core.hashing import HASH_SIZE, leaf_hash
from auditseal.core.tiles import TILE_WIDTH, tile_path
from auditseal.errors import AuditsealError
from auditseal.index.rows import Row, derive_event_row
from auditseal.log.reader import LogReader

__all__ = ["FIRST_BATCH", "Bundle", "bundles", "row_batches"]

FIRST_BATCH = 4096
"""Rows in a feed's first batch (see :func:`row_batches`)."""

Bundle = tuple[int, Sequence[bytes], Sequence[bytes]]
"""(log index of the first entry, the entries, their leaf hashes), entries in log order."""


def bundles(reader: LogReader, start: int, end: int, *, stored: bool = True
            ) -> Iterator[Bundle]:
    """The entries ``start <= index < end`` of ``reader``'s tree, a bundle at a time.

    Args:
        stored: take the leaf hashes from the level-0 tiles (the feed); False hashes every
            entry (the check, which must not trust the tiles).
    """
    for index, entries in reader.bundles(start, end):
        number, skip = divmod(index, TILE_WIDTH)
        width = min(TILE_WIDTH, reader.size - number * TILE_WIDTH)
        hashes = _tile_hashes(reader, number, width) if stored else None
        if hashes is None:
            hashes = [leaf_hash(entry) for entry in entries]
        else:
            hashes = hashes[skip : skip + len(entries)]
        yield index, entries, hashes


def _tile_hashes(reader: LogReader, number: int, width: int) -> list[bytes] | None:
    """The leaf hashes of bundle ``number`` from its level-0 tile, or None without one."""
    try:
        data = reader.source.read(tile_path(0, number, width))
    except AuditsealError:  # missing or unreadable: derived data, so hash the entries
        return None
    if len(data) != width * HASH_SIZE:
        return None
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def row_batches(reader: LogReader, start: int, end: int, batch: int, *, stored: bool = True
                ) -> Iterator[tuple[int, list[Row]]]:
    """(log index of the first row, rows) of at most ``batch`` entries from ``start`` to
    ``end``, ``_Event`` as bytes (:func:`~auditseal.index.rows.derive_event_row`).

    The first batches are smaller (:data:`FIRST_BATCH`, doubling up to ``batch``): the feed
    commits one batch while it derives the next, so a feed of one or two full batches would
    otherwise derive everything before DuckDB stores anything.
    """
    rows: list[Row] = []
    first = max(start, 0)
    size = min(batch, FIRST_BATCH)
    for index, entries, hashes in bundles(reader, start, end, stored=stored):
        rows.extend(map(derive_event_row, range(index, index + len(entries)), entries, hashes))
        while len(rows) >= size:
            yield first, rows[:size]
            first, rows = first + size, rows[size:]
            size = min(size * 2, batch)
    if rows:
        yield first, rows
