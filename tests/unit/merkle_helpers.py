"""Test helpers for Merkle trees: cheap leaves and a NodeReader over a whole tree."""

from __future__ import annotations

from collections.abc import Sequence

from auditseal.core.hashing import leaf_hash, node_hash


def cheap_leaves(n: int) -> list[bytes]:
    """Distinct leaf hashes without building entries."""
    return [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]


class TableReader:
    """NodeReader over every complete node of a list of leaf hashes; records its calls."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels = [list(leaves)]
        while len(self.levels[-1]) > 1:
            pairs = zip(self.levels[-1][::2], self.levels[-1][1::2], strict=False)
            self.levels.append([node_hash(a, b) for a, b in pairs])
        self.calls: list[list[tuple[int, int]]] = []

    def __call__(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        self.calls.append(list(nodes))
        return [self.levels[level][index] for level, index in nodes]
