"""The edge hint: left by the writer after each publish, used by readers only when it checks out."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import orjson

from auditseal.core.checkpoint import VerifiedCheckpoint
from auditseal.core.hashing import leaf_hash
from auditseal.core.merkle import CompactRange
from auditseal.core.proofs import verify_consistency, verify_inclusion
from auditseal.log.edge_hint import edge_nodes, load_edge_hint
from auditseal.log.local import LocalLog, init_log, latest_checkpoint, open_writer
from auditseal.log.reader import LogReader
from auditseal.verify import DirectorySource

SIZE = 70_000  # two tile levels with partial tiles on both


class CountingSource(DirectorySource):
    """The log directory, remembering the paths read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.paths: list[str] = []

    def read(self, key: str) -> bytes:
        self.paths.append(key)
        return super().read(key)


def _sealed_log(tmp_path: Path, sizes: list[int]) -> tuple[LocalLog, VerifiedCheckpoint]:
    log, _ = init_log(tmp_path / "log", "edge.test/log")
    with open_writer(log) as writer:
        done = 0
        for size in sizes:
            writer.append([b'{"n":%d}' % i for i in range(done, size)])
            writer.publish()
            done = size
    checkpoint = latest_checkpoint(log)
    assert checkpoint is not None
    assert checkpoint.size == sizes[-1]
    return log, checkpoint


def _entry_leaf(reader: LogReader, index: int) -> bytes:
    return leaf_hash(reader.entry(index))


def test_the_writer_leaves_the_edge_of_the_published_tree(tmp_path: Path) -> None:
    log, checkpoint = _sealed_log(tmp_path, [700, SIZE])
    hashes = log.edge_hint(checkpoint)
    assert hashes is not None
    assert len(hashes) == SIZE.bit_count()
    assert CompactRange(SIZE, hashes).root() == checkpoint.root_hash
    assert load_edge_hint(log.edge_hint_path, 700) is None  # a hint names its size


def test_hinted_proofs_equal_plain_ones_and_skip_the_partial_tiles(tmp_path: Path) -> None:
    log, checkpoint = _sealed_log(tmp_path, [SIZE])
    plain_source, hinted_source = CountingSource(log.root), CountingSource(log.root)
    rng = random.Random(3)
    for index in [0, 65_535, *(rng.randrange(65_536) for _ in range(10))]:
        plain = LogReader(plain_source, checkpoint, cache_tiles=1)
        hinted = LogReader(hinted_source, checkpoint, cache_tiles=1,
                           edge=log.edge_hint(checkpoint))
        proof = hinted.inclusion_proof(index)
        assert proof == plain.inclusion_proof(index)
        verify_inclusion(_entry_leaf(hinted, index), index, SIZE, proof, checkpoint.root_hash)
    assert any(".p/" in path for path in plain_source.paths if "entries" not in path)
    assert not any(".p/" in path for path in hinted_source.paths if "entries" not in path)


def test_a_tampered_or_stale_hint_is_ignored(tmp_path: Path) -> None:
    log, checkpoint = _sealed_log(tmp_path, [SIZE])
    good = log.edge_hint(checkpoint)
    assert good is not None
    forged = (good[0][:-1] + bytes([good[0][-1] ^ 1]), *good[1:])
    assert edge_nodes(checkpoint, forged) == {}
    assert edge_nodes(checkpoint, good[1:]) == {}  # too few hashes for the size
    assert edge_nodes(checkpoint, good) != {}
    hint = orjson.loads(log.edge_hint_path.read_bytes())
    hint["hashes"][0] = forged[0].hex()
    log.edge_hint_path.write_bytes(orjson.dumps(hint))
    source = CountingSource(log.root)
    reader = LogReader(source, checkpoint, edge=log.edge_hint(checkpoint))
    proof = reader.inclusion_proof(12_345)  # correct: built from the tiles instead
    verify_inclusion(_entry_leaf(reader, 12_345), 12_345, SIZE, proof, checkpoint.root_hash)
    assert any(".p/" in path for path in source.paths)
    old = LogReader(source, checkpoint, edge=log.edge_hint(checkpoint)).consistency_proof(700)
    assert old == LogReader(source, checkpoint).consistency_proof(700)
    log.edge_hint_path.write_bytes(b"not json")
    assert log.edge_hint(checkpoint) is None


def test_hinted_consistency_proofs_verify(tmp_path: Path) -> None:
    log, checkpoint = _sealed_log(tmp_path, [700, 65_536, SIZE])
    reader = LogReader(DirectorySource(log.root), checkpoint, edge=log.edge_hint(checkpoint))
    for old in (700, 65_536):
        old_root = base64.b64decode(
            DirectorySource(log.root).read(f"checkpoints/{old:020d}").split(b"\n")[2])
        verify_consistency(old, SIZE, old_root, checkpoint.root_hash,
                           reader.consistency_proof(old))


def test_a_lost_hint_is_left_again_when_the_writer_opens(tmp_path: Path) -> None:
    log, checkpoint = _sealed_log(tmp_path, [300])
    log.edge_hint_path.unlink()
    assert log.edge_hint(checkpoint) is None
    with open_writer(log):
        pass
    assert log.edge_hint(checkpoint) is not None
