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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from auditseal.core.checkpoint import VerifiedCheckpoint, parse_unverified, verify_checkpoint
from auditseal.core.hashing import HASH_SIZE, leaf_hash
from auditseal.core.layout import HEAD_KEY, HISTORY_PREFIX, parse_history_key
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
from auditseal.errors import FormatError, IntegrityError, ObjectNotFound
from auditseal.verify.report import VerifyReport
from auditseal.verify.source import LogSource

Progress = Callable[[int, int], None]
"""Called with (entries done, entries in all) as verification advances."""


@dataclass
class _Trusted:
    checkpoints: dict[int, VerifiedCheckpoint]
    size: int


def verify_log(
    source: LogSource,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    head: bytes | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify the log readable through ``source`` against the trusted ``verifiers``.

    Args:
        source: read access to the tree.
        verifiers: the keys the auditor trusts; anything else is "unknown key".
        origin: the expected log origin, if the auditor knows it.
        head: the head checkpoint bytes when the head lives apart from ``source``;
            by default the tlog-tiles ``checkpoint`` object is read from ``source``.
        progress: optional callback for a progress bar.
    """
    started = time.perf_counter()
    report = VerifyReport()
    trusted = _check_checkpoints(source, verifiers, origin, head, report)
    report.size = trusted.size
    if trusted.checkpoints:
        newest = trusted.checkpoints[trusted.size]
        report.origin = newest.origin
        report.root_hash = newest.root_hash.hex()
    _check_tree(source, trusted, report, progress)
    report.seconds = time.perf_counter() - started
    return report


# -- checkpoints ---------------------------------------------------------------------------


def _check_checkpoints(
    source: LogSource,
    verifiers: Sequence[NoteVerifier],
    origin: str | None,
    head: bytes | None,
    report: VerifyReport,
) -> _Trusted:
    checkpoints: dict[int, VerifiedCheckpoint] = {}
    for key in source.list(HISTORY_PREFIX):
        try:
            named = parse_history_key(key)
        except FormatError:
            report.warning("unexpected object", key, "not a checkpoint history name")
            continue
        checked = _open_checkpoint(source.read(key), key, verifiers, origin, report)
        if checked is None:
            continue
        if checked.size != named:
            report.error("misnamed", key, f"holds the checkpoint of size {checked.size}")
            continue
        checkpoints[named] = checked
        report.checkpoints_checked += 1
    if head is None:
        try:
            head = source.read(HEAD_KEY)
        except ObjectNotFound:
            report.error("missing", HEAD_KEY, "the log has no head checkpoint")
    newest = max(checkpoints, default=0)
    if head is not None:
        current = _open_checkpoint(head, HEAD_KEY, verifiers, origin, report)
        if current is not None:
            report.checkpoints_checked += 1
            _compare_head(current, checkpoints, newest, report)
            checkpoints.setdefault(current.size, current)
    return _Trusted(checkpoints=checkpoints, size=max(checkpoints, default=0))


def _open_checkpoint(
    data: bytes, where: str, verifiers: Sequence[NoteVerifier], origin: str | None,
    report: VerifyReport,
) -> VerifiedCheckpoint | None:
    try:
        return verify_checkpoint(data, verifiers, origin=origin)
    except IntegrityError as exc:
        detail = exc.detail
        try:
            claimed = parse_unverified(data)
            detail = f"{detail} (claims origin {claimed.origin!r}, size {claimed.size})"
        except FormatError:
            pass
        report.error(exc.what, where, detail)
    except FormatError as exc:
        report.error("corrupt", where, str(exc))
    return None


def _compare_head(
    head: VerifiedCheckpoint, history: dict[int, VerifiedCheckpoint], newest: int,
    report: VerifyReport,
) -> None:
    if head.size < newest:
        report.error(
            "rolled back", HEAD_KEY,
            f"the head is the checkpoint of size {head.size}, but the log already "
            f"published size {newest}",
        )
    same = history.get(head.size)
    if same is not None and same.root_hash != head.root_hash:
        report.error(
            "forked", HEAD_KEY,
            f"size {head.size} with root {head.root_hash.hex()}, but the history holds "
            f"root {same.root_hash.hex()} for that size",
        )
    elif same is None and history:
        report.warning("not in history", HEAD_KEY, f"no history copy of size {head.size}")


# -- the tree ------------------------------------------------------------------------------


class _TreeCheck:
    """Streams the entries once, rebuilding tiles and comparing as it goes."""

    def __init__(self, source: LogSource, trusted: _Trusted, report: VerifyReport) -> None:
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

    def check_bundle(self, index: int) -> bool:
        width = min(TILE_WIDTH, self.size - index * TILE_WIDTH)
        key = bundle_path(index, width)
        try:
            data = self.source.read(key)
        except ObjectNotFound:
            self.report.error("missing", key, f"entries {index * TILE_WIDTH}.. cannot be checked")
            return False
        try:
            entries = decode_bundle(data, expected_count=width)
        except FormatError as exc:
            self.report.error("truncated", key, str(exc))
            return False
        self._check_partials((ENTRIES_LEVEL, index), data)
        first = index * TILE_WIDTH
        for offset, entry in enumerate(entries):
            self.tiles.append(leaf_hash(entry))
            self.report.bytes_hashed += len(entry)
            root = self.roots.get(first + offset + 1)
            if root is not None:
                self._check_root(first + offset + 1, root)
        self.report.entries_checked += len(entries)
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


def _check_tree(
    source: LogSource, trusted: _Trusted, report: VerifyReport, progress: Progress | None
) -> None:
    check = _TreeCheck(source, trusted, report)
    check.index_stored_objects()
    if 0 in check.roots:
        check._check_root(0, check.roots[0])
    bundles = -(-trusted.size // TILE_WIDTH)
    for index in range(bundles):
        if not check.check_bundle(index):
            check._blame()
            report.error(
                "incomplete", f"entries {index * TILE_WIDTH}..{trusted.size - 1}",
                "verification stopped at the first unreadable bundle",
            )
            return
        if progress is not None:
            progress(report.entries_checked, trusted.size)
    check.finish()
