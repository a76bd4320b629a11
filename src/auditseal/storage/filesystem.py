"""The storage Protocol on a local file system, crash-safe and write-once.

An object is created by writing and fsyncing a temporary file in ``<root>/.auditseal/tmp``
(same file system), then ``os.link``-ing it to its final name: the link is atomic and
fails if the name exists, which gives create-if-absent without ever overwriting. A crash
therefore leaves either no final file or a complete one, never a truncated one; at worst a
temporary file is left behind, which ``recover`` removes. The directories holding new
names are fsynced once per batch: that is the group-commit barrier of ``create_many``.

Files are mode 0444 from birth. With ``set_immutable`` the Linux immutable attribute
(``chattr +i``) is also set, so even root must clear it before changing or deleting a
sealed file. Setting it needs CAP_LINUX_IMMUTABLE and a file system that supports it
(ext4, xfs, btrfs; not tmpfs or overlayfs); when it cannot be set the write still
succeeds and ``immutable_attr_supported`` / ``protection`` say so.

The head (``FilesystemHeadStore``) is the tlog-tiles ``checkpoint`` file, replaced
atomically with ``os.replace`` under an ``flock``. ``auditseal.storage.lock.WriterLock``
keeps a second writer out.
Leading-dot names are never object keys (``validate_key``), so this module's own files
(``.auditseal/``, ``.checkpoint.lock``) never show up in ``list``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import stat
import struct
from collections.abc import Sequence
from pathlib import Path

from auditseal.errors import FormatError, ObjectNotFound, StorageConflict, StorageError
from auditseal.storage.base import Head, ObjectProtection, validate_key
from auditseal.storage.durable import SYNCFS, fsync_dir, sync_filesystem, write_new

# <linux/fs.h>. The ioctls are declared with `long` but the kernel reads and writes an
# int, as e2fsprogs' chattr does; we pass an 8-byte buffer and use its first 4 bytes.
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x10

STATE_DIR = ".auditseal"
SYNCFS_MIN_BATCH = 16
"""From this many objects on, create_many syncs the file system instead of each file."""
_TMP_SUFFIX = ".tmp"
_CONFLICT = "exists with different content"
# results, files created, folders to fsync, first conflicting key. (An alias, because in
# the class body the name ``list`` means the method.)
_Linked = tuple[list[bool], list[Path], set[Path], StorageConflict | None]


class FilesystemObjectStore:
    """Write-once objects as read-only files under ``root``.

    Args:
        root: the log directory; created on first write.
        fsync: make each create durable before returning (off only for throwaway logs).
        set_immutable: also set the immutable attribute on every new file, where allowed.
    """

    ordered_create_many = True
    """``create_many`` links its objects in list order (the writer's direct sealing relies
    on it: after a crash, a prefix of a batch exists, never a gap)."""

    def __init__(self, root: Path, *, fsync: bool = True, set_immutable: bool = False) -> None:
        """Open (lazily) the store in ``root``."""
        self.root = Path(root)
        self._root_text = str(self.root)
        self._fsync = fsync
        self._set_immutable = set_immutable
        self._tmp = self.root / STATE_DIR / "tmp"
        self._immutable_supported: bool | None = None
        self._immutable_problem = ""

    @property
    def immutable_attr_supported(self) -> bool | None:
        """True once the immutable attribute was set, False once it could not be, else None."""
        return self._immutable_supported

    def path(self, key: str) -> Path:
        """The file that holds ``key``."""
        return self.root.joinpath(*validate_key(key).split("/"))

    def read(self, key: str) -> bytes:
        """Return the object's bytes (see ``ObjectStore.read``)."""
        # A plain string path: building a Path per read was 60 % of reading an 8 KB tile
        # (a cold inclusion proof reads five); the key is validated all the same.
        path = os.path.join(self._root_text, validate_key(key))  # noqa: PTH118 -- see above
        try:
            with open(path, "rb") as file:  # noqa: PTH123 -- see above
                return file.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc

    def create(self, key: str, data: bytes) -> bool:
        """Create the object unless it exists (see ``ObjectStore.create``)."""
        return self.create_many([(key, data)])[0]

    def create_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Create several objects behind one directory-fsync barrier.

        Raises:
            StorageConflict: naming the first conflicting key, after the others are durable.
            StorageError: the file system failed; temporary files are removed.
        """
        finals = [self.path(key) for key, _ in items]  # validates every key first
        if not items:
            return []
        temps: list[Path] = []
        # A large batch pays one syncfs(2) per phase instead of one fsync per file: on a
        # log publishing hundreds of bundles at once, per-file fsync dominated the cost.
        whole_fs = self._fsync and len(items) >= SYNCFS_MIN_BATCH and SYNCFS is not None
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            for _, data in items:
                temps.append(self._write_temp(data, fsync=self._fsync and not whole_fs))
            if whole_fs:
                sync_filesystem(self._tmp)  # every temp's content durable before any link
            results, created, dirty, conflict = self._link_all(items, finals, temps)
            for temp in temps:  # before chattr +i: an immutable inode cannot lose a link
                temp.unlink()
            temps = []
            if self._set_immutable:
                for path in created:
                    self._make_immutable(path)
            # The barrier comes last so the new names (and, on ext4, the attribute changes,
            # which ride in the same journal commit) are durable together.
            if whole_fs:
                sync_filesystem(self._tmp)
            elif self._fsync:
                for directory in sorted(dirty):
                    fsync_dir(directory)
        except OSError as exc:
            raise StorageError(f"cannot write to {self.describe()}: {exc}") from exc
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)
        if conflict is not None:
            raise conflict
        return results

    def exists(self, key: str) -> bool:
        """Whether a file holds ``key``."""
        return self.path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted; dot-names (our own files) are skipped."""
        base = prefix.rpartition("/")[0]
        start = self.root
        if base:
            try:
                start = self.path(base)  # walk only the folder the prefix points into
            except FormatError:
                return []  # an unsafe folder: no valid key can start with it
        keys: list[str] = []
        for folder, dirs, files in os.walk(start):
            dirs[:] = [name for name in dirs if not name.startswith(".")]
            rel = Path(folder).relative_to(self.root).as_posix()
            head = "" if rel == "." else rel + "/"
            keys.extend(
                head + name
                for name in files
                if not name.startswith(".") and (head + name).startswith(prefix)
            )
        return sorted(keys)

    def protection(self, key: str) -> ObjectProtection:
        """Mode bits and the immutable attribute, read back from the file."""
        path = self.path(key)
        try:
            mode = path.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not stat.S_ISREG(mode):
            raise ObjectNotFound(key)
        read_only = not mode & 0o222
        parts = [f"mode {stat.S_IMODE(mode):04o}"]
        try:
            immutable: bool | None = bool(_get_flags(path) & FS_IMMUTABLE_FL)
            parts.append(
                "immutable attribute set"
                if immutable
                else "immutable attribute not set (root can still change or delete it)"
            )
        except OSError as exc:
            immutable = None
            parts.append(f"immutable attribute unknown here ({exc.strerror})")
        if self._immutable_problem:
            parts.append(f"could not set it: {self._immutable_problem}")
        return ObjectProtection(
            read_only=read_only, immutable_attr=immutable, detail="; ".join(parts)
        )

    def describe(self) -> str:
        """``filesystem <root>``."""
        return f"filesystem {self.root}"

    def recover(self) -> int:
        """Remove temporary files a crash left behind; returns how many.

        Call it only while holding the log's ``WriterLock``: another writer's temporary
        files are in flight, not leftovers.
        """
        try:
            leftovers = [p for p in self._tmp.iterdir() if p.name.endswith(_TMP_SUFFIX)]
        except FileNotFoundError:
            return 0
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    # -- internals -------------------------------------------------------------------------

    def _write_temp(self, data: bytes, *, fsync: bool) -> Path:
        temp = self._tmp / f"{os.getpid()}-{secrets.token_hex(8)}{_TMP_SUFFIX}"
        # Read-only from birth; made durable (here or by the caller's syncfs) before the
        # name appears.
        write_new(temp, data, 0o444, fsync=fsync)
        return temp

    def _link_all(
        self, items: Sequence[tuple[str, bytes]], finals: Sequence[Path], temps: Sequence[Path]
    ) -> _Linked:
        """Link every temp to its final name; returns results, created, dirs to fsync, conflict."""
        results: list[bool] = []
        created: list[Path] = []
        dirty: set[Path] = set()
        conflict: StorageConflict | None = None
        for (key, data), final, temp in zip(items, finals, temps, strict=True):
            try:
                dirty.update(self._make_parents(key, final.parent))
                os.link(temp, final)
            except FileExistsError:
                if not self._same_content(final, data):
                    conflict = conflict or StorageConflict(key, _CONFLICT)
                results.append(False)
                continue
            except StorageConflict as exc:  # a file where a folder must go
                conflict = conflict or exc
                results.append(False)
                continue
            created.append(final)
            dirty.add(final.parent)
            results.append(True)
        return results, created, dirty, conflict

    def _make_parents(self, key: str, folder: Path) -> set[Path]:
        """Create missing folders; returns the parents whose entries changed."""
        missing: list[Path] = []
        while not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for new in reversed(missing):
            try:
                new.mkdir(exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise StorageConflict(key, f"a file is in the way of folder {new}") from None
        return {new.parent for new in missing}

    @staticmethod
    def _same_content(final: Path, data: bytes) -> bool:
        try:
            return final.read_bytes() == data
        except IsADirectoryError:
            return False  # a folder holds other keys: this key cannot be created

    def _make_immutable(self, path: Path) -> None:
        if self._immutable_supported is False:
            return  # found out once; do not pay a failing ioctl per file
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                _set_flags(fd, _get_flags_fd(fd) | FS_IMMUTABLE_FL)
            finally:
                os.close(fd)
        except OSError as exc:
            # EPERM without CAP_LINUX_IMMUTABLE; ENOTTY/EOPNOTSUPP/EINVAL on tmpfs,
            # overlayfs and friends. Mode 0444 still protects; never fail the write.
            self._immutable_supported = False
            self._immutable_problem = f"{errno.errorcode.get(exc.errno or 0, '?')}: {exc.strerror}"
            return
        self._immutable_supported = True


def clear_immutable(path: Path) -> int:
    """Clear the immutable attribute on ``path`` and, for a folder, on all files below it.

    The log itself never calls this: sealed files stay immutable. It exists for tests and
    cleanup (pytest's ``tmp_path`` cannot remove immutable files) and for an operator who
    deliberately retires a log whose retention period is over. Returns how many files had
    the attribute. Files where the attribute is unsupported are skipped.
    """
    path = Path(path)
    targets = [path]
    if path.is_dir() and not path.is_symlink():
        targets = [Path(folder) / name for folder, _, names in os.walk(path) for name in names]
    cleared = 0
    for target in targets:
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # a symlink or vanished file: nothing of ours
        try:
            flags = _get_flags_fd(fd)
            if flags & FS_IMMUTABLE_FL:
                _set_flags(fd, flags & ~FS_IMMUTABLE_FL)
                cleared += 1
        except OSError as exc:
            if exc.errno not in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        finally:
            os.close(fd)
    return cleared


class FilesystemHeadStore:
    """The head as one file, replaced atomically; version = hex SHA-256 of its content.

    A content hash as version means a swap back to identical bytes keeps the version;
    harmless for a log, whose checkpoints only grow.
    """

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        """Use ``path`` (e.g. ``<log>/checkpoint``) as the head file."""
        self.path = Path(path)
        self._fsync = fsync
        self._lock_path = self.path.with_name(f".{self.path.name}.lock")

    def load(self) -> Head | None:
        """The current head, or None."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read head {self.path}: {exc}") from exc
        return Head(data=data, version=_version(data))

    def swap(self, data: bytes, expected: str | None) -> str:
        """Replace the head if its version is still ``expected``."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # A fresh descriptor per call: flock excludes other open file descriptions,
            # so threads of this process exclude each other as other processes do.
            lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot lock head {self.path}: {exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            current = self.load()
            if (None if current is None else current.version) != expected:
                raise StorageConflict(str(self.path), "head changed concurrently")
            prefix = f".{self.path.name}."
            for stale in folder.glob(f"{prefix}*{_TMP_SUFFIX}"):
                stale.unlink(missing_ok=True)  # only a crashed swap leaves these
            temp = folder / f"{prefix}{secrets.token_hex(8)}{_TMP_SUFFIX}"
            write_new(temp, data, 0o644, fsync=self._fsync)
            temp.replace(self.path)  # atomic rename over the old head
            if self._fsync:
                fsync_dir(folder)
        except OSError as exc:
            raise StorageError(f"cannot replace head {self.path}: {exc}") from exc
        finally:
            os.close(lock_fd)  # closing releases the flock
        return _version(bytes(data))

    def describe(self) -> str:
        """``filesystem <path>``."""
        return f"filesystem {self.path}"


def _version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _get_flags_fd(fd: int) -> int:
    buf = bytearray(8)
    fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
    return int(struct.unpack_from("i", buf)[0])


def _set_flags(fd: int, flags: int) -> None:
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags) + bytes(4))


def _get_flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return _get_flags_fd(fd)
    finally:
        os.close(fd)
