"""Opening a log: its identity, keys, stores and writer; a local directory by default.

A log named by a remote URL (``log.location``) keeps the same private state in a local
state folder instead of ``DIR/.auditseal``. A local log directory looks like this::

    DIR/                          a C2SP tlog-tiles tree any static web server can serve
      checkpoint                  the head (mutable; replaced atomically)
      tile/...                    write-once hash tiles and entry bundles
      checkpoints/<size>          write-once history of every published checkpoint
      .auditseal/                 private state: never serve or publish this folder
        log.json                  origin and verifier key
        signing.key               Ed25519 note key (Go note format), mode 0600
        journal/                  write-ahead journal of acknowledged, unsealed entries
        lock                      the writer lock
        edge-hint.json            the latest tree's right edge, to spare proofs hashing it
        tmp/                      temporary files of create-if-absent writes
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from auditseal.clock import Clock, SystemClock
from auditseal.config import WriterConfig
from auditseal.core.checkpoint import VerifiedCheckpoint
from auditseal.core.layout import HEAD_KEY
from auditseal.core.notekeys import NoteSigner, NoteVerifier, generate_key
from auditseal.errors import ConfigError, FormatError
from auditseal.log.edge_hint import EDGE_HINT_NAME, load_edge_hint
from auditseal.log.head import load_head
from auditseal.log.location import RemoteStorage, resolve
from auditseal.log.writer import LogWriter
from auditseal.storage.base import HeadStore, ObjectStore
from auditseal.storage.durable import write_new
from auditseal.storage.filesystem import FilesystemHeadStore, FilesystemObjectStore
from auditseal.storage.lock import WriterLock

STATE_DIR = ".auditseal"
LOG_CONFIG_FORMAT = 1
_ORIGIN = re.compile(r"^[\x21-\x2a\x2c-\x7e]{1,200}$")  # printable ASCII, no space, no '+'


@dataclass(frozen=True)
class LocalLog:
    """Identity of a log and where its parts are: local directory or remote storage."""

    root: Path
    """The log directory; for a remote log, its local state folder."""
    origin: str
    verifier_key: str
    remote: RemoteStorage | None = None
    spec: str = ""
    """The ``--log`` text it was opened from ("" for one built by hand): another process
    (the service's follower) reopens the log from it."""

    @property
    def state(self) -> Path:
        """The private state folder (keys, journal, lock)."""
        return self.root if self.remote is not None else self.root / STATE_DIR

    @property
    def name(self) -> str:
        """How to name this log to a person."""
        return self.remote.describe() if self.remote is not None else str(self.root)

    @property
    def edge_hint_path(self) -> Path:
        """Where the writer leaves the latest tree's compact range (``log.edge_hint``)."""
        return self.state / EDGE_HINT_NAME

    def edge_hint(self, checkpoint: VerifiedCheckpoint) -> tuple[bytes, ...] | None:
        """The compact range left for ``checkpoint``'s size, if any (checked by the reader)."""
        return load_edge_hint(self.edge_hint_path, checkpoint.size)

    @property
    def signing_key_path(self) -> Path:
        """Where the private note key lives."""
        return self.state / "signing.key"

    def object_store(self, *, fsync: bool = True, set_immutable: bool = False) -> ObjectStore:
        """The write-once object store of this log."""
        if self.remote is not None:
            return self.remote.object_store()
        return FilesystemObjectStore(self.root, fsync=fsync, set_immutable=set_immutable)

    def head_store(self, *, fsync: bool = True) -> HeadStore:
        """The mutable head of this log."""
        if self.remote is not None:
            return self.remote.head_store()
        return FilesystemHeadStore(self.root / HEAD_KEY, fsync=fsync)

    def verifier(self) -> NoteVerifier:
        """The log's own verifier (an auditor should pin theirs instead)."""
        return NoteVerifier.from_vkey(self.verifier_key)


def init_log(spec: str | Path, origin: str, clock: Clock | None = None
             ) -> tuple[LocalLog, str]:
    """Create a new log at ``spec`` (a directory or a remote URL): key, config, empty checkpoint.

    Returns the log and its verifier key. Never overwrites an existing key or log.

    Raises:
        ConfigError: ``root`` already holds a log or a key, or ``origin`` is unusable.
    """
    if not _ORIGIN.match(origin):
        raise ConfigError(
            f"log name {origin!r} must be 1-200 printable ASCII characters without spaces "
            "or '+', e.g. example.com/audit"
        )
    location = resolve(spec)
    root = location.state_root
    state = root if location.remote is not None else root / STATE_DIR
    if (state / "signing.key").exists() or (state / "log.json").exists():
        raise ConfigError(f"{spec} already holds an auditseal log; refusing to overwrite its key")
    if location.remote is not None:
        if location.remote.head_store().load() is not None:
            raise ConfigError(f"{spec} already holds a log (it has a head checkpoint)")
    elif (root / HEAD_KEY).exists() or (root / "tile").exists():
        raise ConfigError(f"{root} already holds a tlog-tiles tree; choose an empty directory")
    state.mkdir(parents=True, exist_ok=True)
    skey, vkey = generate_key(origin)
    write_new(state / "signing.key", (skey + "\n").encode(), 0o600, fsync=True)
    config = {"format": LOG_CONFIG_FORMAT, "origin": origin, "verifier_key": vkey}
    write_new(state / "log.json", orjson.dumps(config, option=orjson.OPT_INDENT_2) + b"\n",
              0o644, fsync=True)
    log = LocalLog(root=root, origin=origin, verifier_key=vkey, remote=location.remote,
                   spec=str(spec))
    with open_writer(log, clock=clock):
        pass  # opening a new log publishes its empty checkpoint
    return log, vkey


def load_log(spec: str | Path) -> LocalLog:
    """Read the identity of the log at ``spec`` (a directory or a remote URL).

    Raises:
        ConfigError: no log there, or its config is damaged.
    """
    location = resolve(spec)
    root = location.state_root
    path = (root if location.remote is not None else root / STATE_DIR) / "log.json"
    try:
        config = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"no auditseal log at {spec} (missing {path}); create one with 'auditseal init "
            f"--log {spec}' or point --log / AUDITSEAL_LOG at an existing log"
        ) from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is damaged: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != LOG_CONFIG_FORMAT:
        raise ConfigError(f"{path}: unsupported log config format")
    origin, vkey = config.get("origin"), config.get("verifier_key")
    if not isinstance(origin, str) or not isinstance(vkey, str):
        raise ConfigError(f"{path}: 'origin' and 'verifier_key' must be strings")
    return LocalLog(root=root, origin=origin, verifier_key=vkey, remote=location.remote,
                    spec=str(spec))


def load_signer(log: LocalLog) -> NoteSigner:
    """Read the log's private signing key.

    Raises:
        ConfigError: the key is missing or does not match the log's verifier key.
    """
    try:
        skey = log.signing_key_path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"signing key {log.signing_key_path} is missing: this copy of the log can be "
            "verified but not appended to"
        ) from None
    try:
        signer = NoteSigner.from_private_key(skey)
    except FormatError as exc:
        raise ConfigError(f"{log.signing_key_path}: {exc}") from exc
    verifier = log.verifier()
    if (signer.name, signer.key_id) != (verifier.name, verifier.key_id):
        raise ConfigError(f"{log.signing_key_path} does not match the log's verifier key")
    return signer


@contextmanager
def open_writer(
    log: LocalLog, *, clock: Clock | None = None, config: WriterConfig | None = None
) -> Iterator[LogWriter]:
    """Hold the writer lock, open (and recover) the log, and close it cleanly afterwards.

    Raises:
        LogLocked: another process is writing to this log.
    """
    config = config or WriterConfig()
    log.state.mkdir(parents=True, exist_ok=True)
    with WriterLock(log.state / "lock"):
        store = log.object_store(fsync=config.fsync, set_immutable=config.set_immutable)
        if isinstance(store, FilesystemObjectStore):
            store.recover()
        writer = LogWriter(
            store=store,
            head=log.head_store(fsync=config.fsync),
            signer=load_signer(log),
            verifier=log.verifier(),
            origin=log.origin,
            journal_dir=log.state / "journal",
            edge_hint=log.edge_hint_path,
            clock=clock or SystemClock(),
            config=config,
        )
        writer.open()
        try:
            yield writer
        finally:
            writer.close()


def latest_checkpoint(log: LocalLog) -> VerifiedCheckpoint | None:
    """The log's current head, verified with its own key."""
    loaded = load_head(log.head_store(), log.verifier(), log.origin)
    return None if loaded is None else loaded[0]
