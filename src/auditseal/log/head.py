"""Reading the head: the latest signed checkpoint, verified before anything trusts it."""

from __future__ import annotations

from auditseal.core.checkpoint import VerifiedCheckpoint, verify_checkpoint
from auditseal.core.notekeys import NoteVerifier
from auditseal.errors import LogLocked, StorageConflict, StorageUnavailable
from auditseal.storage.base import HeadStore


def load_head(
    head: HeadStore, verifier: NoteVerifier, origin: str
) -> tuple[VerifiedCheckpoint, str] | None:
    """Return the verified head checkpoint and its version token, or None for a new log.

    Raises:
        SignatureError: the head is not signed by ``verifier``'s key.
        FormatError: the head is not a checkpoint.
    """
    loaded = head.load()
    if loaded is None:
        return None
    checkpoint = verify_checkpoint(loaded.data, [verifier], origin=origin)
    return checkpoint, loaded.version


def swap_head(head: HeadStore, note: bytes, version: str | None) -> str:
    """Move the head to ``note`` by compare-and-swap; return the new version token.

    A swap whose answer was lost (a timeout after the storage applied it) leaves the
    caller's token stale; the head is then read back, and if it is our note the swap did
    happen. Anything else on the head means another writer.

    Raises:
        LogLocked: someone else moved the head.
        StorageUnavailable: the storage is down and the head is not ours.
    """
    try:
        return head.swap(note, version)
    except StorageUnavailable:
        current = head.load()
        if current is None or current.data != note:
            raise
        return current.version
    except StorageConflict as exc:
        current = head.load()
        if current is not None and current.data == note:
            return current.version
        raise LogLocked(
            f"the head checkpoint of this log was changed by someone else ({exc}); "
            "another writer is active, stop it and reopen the log"
        ) from exc
