"""Filesystem storage beyond the contract: durable layout, crash leftovers, the immutable
attribute, the head file and the writer lock."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import auditseal
from auditseal.errors import LogLocked, StorageConflict, StorageError
from auditseal.storage import durable, filesystem
from auditseal.storage.filesystem import (
    FilesystemHeadStore,
    FilesystemObjectStore,
    clear_immutable,
)
from auditseal.storage.lock import WriterLock


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "log"
    yield log
    clear_immutable(tmp_path)  # whatever a test sealed, pytest must be able to remove


def _temps(root: Path) -> list[str]:
    tmp = root / ".auditseal" / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


# --- layout and durability ----------------------------------------------------------------


def test_key_is_a_nested_read_only_file_whatever_the_umask(root: Path) -> None:
    store = FilesystemObjectStore(root)
    old = os.umask(0o077)
    try:
        store.create("tile/0/x001/234", b"tile")
        store.create_many([("tile/entries/000", b"a"), ("checkpoints/00000000000000000001", b"c")])
    finally:
        os.umask(old)
    for parts in (("tile", "0", "x001", "234"), ("tile", "entries", "000"),
                  ("checkpoints", "00000000000000000001")):
        path = root.joinpath(*parts)
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        assert path.stat().st_nlink == 1  # the temporary name is gone
    assert store.protection("tile/0/x001/234").read_only


def test_no_temporary_files_remain_after_success_or_conflict(root: Path) -> None:
    store = FilesystemObjectStore(root)
    store.create_many([("a", b"A"), ("b/c", b"C")])
    store.create("a", b"A")
    with pytest.raises(StorageConflict):
        store.create_many([("a", b"forged"), ("d", b"D")])
    assert _temps(root) == []
    assert store.list() == ["a", "b/c", "d"]


def test_create_many_is_one_barrier_per_batch(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FilesystemObjectStore(root)
    store.create("tile/0/000", b"first")  # the folders exist from now on
    synced: list[tuple[bool, int]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        synced.append((stat.S_ISDIR(info.st_mode), info.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    assert store.create_many([(f"tile/0/{i:03d}", b"x%d" % i) for i in range(1, 6)]) == [True] * 5
    files = [ino for is_dir, ino in synced if not is_dir]
    folders = [ino for is_dir, ino in synced if is_dir]
    assert len(files) == 5  # each file's content before its name appears
    assert folders == [(root / "tile" / "0").stat().st_ino]  # ONE barrier for the batch


def test_new_folders_are_made_durable_in_their_parents(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FilesystemObjectStore(root)
    root.mkdir()
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            synced.append(info.st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store.create("tile/0/x001/234", b"x")
    expected = [root, root / "tile", root / "tile" / "0", root / "tile" / "0" / "x001"]
    assert sorted(synced) == sorted(p.stat().st_ino for p in expected)


def test_fsync_off_never_syncs(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", calls.append)
    FilesystemObjectStore(root, fsync=False).create_many([("a/b", b"x"), ("c", b"y")])
    FilesystemHeadStore(root / "checkpoint", fsync=False).swap(b"head", None)
    assert calls == []


# --- crashes and tampering ----------------------------------------------------------------


def test_recover_removes_crash_leftovers(root: Path) -> None:
    store = FilesystemObjectStore(root)
    assert store.recover() == 0  # nothing there yet, not even the folder
    store.create("tile/0/000", b"sealed")
    tmp = root / ".auditseal" / "tmp"
    (tmp / "4242-deadbeef.tmp").write_bytes(b"half-writt")  # crash before the link
    os.link(root / "tile/0/000", tmp / "4242-cafe.tmp")  # crash between link and unlink
    assert store.recover() == 2
    assert _temps(root) == []
    assert store.read("tile/0/000") == b"sealed"
    assert (root / "tile/0/000").stat().st_nlink == 1


@pytest.mark.parametrize("step", ["write", "link"])
def test_failure_mid_batch_cleans_up_and_a_retry_completes(
    root: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    store = FilesystemObjectStore(root)
    real = getattr(os, step)
    calls = 0

    def full_disk(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second item's temporary file or link
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args)

    monkeypatch.setattr(os, step, full_disk)
    batch = [("a", b"A"), ("b", b"B"), ("c", b"C")]
    with pytest.raises(StorageError, match="No space left"):
        store.create_many(batch)
    assert _temps(root) == []
    monkeypatch.setattr(os, step, real)
    assert store.create_many(batch) == [step == "write", True, True]
    assert [store.read(key) for key, _ in batch] == [b"A", b"B", b"C"]


def test_truncated_file_already_there_is_a_conflict(root: Path) -> None:
    """Someone wrote (or truncated) the final name behind the log's back."""
    full = bytes(range(256)) * 4
    path = root / "tile" / "entries" / "000"
    path.parent.mkdir(parents=True)
    path.write_bytes(full[:100])
    store = FilesystemObjectStore(root)
    with pytest.raises(StorageConflict, match="exists with different content"):
        store.create("tile/entries/000", full)
    assert path.read_bytes() == full[:100]  # never overwritten, even to "repair" it


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("a/b", "a", id="folder-in-the-way"),
        pytest.param("a", "a/b", id="file-in-the-way"),
    ],
)
def test_file_and_folder_cannot_share_a_name(root: Path, first: str, second: str) -> None:
    # A file system limit that tlog-tiles paths never hit; the error must still be a
    # conflict naming the key, not a crash.
    store = FilesystemObjectStore(root)
    store.create(first, b"x")
    with pytest.raises(StorageConflict) as caught:
        store.create(second, b"y")
    assert caught.value.key == second
    assert store.list() == [first]
    assert _temps(root) == []


def test_list_skips_private_state_and_includes_the_head(root: Path) -> None:
    store = FilesystemObjectStore(root)
    store.create("tile/0/000", b"x")
    FilesystemHeadStore(root / "checkpoint").swap(b"head", None)
    (root / ".auditseal" / "tmp" / "1-leftover.tmp").write_bytes(b"")
    # The head shares the directory (tlog-tiles layout), so it shows up as a key;
    # dot-names (.auditseal/, .checkpoint.lock) never do.
    assert store.list() == ["checkpoint", "tile/0/000"]
    assert sorted(p.name for p in root.iterdir()) == [
        ".auditseal", ".checkpoint.lock", "checkpoint", "tile"
    ]


# --- the immutable attribute --------------------------------------------------------------


def test_immutable_attribute_stops_even_root(root: Path) -> None:
    store = FilesystemObjectStore(root, set_immutable=True)
    store.create("tile/0/000", b"sealed")
    if store.immutable_attr_supported is not True:
        pytest.skip(
            "this process cannot set the immutable attribute here (needs CAP_LINUX_IMMUTABLE "
            f"and ext4/xfs/btrfs): {store.protection('tile/0/000').detail}"
        )
    path = root / "tile" / "0" / "000"
    with pytest.raises(PermissionError):
        path.open("ab")
    with pytest.raises(PermissionError):
        path.chmod(0o644)
    with pytest.raises(PermissionError):
        path.unlink()
    with pytest.raises(PermissionError):
        path.rename(root / "moved")
    protection = store.protection("tile/0/000")
    assert (protection.read_only, protection.immutable_attr) == (True, True)
    assert "immutable attribute set" in protection.detail
    assert store.create("tile/0/000", b"sealed") is False  # idempotent re-publish still works
    assert _temps(root) == []
    assert clear_immutable(root) == 1
    assert store.protection("tile/0/000").immutable_attr is False
    path.unlink()


@pytest.mark.parametrize(
    "code", [errno.EPERM, errno.ENOTTY, errno.EOPNOTSUPP], ids=errno.errorcode.get
)
def test_unsupported_immutable_attribute_never_fails_a_write(
    root: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    calls: list[int] = []

    def refuse(fd: int, request: int, *args: object) -> None:
        calls.append(request)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "ioctl", refuse)
    store = FilesystemObjectStore(root, set_immutable=True)
    assert store.immutable_attr_supported is None
    assert store.create_many([("a", b"A"), ("b", b"B")]) == [True, True]
    assert store.create("c", b"C") is True
    assert store.immutable_attr_supported is False
    assert len(calls) == 1  # found out once, not once per file
    protection = store.protection("a")
    assert (protection.read_only, protection.immutable_attr) == (True, None)
    assert errno.errorcode[code] in protection.detail


def test_without_set_immutable_the_attribute_is_left_alone(root: Path) -> None:
    store = FilesystemObjectStore(root)
    store.create("a", b"A")
    assert store.immutable_attr_supported is None
    assert store.protection("a").immutable_attr in (False, None)  # None where unsupported


# --- the head -----------------------------------------------------------------------------


def test_head_version_is_the_content_hash_and_nothing_is_left_over(root: Path) -> None:
    head = FilesystemHeadStore(root / "checkpoint")
    version = head.swap(b"checkpoint 1", None)
    assert version == hashlib.sha256(b"checkpoint 1").hexdigest()
    (root / ".checkpoint.0badc0de.tmp").write_bytes(b"crashed swap")
    head.swap(b"checkpoint 2", version)
    assert (root / "checkpoint").read_bytes() == b"checkpoint 2"
    assert sorted(p.name for p in root.iterdir()) == [".checkpoint.lock", "checkpoint"]


def test_head_swap_to_identical_bytes_keeps_the_version(root: Path) -> None:
    head = FilesystemHeadStore(root / "checkpoint")
    version = head.swap(b"same", None)
    assert head.swap(b"same", version) == version


# --- the writer lock ----------------------------------------------------------------------

_TRY_LOCK = """
import sys
from pathlib import Path
from auditseal.errors import LogLocked
from auditseal.storage.lock import WriterLock
try:
    with WriterLock(Path(sys.argv[1])):
        print("acquired")
except LogLocked as exc:
    print(exc)
    sys.exit(3)
"""


def _try_lock_in_subprocess(lock: Path) -> subprocess.CompletedProcess[str]:
    src = str(Path(auditseal.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (src, os.environ.get("PYTHONPATH", "")) if p
    )}
    return subprocess.run(
        [sys.executable, "-c", _TRY_LOCK, str(lock)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def test_writer_lock_keeps_a_second_process_out_until_released(root: Path) -> None:
    lock = root / ".auditseal" / "lock"
    with WriterLock(lock):
        held = _try_lock_in_subprocess(lock)
        assert held.returncode == 3, held.stderr
        assert f"log {root} is locked by another writer (pid {os.getpid()})" in held.stdout
    released = _try_lock_in_subprocess(lock)
    assert (released.returncode, released.stdout.strip()) == (0, "acquired"), released.stderr


def test_writer_lock_excludes_a_second_holder_in_the_same_process(root: Path) -> None:
    lock = root / ".auditseal" / "lock"
    with WriterLock(lock):
        assert lock.read_text() == f"{os.getpid()}\n"
        with pytest.raises(LogLocked, match=f"pid {os.getpid()}"), WriterLock(lock):
            pass
    assert lock.read_text() == ""  # no stale pid once released
    with WriterLock(lock):
        pass


def test_large_batch_syncs_the_file_system_twice_instead_of_each_file(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if durable.SYNCFS is None:
        pytest.skip("libc has no syncfs here")
    fsyncs: list[int] = []
    syncs: list[int] = []
    real_fsync, real_syncfs = os.fsync, durable.SYNCFS

    def spy_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    def spy_syncfs(fd: int) -> int:
        syncs.append(fd)
        return real_syncfs(fd)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(filesystem, "SYNCFS", spy_syncfs)
    monkeypatch.setattr(durable, "SYNCFS", spy_syncfs)
    items = [(f"tile/entries/{i:03d}", bytes([i]) * 10) for i in range(40)]
    assert FilesystemObjectStore(root).create_many(items) == [True] * 40
    assert (len(syncs), len(fsyncs)) == (2, 0)
    assert all((root / key).read_bytes() == data for key, data in items)
