"""Storage for a write-once log: the Protocol and its local backends.

``base`` holds the Protocol (write-once objects plus one compare-and-swap head) and the
key rule shared by every backend; ``memory`` is the reference implementation;
``filesystem`` keeps a log in a local directory; ``lock`` keeps a second writer off it.
Cloud backends live in their own modules so that importing this package never imports a
vendor SDK.
"""

from auditseal.storage.base import (
    MAX_KEY_LENGTH,
    Head,
    HeadStore,
    ObjectProtection,
    ObjectStore,
    validate_key,
)
from auditseal.storage.filesystem import (
    FilesystemHeadStore,
    FilesystemObjectStore,
    clear_immutable,
)
from auditseal.storage.lock import WriterLock
from auditseal.storage.memory import MemoryHeadStore, MemoryObjectStore

__all__ = [
    "MAX_KEY_LENGTH",
    "FilesystemHeadStore",
    "FilesystemObjectStore",
    "Head",
    "HeadStore",
    "MemoryHeadStore",
    "MemoryObjectStore",
    "ObjectProtection",
    "ObjectStore",
    "WriterLock",
    "clear_immutable",
    "validate_key",
]
