"""Adopting entry bundles found beyond the signed checkpoint after a crash.

A large group commit is sealed directly (bundles, tiles, checkpoint) instead of passing
through the journal, so each byte is written once. If the writer dies during that seal,
bundles may exist beyond the last checkpoint that hold entries nobody acknowledged; a
later, different entry at the same index would then collide with them (create-if-absent
refuses different bytes). So on start the writer adopts them: it reads the bundles past
the checkpoint in index order and seals their entries as if they had just arrived.

This is sound because the filesystem store links a batch's objects in list order,
bundles (in index order) before tiles: a SIGKILL leaves a prefix of them, never a gap.
Stores that upload in parallel (Azure) never seal directly, so they never need this.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditseal.core.tiles import TILE_WIDTH, bundle_path, decode_bundle
from auditseal.errors import EntryMismatch, FormatError, ObjectNotFound
from auditseal.storage.base import ObjectStore


def orphan_entries(store: ObjectStore, size: int, sealed_partial: Sequence[bytes]
                   ) -> list[bytes]:
    """Entries stored in bundles at indexes >= ``size``, contiguous from ``size``.

    Args:
        store: the log's objects.
        size: the signed tree size.
        sealed_partial: the entries of the partial bundle at ``size`` (size % 256 of them).

    Raises:
        EntryMismatch: a bundle past the checkpoint disagrees with the sealed entries
            before it (not a crash leftover: someone changed the log).
    """
    found: list[bytes] = []
    index = size // TILE_WIDTH
    known = list(sealed_partial)  # entries of bundle `index` already sealed
    while True:
        entries = _widest_bundle(store, index)
        if entries is None or len(entries) <= len(known):
            return found
        if entries[: len(known)] != known:
            raise EntryMismatch(
                what="modified", where=f"bundle {index}",
                detail="a bundle past the signed checkpoint disagrees with sealed entries",
            )
        found.extend(entries[len(known):])
        if len(entries) < TILE_WIDTH:
            return found
        index, known = index + 1, []


def _widest_bundle(store: ObjectStore, index: int) -> list[bytes] | None:
    try:
        return decode_bundle(store.read(bundle_path(index)), TILE_WIDTH)
    except ObjectNotFound:
        pass
    except FormatError:
        return None  # a damaged full bundle is not adopted; verify will report it
    widths = []
    prefix = bundle_path(index) + ".p/"
    for key in store.list(prefix):
        tail = key[len(prefix):]
        if tail.isdigit():
            widths.append(int(tail))
    for width in sorted(widths, reverse=True):
        try:
            return decode_bundle(store.read(prefix + str(width)), width)
        except FormatError:
            continue
    return None
