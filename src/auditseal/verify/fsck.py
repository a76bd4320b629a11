"""Full verification of a log: re-derive everything from the stored entries.

Checks, in order:

1. The head checkpoint and every checkpoint in the history: parse, signature by a
   trusted key, name matches size, sizes strictly increasing; the head is the newest
   (otherwise it was rolled back) and agrees with the history copy of its size.
2. Every entry bundle up to the newest trusted size is read and every entry hashed; the
   tree is rebuilt with ``TileWriter`` and its root compared with each checkpoint at that
   size (a validly signed root that the entries do not produce is a fork). Because all
   roots come from one sequence of entries, consecutive checkpoints are consistent.
3. Every stored hash tile is compared with the rebuilt one, and every partial tile or
   bundle (written at earlier publishes) must be a prefix of the rebuilt object. A level-0
   difference names the entry: modified, or reordered when two entries swapped places.

Like Tessera's ``fsck`` this trusts nothing it reads except the verifier keys it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat

from auditseal.core.hashing import HASH_SIZE, leaf_hash
from auditseal.core.notekeys import NoteVerifier
from auditseal.core.tiles import (
    ENTRIES_LEVEL,
    TILE_WIDTH,
    TileId,
    bundle_path,
    decode_bundle,
    parse_tile_path,
    right_edge,
)
from auditseal.core.tiletree import TileWriter
from auditseal.errors import FormatError, ObjectNotFound
from auditseal.verify.checkpoints import Trusted, check_checkpoints
from auditseal.verify.report import VerifyReport
from auditseal.verify.source import LogSource

Progress = Callable[[int, int], None]
"""Called with (entries done, entries in all) as verification advances."""


def verify_log(
    source: LogSource,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    head: bytes | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> VerifyReport:
    """Verify the log readable through ``source`` against the trusted ``verifiers``.

    Args:
        source: read access to the tree.
        verifiers: the keys the auditor trusts; anything else is "unknown key".
        origin: the expected log origin, if the auditor knows it.
        head: the head checkpoint bytes when the head lives apart from ``source``;
            by default the tlog-tiles ``checkpoint`` object is read from ``source``.
        progress: optional callback for a progress bar.
        workers: processes that read and hash entries in parallel (the tree itself is
            rebuilt in this process); ``source`` must then be picklable.
    """
    started = time.perf_counter()
    report = VerifyReport()
    trusted = check_checkpoints(source, verifiers, origin, head, report)
    report.size = trusted.size
    if trusted.checkpoints:
        newest = trusted.checkpoints[trusted.size]
        report.origin = newest.origin
        report.root_hash = newest.root_hash.hex()
    _check_tree(source, trusted, report, progress, workers)
    report.seconds = time.perf_counter() - started
    return report


# -- the tree ------------------------------------------------------------------------------


class _TreeCheck:
    """Streams the entries once, rebuilding tiles and comparing as it goes."""

    def __init__(self, source: LogSource, trusted: Trusted, report: VerifyReport) -> None:
        self.source = source
        self.report = report
        self.size = trusted.size
        self.roots = {size: cp.root_hash for size, cp in trusted.checkpoints.items()}
        self.tiles = TileWriter()
        self.partials: dict[tuple[int, int], list[TileId]] = {}
        self.bad_leaves: dict[bytes, int] = {}  # stored leaf hash -> index, for swap detection
        self.leaf_diffs: list[tuple[str, int, int | None]] = []  # (tile, index, swapped with)
        self.root_mismatches: list[tuple[int, bytes, bytes]] = []  # (size, signed, computed)
        self.partial_edge: dict[int, tuple[TileId, bytes]] = {}

    def index_stored_objects(self) -> None:
        for key in self.source.list("tile/"):
            try:
                tile = parse_tile_path(key)
            except FormatError:
                self.report.warning("unexpected object", key, "not a tlog-tiles path")
                continue
            if tile.is_partial:
                self.partials.setdefault((tile.level, tile.index), []).append(tile)
            elif _tile_end(tile) > self.size:
                self.report.warning(
                    "beyond checkpoint", key, f"covers entries past the signed size {self.size}"
                )

    def absorb_bundle(self, index: int, hashed: HashedBundle) -> bool:
        """Take one bundle's leaf hashes into the rebuilt tree; False if it was unreadable."""
        key = bundle_path(index, min(TILE_WIDTH, self.size - index * TILE_WIDTH))
        if isinstance(hashed, str):
            if hashed == _MISSING:
                self.report.error("missing", key,
                                  f"entries {index * TILE_WIDTH}.. cannot be checked")
            else:
                self.report.error("truncated", key, hashed)
            return False
        leaves, hashed_bytes = hashed
        if (ENTRIES_LEVEL, index) in self.partials:
            self._check_partials((ENTRIES_LEVEL, index), self.source.read(key))
        first = index * TILE_WIDTH
        append, roots = self.tiles.append, self.roots
        count = len(leaves) // HASH_SIZE
        for offset in range(count):
            append(leaves[offset * HASH_SIZE : (offset + 1) * HASH_SIZE])
            root = roots.get(first + offset + 1)
            if root is not None:
                self._check_root(first + offset + 1, root)
        self.report.entries_checked += count
        self.report.bytes_hashed += hashed_bytes
        for tile, computed in self.tiles.flush():
            if tile.is_partial:
                self.partial_edge[tile.level] = (tile, computed)
            else:
                self.partial_edge.pop(tile.level, None)
                self._check_tile(tile, computed)
        return True

    def finish(self) -> None:
        """Check the right edge and what was never reached, then attribute differences."""
        for tile in right_edge(self.size):
            if tile.is_bundle:
                continue
            computed = self.partial_edge.get(tile.level)
            if computed is None or computed[0] != tile:
                continue
            self._check_tile(tile, computed[1])
        for (level, index), stored in sorted(self.partials.items()):
            for tile in stored:
                self.report.warning(
                    "beyond checkpoint", tile.path,
                    f"partial {'bundle' if level == ENTRIES_LEVEL else 'tile'} {index} is not "
                    f"covered by the signed size {self.size}",
                )
        self._blame()

    def _check_root(self, size: int, root: bytes) -> None:
        computed = self.tiles.root()
        if computed != root:
            self.root_mismatches.append((size, root, computed))

    def _check_tile(self, tile: TileId, computed: bytes) -> None:
        self.report.tiles_checked += 1
        try:
            stored = self.source.read(tile.path)
        except ObjectNotFound:
            self.report.error("missing", tile.path, "hash tile")
            self._check_partials((tile.level, tile.index), computed)
            return
        # Earlier partials must be prefixes of the stored tile; whether the stored tile
        # agrees with the entries is judged below, with the blame for either side.
        self._check_partials((tile.level, tile.index), stored)
        if stored == computed:
            return
        if len(stored) != len(computed):
            self.report.error(
                "truncated" if len(stored) < len(computed) else "corrupt", tile.path,
                f"{len(stored)} bytes, expected {len(computed)}",
            )
            return
        if tile.level != 0:
            self.report.error("modified", tile.path, "stored hashes differ from the rebuilt tile")
            return
        self._locate_entries(tile, stored, computed)

    def _locate_entries(self, tile: TileId, stored: bytes, computed: bytes) -> None:
        """Record which leaves of a level-0 tile differ; ``finish`` decides who is at fault."""
        base = tile.index * TILE_WIDTH
        for slot in range(len(computed) // HASH_SIZE):
            span = slice(slot * HASH_SIZE, (slot + 1) * HASH_SIZE)
            if stored[span] == computed[span]:
                continue
            index = base + slot
            partner = self.bad_leaves.pop(computed[span], None)
            if partner is not None:
                self.leaf_diffs.append((tile.path, partner, index))
            else:
                self.bad_leaves[stored[span]] = index
                self.leaf_diffs.append((tile.path, index, None))

    def _blame(self) -> None:
        """Attribute leaf and root differences to entries, tiles, or the checkpoints.

        If the entries still give every signed root, a differing level-0 tile is what was
        changed; if they do not, the entries were (and the tile shows which ones).
        """
        swapped = {i for _, a, b in self.leaf_diffs if b is not None for i in (a, b)}
        if self.leaf_diffs and not self.root_mismatches:
            for path in sorted({path for path, _, _ in self.leaf_diffs}):
                self.report.error("modified", path, "stored hashes differ from the entries, "
                                  "which still give every signed root")
            return
        for path, first, second in self.leaf_diffs:
            if second is not None:
                self.report.error(
                    "reordered", f"entries {first} and {second}",
                    f"each entry's hash stands at the other's position in {path}: "
                    "the entries were swapped",
                )
            elif first not in swapped:
                self.report.error(
                    "modified", f"entry {first}",
                    f"its leaf hash differs from the one sealed in {path}",
                )
        first_changed = min((d[1] for d in self.leaf_diffs), default=None)
        for size, signed, computed in self.root_mismatches:
            cause = (
                f"entries were changed (first at entry {first_changed})"
                if first_changed is not None
                else "the signed root is not produced by the stored entries and tiles: "
                "a forked or rewritten log"
            )
            self.report.error(
                "forked" if first_changed is None else "root mismatch",
                f"checkpoint size {size}",
                f"signed root {signed.hex()}, entries give {computed.hex()}; {cause}",
            )

    def _check_partials(self, tile: tuple[int, int], full: bytes) -> None:
        for partial in self.partials.pop(tile, []):
            stored = self._read_or_none(partial.path)
            expected_len = _prefix_length(partial, full)
            if stored is None:
                continue
            if expected_len is None:
                self.report.warning(
                    "beyond checkpoint", partial.path, "wider than the signed tree")
            elif stored != full[:expected_len]:
                self.report.error(
                    "modified", partial.path,
                    "an earlier partial object disagrees with the sealed entries",
                )

    def _read_or_none(self, key: str) -> bytes | None:
        try:
            return self.source.read(key)
        except ObjectNotFound:
            return None


def _prefix_length(partial: TileId, full: bytes) -> int | None:
    """Bytes of ``full`` that ``partial`` should equal; None if it claims more than exist."""
    if partial.is_bundle:
        offset = 0
        for _ in range(partial.width):
            if offset + 2 > len(full):
                return None
            offset += 2 + int.from_bytes(full[offset : offset + 2], "big")
        return offset
    length = partial.width * HASH_SIZE
    return length if length <= len(full) else None


def _tile_end(tile: TileId) -> int:
    """One past the last entry index the tile covers."""
    level = 0 if tile.is_bundle else tile.level
    return (tile.index * TILE_WIDTH + tile.width) << (8 * level)


HashedBundle = tuple[bytes, int] | str
"""A bundle's concatenated leaf hashes and entry bytes, or why it could not be read."""
_MISSING = "missing"
_CHUNK_BUNDLES = 16  # bundles per task handed to a worker process


def hash_bundles(source: LogSource, size: int, first: int, end: int) -> list[HashedBundle]:
    """Read bundles ``first .. end-1`` of a tree of ``size`` and hash their entries.

    A module-level function so that worker processes can run it: reading, decoding and
    hashing the entries is most of verification's work, and it needs no shared state.
    """
    out: list[HashedBundle] = []
    for index in range(first, end):
        width = min(TILE_WIDTH, size - index * TILE_WIDTH)
        try:
            entries = decode_bundle(source.read(bundle_path(index, width)), width)
        except ObjectNotFound:
            out.append(_MISSING)
            continue
        except FormatError as exc:
            out.append(str(exc))
            continue
        out.append((b"".join([leaf_hash(e) for e in entries]), sum(map(len, entries))))
    return out


def _hashed_bundles(source: LogSource, size: int, workers: int) -> Iterator[HashedBundle]:
    """Every bundle's leaf hashes in order, hashed by ``workers`` processes when > 1."""
    bundles = -(-size // TILE_WIDTH)
    if workers <= 1 or bundles < 2:
        for start in range(0, bundles, _CHUNK_BUNDLES):
            yield from hash_bundles(source, size, start, min(start + _CHUNK_BUNDLES, bundles))
        return
    # Chunks small enough that every worker gets several (load balance), large enough
    # that a task's overhead is small next to hashing 16 x 256 entries.
    chunk = max(1, min(_CHUNK_BUNDLES, bundles // (4 * workers)))
    starts = range(0, bundles, chunk)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(
            hash_bundles, repeat(source), repeat(size), starts,
            [min(start + chunk, bundles) for start in starts],
        )
        for hashed in results:
            yield from hashed


def _check_tree(
    source: LogSource, trusted: Trusted, report: VerifyReport, progress: Progress | None,
    workers: int,
) -> None:
    check = _TreeCheck(source, trusted, report)
    check.index_stored_objects()
    if 0 in check.roots:
        check._check_root(0, check.roots[0])
    for index, hashed in enumerate(_hashed_bundles(source, trusted.size, workers)):
        if not check.absorb_bundle(index, hashed):
            check._blame()
            report.error(
                "incomplete", f"entries {index * TILE_WIDTH}..{trusted.size - 1}",
                "verification stopped at the first unreadable bundle",
            )
            return
        if progress is not None:
            progress(report.entries_checked, trusted.size)
    check.finish()
