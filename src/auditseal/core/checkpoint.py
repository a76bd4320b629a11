"""C2SP transparency log checkpoints (https://c2sp.org/tlog-checkpoint): the signed tree head.

A checkpoint is a signed note (see ``auditseal.core.note``) whose text is::

    <origin>\\n
    <tree size, ASCII decimal, no leading zeros>\\n
    <base64 of the 32-byte RFC 6962 root hash>\\n
    [<non-empty extension line>\\n ...]

``Checkpoint.parse`` reads the text without trusting it; ``verify_checkpoint`` checks
the signatures (and, if asked, the origin) and hands back a ``VerifiedCheckpoint``.
Code that acts on a tree head should accept only the latter.

The log's key name SHOULD match the origin, but need not: the Go checksum database
signs "go.sum database tree" with the key "sum.golang.org". So the origin is checked
against what the caller expects, never against the key name.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from auditseal.core.hashing import HASH_SIZE
from auditseal.core.note import Note, open_note, sign_note
from auditseal.core.notekeys import Signer, Verifier, decode_base64
from auditseal.errors import FormatError, SignatureError

MAX_TREE_SIZE = 2**63 - 1
"""Largest tree size accepted: Go parses sizes as int64."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x1f]")


def parse_decimal(text: str, what: str) -> int:
    """Parse a canonical ASCII decimal (no sign, no leading zeros) of at most 2**63 - 1.

    Python's ``int`` would also take "+5", "0_1", " 5" and non-ASCII digits; every one of
    them would let two different texts name the same tree, so they are refused.

    Raises:
        FormatError: the text is not a canonical decimal in range.
    """
    if not _DECIMAL.fullmatch(text):
        raise FormatError(f"{what} {text!r} is not a decimal number without leading zeros")
    value = int(text)
    if value > MAX_TREE_SIZE:
        raise FormatError(f"{what} {text} is larger than 2**63 - 1")
    return value


@dataclass(frozen=True)
class Checkpoint:
    """An unverified tree head: origin, size and root hash, plus opaque extension lines.

    Attributes:
        origin: the log's identity (first line); non-empty.
        size: the number of leaves.
        root_hash: the 32-byte RFC 6962 root of the first ``size`` leaves.
        extensions: extension lines, each non-empty, without newlines.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or _CONTROL.search(self.origin):
            raise ValueError(f"checkpoint origin {self.origin!r} is empty or has a control char")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size {self.size} is out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"checkpoint root hash is {len(self.root_hash)} bytes, expected 32")
        for line in self.extensions:
            if not line or _CONTROL.search(line):
                raise ValueError(f"checkpoint extension {line!r} is empty or has a control char")

    def body(self) -> str:
        """Return the note text: origin, size, root hash, extension lines, each + newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Parse checkpoint text strictly.

        Raises:
            FormatError: fewer than three lines, no final newline, an empty origin or
                extension line, a non-canonical size, or a root hash that is not 32 bytes
                of base64.
        """
        if not body.endswith("\n"):
            raise FormatError("checkpoint text does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError(f"checkpoint has {len(lines)} lines; at least 3 expected")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise FormatError("checkpoint origin (first line) is empty")
        if _CONTROL.search(origin):
            raise FormatError(f"checkpoint origin {origin!r} contains a control character")
        size = parse_decimal(size_text, "checkpoint size")
        root = decode_base64(root_text, "checkpoint root hash")
        if len(root) != HASH_SIZE:
            raise FormatError(f"checkpoint root hash is {len(root)} bytes, expected {HASH_SIZE}")
        for number, line in enumerate(extensions, start=4):
            if not line:
                raise FormatError(f"checkpoint extension line {number} is empty")
            if _CONTROL.search(line):
                raise FormatError(f"checkpoint line {number} contains a control character")
        return cls(origin, size, root, tuple(extensions))


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose signatures verified against trusted keys.

    Attributes:
        checkpoint: the parsed tree head.
        note_bytes: the signed note exactly as received, to store or pass on.
        verified_by: names of the trusted keys whose signatures verified.
    """

    checkpoint: Checkpoint
    note_bytes: bytes
    verified_by: tuple[str, ...]

    @property
    def origin(self) -> str:
        """The log's origin line."""
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        """The tree size."""
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        """The 32-byte root hash."""
        return self.checkpoint.root_hash


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> bytes:
    """Return the signed note for ``checkpoint``, signed by each of ``signers``."""
    return sign_note(checkpoint.body(), signers)


def parse_unverified(data: bytes) -> Checkpoint:
    """Parse a signed checkpoint WITHOUT checking signatures: for diagnostics only.

    Raises:
        FormatError: the note or its checkpoint text is malformed.
    """
    return Checkpoint.parse(Note.parse(data).text)


def verify_checkpoint(
    data: bytes, verifiers: Sequence[Verifier], origin: str | None = None
) -> VerifiedCheckpoint:
    """Verify a signed checkpoint against trusted keys and, if given, the expected origin.

    Args:
        data: the signed note.
        verifiers: the trusted keys; at least one must have signed.
        origin: the origin the caller expects; ``None`` accepts any origin.

    Raises:
        FormatError: the note or the checkpoint text is malformed.
        SignatureError: no trusted signature ("signed by unknown key"), a trusted signature
            that fails ("invalid signature"), or a different origin ("wrong origin").
    """
    try:
        opened = open_note(data, verifiers, where="checkpoint")
    except SignatureError as exc:
        # Name the log the checkpoint claims to be from: "unknown key" is far easier to
        # act on when the error says which log it was. Marked unverified, as it is.
        claimed = _claimed_origin(data)
        if claimed is not None:
            exc.evidence["claimed_origin_unverified"] = claimed
        raise
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise SignatureError(
            what="wrong origin",
            where="checkpoint",
            detail=f"expected origin {origin!r}, the checkpoint is for {checkpoint.origin!r}",
            evidence={"expected": origin, "found": checkpoint.origin},
        )
    return VerifiedCheckpoint(checkpoint, data, opened.verified_by)


def _claimed_origin(data: bytes) -> str | None:
    try:
        return parse_unverified(data).origin
    except FormatError:
        return None
