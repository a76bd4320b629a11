"""Receipts checked on the client: an event is in the log the pinned key signs.

Concept: *client-side receipt verification* (issue 5, "Client SDK"; docs/api.md,
``GET /v1/receipts/{index}``). A receipt is a C2SP tlog-proof (https://c2sp.org/tlog-proof)
with the sealed entry in its ``extra`` line. ``extra`` is not signed, but the inclusion
proof is checked from the leaf hash of exactly those bytes up to the signed root, so a
changed entry fails; the event inside is then compared with what the application sent.
No network, no trust in the server: only the verifier key the caller pinned.
"""

from __future__ import annotations

from collections.abc import Iterable

from auditseal.core.checkpoint import VerifiedCheckpoint
from auditseal.core.entry import decode_entry
from auditseal.core.notekeys import NoteVerifier
from auditseal.core.tlogproof import TlogProof, verify_tlog_proof
from auditseal.errors import EntryMismatch, FormatError

__all__ = ["verify_receipt"]


def verify_receipt(
    receipt_text: str, event_bytes: bytes | None, verifier_key: str | Iterable[str],
    origin: str | None = None,
) -> VerifiedCheckpoint:
    """Verify a receipt offline: the entry in it is in the log the pinned key signs.

    Args:
        receipt_text: the C2SP tlog-proof from :meth:`AuditsealClient.receipt`, with the
            entry in its ``extra`` line.
        event_bytes: the event as the application sent it; when given it must be exactly
            the event sealed in the entry.
        verifier_key: the log's verifier key(s) (``name+hex+base64``), pinned by the caller.
        origin: the expected log origin; None accepts any.

    Returns:
        The verified checkpoint the entry is proven to be in.

    Raises:
        FormatError: the receipt is malformed or has no entry.
        SignatureError: the checkpoint is not signed by the key.
        InclusionProofError: the entry is not in the signed tree.
        EntryMismatch: the sealed event differs from ``event_bytes``.
    """
    proof = TlogProof.parse(receipt_text.encode("utf-8"))
    if proof.extra is None:
        raise FormatError("receipt has no entry (no 'extra' line)")
    keys = [verifier_key] if isinstance(verifier_key, str) else list(verifier_key)
    verified = verify_tlog_proof(proof, proof.extra, [NoteVerifier.from_vkey(k) for k in keys],
                                 origin)
    if event_bytes is not None and decode_entry(proof.extra).event != event_bytes:
        raise EntryMismatch(what="event differs", where=f"entry {proof.index}",
                            detail="the sealed event is not the bytes the client sent")
    return verified
