"""Where a log lives: a local directory, or remote storage named by a URL.

``--log`` takes either. A directory holds everything (tree, head, private state). A
remote log (``azblob://...``) keeps the tree and head in the remote storage and its
private state (signing key, journal, writer lock) in a local state folder:
``$AUDITSEAL_STATE`` or ``~/.local/share/auditseal/state/<name of the remote log>``.

Remote backends plug in by URL scheme; their modules are imported only when used, so the
Azure SDK is loaded only for Azure logs.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from auditseal.errors import ConfigError
from auditseal.storage.base import HeadStore, ObjectStore

STATE_ENV = "AUDITSEAL_STATE"

# scheme -> module with ``open_remote(url: str) -> RemoteStorage``
_BACKENDS = {"azblob": "auditseal.storage.azure_location"}


class RemoteStorage(Protocol):
    """A remote log's storage, as a backend module opens it from its URL."""

    @property
    def state_name(self) -> str:
        """A path-safe name for the local state folder, e.g. "account/container/prefix"."""
        ...

    def object_store(self) -> ObjectStore:
        """The write-once objects."""
        ...

    def head_store(self) -> HeadStore:
        """The mutable head."""
        ...

    def describe(self) -> str:
        """Where it is, for people (never with credentials)."""
        ...


@dataclass(frozen=True)
class Location:
    """A resolved ``--log`` value."""

    spec: str
    state_root: Path
    """The local folder ``.auditseal/`` state lives under (the log directory itself, or
    the state folder of a remote log)."""
    remote: RemoteStorage | None = None


def resolve(spec: str | Path) -> Location:
    """Resolve ``--log``: a directory path, or ``SCHEME://...`` of a remote backend.

    Raises:
        ConfigError: an unknown scheme, or the backend refused the URL.
    """
    text = str(spec)
    scheme, sep, _ = text.partition("://")
    if not sep:
        return Location(spec=text, state_root=Path(text))
    module_name = _BACKENDS.get(scheme)
    if module_name is None:
        known = ", ".join(f"{name}://" for name in sorted(_BACKENDS))
        raise ConfigError(f"--log {text}: unknown storage scheme {scheme!r} (known: {known}, "
                          "or a directory path)")
    module = importlib.import_module(module_name)
    remote: RemoteStorage = module.open_remote(text)
    return Location(spec=text, state_root=_state_root(remote.state_name), remote=remote)


def _state_root(name: str) -> Path:
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "auditseal" / "state" / name
