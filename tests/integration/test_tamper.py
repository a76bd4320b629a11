"""The tamper matrix: every kind of change to a sealed log is caught and located."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from auditseal.config import WriterConfig
from auditseal.core.checkpoint import parse_unverified, sign_checkpoint
from auditseal.core.notekeys import NoteSigner, NoteVerifier, generate_key
from auditseal.core.tiles import bundle_path, decode_bundle, encode_bundle, tile_path
from auditseal.log.local import LocalLog, init_log, load_log, open_writer
from auditseal.verify import DirectorySource, verify_log
from tests.conftest import activity_event

FAST = WriterConfig(fsync=False, set_immutable=False)


def _append(log: LocalLog, events: list[bytes]) -> None:
    with open_writer(log, config=FAST) as writer:
        writer.append(events)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A log of 600 entries published as checkpoints 0, 300 and 600."""
    root = tmp_path_factory.mktemp("sealed") / "log"
    log, vkey = init_log(root, "tamper.test/log")
    _append(log, [activity_event(i) for i in range(300)])
    _append(log, [activity_event(i) for i in range(300, 600)])
    return root, vkey


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        if path.is_file():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return target


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def flip_entry_byte(root: Path) -> None:
    bundle = root / bundle_path(1)
    entries = decode_bundle(bundle.read_bytes())
    offset = sum(2 + len(e) for e in entries[:41]) + 2 + len(entries[41]) // 2
    _flip(bundle, offset)  # entry 256 + 41 = 297


def flip_tile_byte(root: Path) -> None:
    _flip(root / tile_path(0, 0), 5 * 32 + 3)


def flip_checkpoint_byte(root: Path) -> None:
    _flip(root / "checkpoint", 0)  # origin "tamper..." -> "Tamper...": signature fails


def delete_bundle(root: Path) -> None:
    (root / bundle_path(0)).unlink()


def delete_tile(root: Path) -> None:
    (root / tile_path(0, 1)).unlink()


def truncate_bundle(root: Path) -> None:
    path = root / bundle_path(1)
    path.write_bytes(path.read_bytes()[:-100])


def swap_entries(root: Path) -> None:
    path = root / bundle_path(0)
    entries = decode_bundle(path.read_bytes())
    entries[3], entries[7] = entries[7], entries[3]
    path.write_bytes(encode_bundle(entries))


def roll_back_checkpoint(root: Path) -> None:
    (root / "checkpoint").write_bytes((root / "checkpoints" / f"{300:020d}").read_bytes())


def resign_with_other_key(root: Path) -> None:
    checkpoint = parse_unverified((root / "checkpoint").read_bytes())
    skey, _ = generate_key("tamper.test/log")
    note = sign_checkpoint(checkpoint, [NoteSigner.from_private_key(skey)])
    (root / "checkpoint").write_bytes(note)


def forked_checkpoint(root: Path) -> None:
    """Head replaced by a checkpoint from a fork signed with the log's own key."""
    fork = _copy(root, root.parent / "fork")
    _append(load_log(fork), [activity_event(9999)])
    _append(load_log(root), [activity_event(1234)])
    (root / "checkpoint").write_bytes((fork / "checkpoint").read_bytes())


CASES: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("entry-byte", flip_entry_byte, "modified", "entry 297"),
    ("tile-byte", flip_tile_byte, "modified", tile_path(0, 0)),
    ("checkpoint-byte", flip_checkpoint_byte, "invalid signature", "checkpoint"),
    ("delete-bundle", delete_bundle, "missing", bundle_path(0)),
    ("delete-tile", delete_tile, "missing", tile_path(0, 1)),
    ("truncate-bundle", truncate_bundle, "truncated", bundle_path(1)),
    ("swap-entries", swap_entries, "reordered", "entries 3 and 7"),
    ("rollback", roll_back_checkpoint, "rolled back", "checkpoint"),
    ("fork", forked_checkpoint, "forked", "checkpoint"),
    ("other-key", resign_with_other_key, "unknown key", "checkpoint"),
]


def test_untouched_log_verifies(sealed: tuple[Path, str]) -> None:
    root, vkey = sealed
    report = verify_log(DirectorySource(root), [NoteVerifier.from_vkey(vkey)])
    assert report.ok, report.findings
    assert (report.entries_checked, report.checkpoints_checked) == (600, 4)


@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "two-workers"])
@pytest.mark.parametrize(("tamper", "what", "where"),
                         [pytest.param(t, w, loc, id=i) for i, t, w, loc in CASES])
def test_tampering_is_caught_and_located(
    sealed: tuple[Path, str], tmp_path: Path, tamper: Callable[[Path], None],
    what: str, where: str, workers: int,
) -> None:
    root = _copy(sealed[0], tmp_path / "copy")
    tamper(root)
    report = verify_log(DirectorySource(root), [NoteVerifier.from_vkey(sealed[1])],
                        workers=workers)
    assert not report.ok
    found = [(f.what, f.where) for f in report.findings if f.severity == "error"]
    assert any(what in w and where == loc for w, loc in found), found
