"""Reading the head: the latest signed checkpoint, verified before anything trusts it."""

from __future__ import annotations

from auditseal.core.checkpoint import VerifiedCheckpoint, verify_checkpoint
from auditseal.core.notekeys import NoteVerifier
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
