"""C2SP transparency log proofs (https://c2sp.org/tlog-proof): an offline inclusion proof.

A ``.tlog-proof`` file bundles what a relying party needs to check, with no network,
that one entry is in the log::

    c2sp.org/tlog-proof@v1
    extra <base64>                      optional; opaque and NOT authenticated
    index <decimal, no leading zeros>
    <base64 proof hash>                 zero or more, leaf's sibling first, up to the
    ...                                 root's child (RFC 6962 section 2.1.1)
    <empty line>
    <the signed checkpoint, verbatim>   see auditseal.core.checkpoint

The entry itself is not in the file: the verifier holds it (or gets it out of band)
and recomputes its leaf hash. The ``extra`` data is carried but never trusted: the
checkpoint signatures do not cover it, so ``verify_tlog_proof`` ignores it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from auditseal.core.checkpoint import (
    VerifiedCheckpoint,
    parse_decimal,
    parse_unverified,
    verify_checkpoint,
)
from auditseal.core.hashing import HASH_SIZE, leaf_hash
from auditseal.core.notekeys import Verifier, decode_base64
from auditseal.core.proofs import verify_inclusion
from auditseal.errors import FormatError, InclusionProofError

HEADER = "c2sp.org/tlog-proof@v1"
"""First line of every proof (tlog-proof, "Format")."""

MAX_PROOF_HASHES = 63
"""A tree of at most 2**63 - 1 leaves has inclusion proofs of at most 63 hashes."""

_EXTRA = "extra "
_INDEX = "index "


@dataclass(frozen=True)
class TlogProof:
    """A parsed, unverified tlog-proof.

    Attributes:
        index: zero-based index of the entry in the log.
        hashes: the inclusion proof, leaf's sibling first.
        checkpoint: the signed checkpoint note, byte for byte.
        extra: the opaque, unauthenticated extra data, or ``None`` when absent.
    """

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def to_bytes(self) -> bytes:
        """Encode the proof in the c2sp.org/tlog-proof@v1 text format.

        Raises:
            FormatError: a hash is not 32 bytes or the index is negative.
        """
        if self.index < 0:
            raise FormatError(f"tlog-proof index {self.index} is negative")
        lines = [HEADER]
        if self.extra is not None:
            lines.append(_EXTRA + base64.b64encode(self.extra).decode("ascii"))
        lines.append(f"{_INDEX}{self.index}")
        for number, node in enumerate(self.hashes):
            if len(node) != HASH_SIZE:
                raise FormatError(f"tlog-proof hash {number} is {len(node)} bytes, expected 32")
            lines.append(base64.b64encode(node).decode("ascii"))
        return ("\n".join(lines) + "\n\n").encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, data: bytes) -> TlogProof:
        """Parse a proof file, checking its syntax and that of the embedded checkpoint.

        Raises:
            FormatError: a wrong header, a bad ``extra`` or ``index`` line, a hash that is
                not 32 bytes of base64, no empty line before the checkpoint, too many
                hashes, or a malformed checkpoint.
        """
        # The proof lines are never empty, so the first empty line ends them.
        end = data.find(b"\n\n")
        if end < 0:
            raise FormatError("tlog-proof has no empty line before its checkpoint")
        try:
            lines = data[:end].decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise FormatError("tlog-proof header lines are not ASCII") from None
        checkpoint = data[end + 2 :]
        if lines[0] != HEADER:
            raise FormatError(f"tlog-proof does not start with {HEADER!r}: {lines[0][:40]!r}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith(_EXTRA):
            extra = decode_base64(rest[0][len(_EXTRA) :], "tlog-proof extra data")
            rest = rest[1:]
        if not rest or not rest[0].startswith(_INDEX):
            raise FormatError("tlog-proof has no 'index <n>' line after its header")
        index = parse_decimal(rest[0][len(_INDEX) :], "tlog-proof index")
        if len(rest) - 1 > MAX_PROOF_HASHES:
            raise FormatError(
                f"tlog-proof has {len(rest) - 1} hashes; at most {MAX_PROOF_HASHES} are possible"
            )
        hashes = tuple(_parse_hash(number, line) for number, line in enumerate(rest[1:]))
        if not checkpoint:
            raise FormatError("tlog-proof has no checkpoint after its empty line")
        parse_unverified(checkpoint)  # syntax only: fail early on a malformed checkpoint
        return cls(index, hashes, checkpoint, extra)


def _parse_hash(number: int, line: str) -> bytes:
    node = decode_base64(line, f"tlog-proof hash {number}")
    if len(node) != HASH_SIZE:
        raise FormatError(f"tlog-proof hash {number} is {len(node)} bytes, expected {HASH_SIZE}")
    return node


def verify_tlog_proof(
    proof: TlogProof, entry: bytes, verifiers: Sequence[Verifier], origin: str | None = None
) -> VerifiedCheckpoint:
    """Verify that ``entry`` is at ``proof.index`` in the log the checkpoint commits to.

    Steps: verify the checkpoint's signatures (and origin, if given), check the index is
    inside the tree, then check the inclusion proof from ``SHA-256(0x00 || entry)`` up to
    the signed root. ``proof.extra`` plays no part.

    Args:
        proof: the parsed proof.
        entry: the entry bytes exactly as logged.
        verifiers: the trusted log (and witness) keys.
        origin: the expected log origin; ``None`` accepts any.

    Returns:
        The verified checkpoint the entry is proven to be in.

    Raises:
        FormatError: the checkpoint is malformed.
        SignatureError: the checkpoint is not signed by a trusted key, or has the wrong origin.
        InclusionProofError: the index is outside the tree, or the proof does not lead to
            the root.
    """
    verified = verify_checkpoint(proof.checkpoint, verifiers, origin)
    if proof.index >= verified.size:
        raise InclusionProofError(
            what="index beyond tree size",
            where=f"entry {proof.index}",
            detail=f"the checkpoint's tree has {verified.size} entries",
            evidence={"index": str(proof.index), "size": str(verified.size)},
        )
    verify_inclusion(leaf_hash(entry), proof.index, verified.size, proof.hashes, verified.root_hash)
    return verified
