"""The edge hint: the latest tree's compact range, kept so that a cold proof need not rebuild it.

Concept: an inclusion or consistency proof near the right edge of the tree needs the hashes
of the edge's perfect subtrees (``perfect_subtrees(0, size)``). Read from the tiles alone,
that means reading the partial tile of every level and hashing it up: at 10 M entries about
300 of a proof's ~900 SHA-256 calls, a third of a cold proof. The writer already holds
those hashes (one per set bit of the size) after each publish, so it leaves them beside
the head in the log's private state, and a reader takes them instead.

The hint is *not trusted*: :func:`edge_nodes` accepts it only when its hashes fold to the
signed checkpoint's root, so a stale, torn or edited hint is ignored (proofs then come from
the tiles, as for any log without one, e.g. one fetched from a static web server). It is
outside the tlog-tiles tree and is mutable (replaced on every publish), so it lives in the
private state folder, written without fsync: losing it costs speed, never correctness.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import orjson

from auditseal.core.checkpoint import VerifiedCheckpoint
from auditseal.core.merkle import CompactRange
from auditseal.storage.durable import replace_file

__all__ = ["EDGE_HINT_NAME", "edge_nodes", "load_edge_hint", "save_edge_hint"]

EDGE_HINT_NAME = "edge-hint.json"
_FORMAT = 1


def save_edge_hint(path: Path, size: int, hashes: Sequence[bytes]) -> None:
    """Replace the hint at ``path`` with the compact range of the tree of ``size``.

    Best effort: a failure to write it is not an error of the publish it follows.
    """
    data = orjson.dumps({"format": _FORMAT, "size": size, "hashes": [h.hex() for h in hashes]})
    with contextlib.suppress(OSError):
        replace_file(path, data, fsync=False)


def load_edge_hint(path: Path, size: int) -> tuple[bytes, ...] | None:
    """The hint's hashes if it describes a tree of ``size``; None if absent or unreadable."""
    try:
        hint = orjson.loads(path.read_bytes())
        if hint["format"] != _FORMAT or hint["size"] != size:
            return None
        return tuple(bytes.fromhex(h) for h in hint["hashes"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def edge_nodes(checkpoint: VerifiedCheckpoint, hashes: Sequence[bytes] | None
               ) -> dict[tuple[int, int], bytes]:
    """The hint's nodes by id when they fold to ``checkpoint``'s root, else none at all."""
    if not hashes:
        return {}
    try:
        compact = CompactRange(checkpoint.size, hashes)
    except ValueError:  # wrong count or length of hashes
        return {}
    return compact.nodes() if compact.root() == checkpoint.root_hash else {}
