"""Benchmark 4: inclusion proofs in a large tiled tree, beside pymerkle's in-memory tree.

The hash tiles of a tree of N leaves are built directly (``TileWriter`` over cheap
distinct leaf hashes ``sha256(i as 8 bytes)``; proofs need no entry bundles) and stored
as files with ``FilesystemObjectStore(fsync=False, set_immutable=False)``. Then, over
the same random indexes:

- *cold*: what ``auditseal prove`` and the service do for a proof against a checkpoint
  they have not read before: a fresh ``LogReader`` (1-tile cache) per proof, given the
  edge hint the writer leaves (``log.edge_hint``: read from its file and checked against
  the root each time), so every tile a proof needs is read from the file system and
  hashed (the page cache is warm: the files were just written);
- *cold, tiles only*: the same without the edge hint (a log fetched from a static web
  server, or one whose hint is lost): the right edge's partial tiles are read and hashed;
- *cached*: one reader with a cache big enough for every tile, warmed first;
- *verify*: ``verify_inclusion`` of each proof against the tree's root.

The peer is pymerkle's ``InmemoryTree.prove_inclusion`` (and ``InclusionProof.verify``)
at the largest size it builds in reasonable time, stated in the table.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import pymerkle

from auditseal.core.checkpoint import Checkpoint, VerifiedCheckpoint
from auditseal.core.proofs import inclusion_proof, verify_inclusion
from auditseal.core.tiles import TileId
from auditseal.core.tiletree import TileNodeReader, TileWriter
from auditseal.log.edge_hint import load_edge_hint, save_edge_hint
from auditseal.log.reader import LogReader
from auditseal.storage import FilesystemObjectStore
from bench.data import Profile, Result, percentile, print_table, scratch_dir

FLUSH_EVERY = 1 << 16  # leaves between TileWriter flushes (bounds the held tiles)
GOAL_COLD_US = 1000.0
GOAL_VERIFY_US = 100.0


def _leaf(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def build_tiles(store: FilesystemObjectStore, size: int, hint: Path) -> bytes:
    """Store every hash tile of a tree of ``size`` leaves and its edge hint; returns its root."""
    tiles = TileWriter()
    append, sha = tiles.append, hashlib.sha256
    for start in range(0, size, FLUSH_EVERY):
        for i in range(start, min(size, start + FLUSH_EVERY)):
            append(sha(i.to_bytes(8, "big")).digest())
        store.create_many([(tile.path, data) for tile, data in tiles.flush()])
    save_edge_hint(hint, size, tiles.compact_range)
    return tiles.root()


def _time_each(indexes: list[int], prove: Callable[[int], object]) -> list[float]:
    """Microseconds each call of ``prove`` took."""
    clock = time.perf_counter_ns
    out = []
    for index in indexes:
        started = clock()
        prove(index)
        out.append((clock() - started) / 1000)
    return out


def measure_tiles(root_dir: Path, size: int, indexes: list[int]) -> dict[str, list[float]]:
    """Build the tiles and time cold proofs, cached proofs and verification (us each)."""
    store = FilesystemObjectStore(root_dir, fsync=False, set_immutable=False)
    hint = root_dir.parent / "edge-hint.json"
    started = time.perf_counter()
    root = build_tiles(store, size, hint)
    print(f"  built the hash tiles of {size:,} leaves in {time.perf_counter() - started:.1f} s")
    checkpoint = VerifiedCheckpoint(Checkpoint("bench/proofs", size, root), b"", ("bench",))

    def read_tile(tile: TileId) -> bytes:
        return store.read(tile.path)

    def cold(index: int) -> list[bytes]:
        reader = LogReader(store, checkpoint, cache_tiles=1, edge=load_edge_hint(hint, size))
        return reader.inclusion_proof(index)

    def cold_tiles_only(index: int) -> list[bytes]:
        return inclusion_proof(index, size, TileNodeReader(size, read_tile, cache_tiles=1))

    cached_reader = TileNodeReader(size, read_tile, cache_tiles=1 << 20)
    proofs = {i: inclusion_proof(i, size, cached_reader) for i in indexes}  # warms the cache

    def cached(index: int) -> list[bytes]:
        return inclusion_proof(index, size, cached_reader)

    def verify(index: int) -> None:
        verify_inclusion(_leaf(index), index, size, proofs[index], root)

    cold_us = _time_each(indexes, cold)
    tiles_only_us = _time_each(indexes, cold_tiles_only)
    cached_us = _time_each(indexes, cached)
    verify_us = _time_each(indexes, verify)
    assert all(cold(i) == cold_tiles_only(i) == proofs[i] for i in indexes[:50])
    return {"cold": cold_us, "cold_tiles_only": tiles_only_us, "cached": cached_us,
            "verify": verify_us}


def measure_pymerkle(size: int, samples: int, seed: int) -> dict[str, list[float]]:
    """Build pymerkle's InmemoryTree of ``size`` and time its proofs and verification."""
    started = time.perf_counter()
    tree = pymerkle.InmemoryTree()
    for i in range(size):
        tree.append_entry(i.to_bytes(8, "big"))
    print(f"  built pymerkle's InmemoryTree of {size:,} leaves in "
          f"{time.perf_counter() - started:.1f} s")
    rng = random.Random(seed)
    indexes = [rng.randrange(size) + 1 for _ in range(samples)]  # pymerkle counts from 1
    root = tree.get_root()
    proofs = {i: tree.prove_inclusion(i) for i in indexes}  # warm any cache it has
    prove_us = _time_each(indexes, tree.prove_inclusion)

    def verify(index: int) -> None:
        proofs[index].verify(tree.get_leaf(index), root)

    return {"peer_prove": prove_us, "peer_verify": _time_each(indexes, verify)}


def run(profile: Profile) -> list[Result]:
    """Run benchmark 4 and print its table; returns its summary rows."""
    size, samples = profile.proof_size, profile.proof_samples
    rng = random.Random(99)
    indexes = [rng.randrange(size) for _ in range(samples)]
    with scratch_dir("proofs") as scratch:
        ours = measure_tiles(scratch / "tree", size, indexes)
    peer_size = profile.pymerkle_proof_size
    peer = measure_pymerkle(peer_size, samples, 99)

    def stats(name: str, values: list[float]) -> tuple[str, float, float, float]:
        return name, sum(values) / len(values), percentile(values, 0.5), percentile(values, 0.99)

    print_table(
        f"4. Inclusion proofs, us per proof ({samples:,} random indexes)",
        ["what", "mean", "p50", "p99"],
        [
            stats(f"auditseal, {size:,} leaves, cold from storage", ours["cold"]),
            stats(f"auditseal, {size:,} leaves, cold, tiles only (no edge hint)",
                  ours["cold_tiles_only"]),
            stats(f"auditseal, {size:,} leaves, tiles cached", ours["cached"]),
            stats(f"auditseal, {size:,} leaves, verify_inclusion", ours["verify"]),
            stats(f"pymerkle InmemoryTree, {peer_size:,} leaves, prove_inclusion",
                  peer["peer_prove"]),
            stats(f"pymerkle InmemoryTree, {peer_size:,} leaves, proof.verify",
                  peer["peer_verify"]),
        ],
    )
    mean = {k: sum(v) / len(v) for k, v in (*ours.items(), *peer.items())}
    cold_p99 = percentile(ours["cold"], 0.99)
    return [
        Result(f"proof cold from storage, mean ({size:,})", mean["cold"], GOAL_COLD_US, "us",
               "<= 1 ms", mean["cold"] <= GOAL_COLD_US, "goal"),
        Result(f"proof cold from storage, p99 ({size:,})", cold_p99, GOAL_COLD_US, "us",
               "<= 1 ms", cold_p99 <= GOAL_COLD_US, "goal"),
        Result(f"proof, tiles cached, mean ({size:,})", mean["cached"], mean["peer_prove"], "us",
               "<= pymerkle in-memory", mean["cached"] <= mean["peer_prove"],
               f"pymerkle @ {peer_size:,}"),
        Result("proof verification, mean", mean["verify"], GOAL_VERIFY_US, "us",
               "<= 100 us", mean["verify"] <= GOAL_VERIFY_US, "goal"),
    ]
