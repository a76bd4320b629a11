"""C2SP signed notes (https://c2sp.org/signed-note), Ed25519 signature type 0x01.

A signed note is UTF-8 text ending in a newline, a blank line, then one or more
signature lines ``— <key name> base64(key ID || signature)``. This module is
byte-compatible with Go's ``golang.org/x/mod/sumdb/note`` (the reference the spec was
written from): the same parsing rules in ``open_note`` as ``note.Open``, and the same
output from ``sign_note`` as ``note.Sign``. The keys that sign and verify notes, their
string formats and key IDs are in :mod:`auditseal.core.notekeys`.

``Note.parse`` only checks syntax; ``open_note`` verifies and hands back a
``VerifiedNote``. Code that acts on a note's text should accept only the latter.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from auditseal.core.notekeys import Signer, Verifier, decode_base64, is_valid_name
from auditseal.errors import ConfigError, FormatError, SignatureError

MAX_SIGNATURES = 100
"""Signature lines accepted in one note: Go's cap. The spec requires at least 16."""

_SIG_PREFIX = "\u2014 "  # em dash, space
# ASCII control characters other than newline: forbidden anywhere in a note.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key ID, and the signature bytes after the key ID."""

    name: str
    key_id: int
    signature: bytes

    @property
    def key(self) -> str:
        """``name+keyid``, how Go and our errors name a key."""
        return f"{self.name}+{self.key_id:08x}"

    def line(self) -> str:
        """Return the signature line, without its newline."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(raw).decode('ascii')}"


@dataclass(frozen=True)
class Note:
    """A parsed, unverified signed note: its text and its signature lines, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def parse(cls, data: bytes) -> Note:
        """Parse a signed note without verifying it (the syntax half of Go's note.Open).

        Raises:
            FormatError: the bytes are not a well-formed signed note.
        """
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"note is not valid UTF-8: {exc}") from None
        if bad := _CONTROL.search(message):
            raise FormatError(
                f"note contains control character {bad.group()!r} at offset {bad.start()}"
            )
        # The text is separated from the signatures by the *last* blank line.
        split = message.rfind("\n\n")
        if split < 0:
            raise FormatError("note has no blank line before its signatures")
        text, block = message[: split + 1], message[split + 2 :]
        if not block or not block.endswith("\n"):
            raise FormatError("note signature block is empty or does not end in a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise FormatError(f"note has {len(lines)} signatures; at most {MAX_SIGNATURES}")
        return cls(text, tuple(_parse_signature_line(line) for line in lines))

    def to_bytes(self) -> bytes:
        """Encode the note: text, blank line, signature lines (base64 re-encoded canonically).

        Raises:
            FormatError: the text does not end in a newline or there are no signatures.
        """
        if not self.text.endswith("\n"):
            raise FormatError("note text must end with a newline")
        if not self.signatures:
            raise FormatError("a signed note needs at least one signature")
        lines = "".join(sig.line() + "\n" for sig in self.signatures)
        return (self.text + "\n" + lines).encode("utf-8")


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise FormatError(f"note signature line does not start with an em dash: {line[:40]!r}")
    name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not is_valid_name(name):
        raise FormatError(f"note signature has invalid key name {name!r}")
    if not b64:
        raise FormatError(f"note signature by {name} is empty")
    raw = decode_base64(b64, f"note signature by {name}")
    if len(raw) < 5:
        raise FormatError(f"note signature by {name} is {len(raw)} bytes; at least 5 expected")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def sign_note(text: str, signers: Sequence[Signer]) -> bytes:
    """Sign ``text`` with each signer and return the encoded note, as Go's note.Sign does.

    Raises:
        FormatError: the text does not end in a newline or holds a control character, or
            a signer has an invalid name.
        ValueError: no signers were given.
    """
    if not signers:
        raise ValueError("sign_note needs at least one signer")
    if not text.endswith("\n"):
        raise FormatError("note text must end with a newline")
    if _CONTROL.search(text):
        raise FormatError("note text must not contain control characters other than newline")
    message = text.encode("utf-8")
    sigs: list[NoteSignature] = []
    for signer in signers:
        if not is_valid_name(signer.name):
            raise FormatError(f"signer has invalid key name {signer.name!r}")
        sigs.append(NoteSignature(signer.name, signer.key_id, signer.sign(message)))
    return Note(text, tuple(sigs)).to_bytes()


@dataclass(frozen=True)
class VerifiedNote:
    """A note at least one trusted key signed, and whose every known signature verified.

    Attributes:
        text: the note text (ends in a newline).
        verified_by: names of the keys whose signatures verified, in note order.
        note: the parsed note, with every signature line (including unknown keys).
    """

    text: str
    verified_by: tuple[str, ...]
    note: Note


def _index_verifiers(verifiers: Sequence[Verifier]) -> dict[tuple[str, int], Verifier]:
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        if slot in known and known[slot] != verifier:
            # Two different keys under one name and ID: the trust list itself is wrong.
            raise ConfigError(f"ambiguous key {verifier.name}+{verifier.key_id:08x}")
        known[slot] = verifier
    return known


def open_note(data: bytes, verifiers: Sequence[Verifier], where: str = "note") -> VerifiedNote:
    """Parse and verify a signed note, with the semantics of Go's note.Open.

    Signatures by unknown keys (name and ID not both matching a verifier) are ignored.
    Every signature by a known key must verify, and at least one must exist.

    Args:
        data: the encoded note.
        verifiers: the trusted keys.
        where: how errors name the note ("note", "checkpoint").

    Raises:
        FormatError: the note is malformed.
        SignatureError: no trusted key signed the note (what="signed by unknown key"), or a
            trusted key's signature does not verify (what="invalid signature").
        ConfigError: two different verifiers share a name and key ID.
    """
    note = Note.parse(data)
    known = _index_verifiers(verifiers)
    message = note.text.encode("utf-8")
    verified: list[str] = []
    seen: set[tuple[str, int]] = set()
    for sig in note.signatures:
        slot = (sig.name, sig.key_id)
        verifier = known.get(slot)
        if verifier is None or slot in seen:
            continue  # unknown key, or a repeated signature Go drops unverified
        seen.add(slot)
        if not verifier.verify(message, sig.signature):
            raise SignatureError(
                what="invalid signature",
                where=where,
                detail=f"the signature by trusted key {sig.key} does not verify",
                evidence={"key": sig.key, "signature": base64.b64encode(sig.signature).decode()},
            )
        verified.append(sig.name)
    if not verified:
        seen_keys = ", ".join(sig.key for sig in note.signatures)
        trusted = ", ".join(f"{name}+{kid:08x}" for name, kid in known) or "(none)"
        raise SignatureError(
            what="signed by unknown key",
            where=where,
            detail=f"signed by {seen_keys}; trusted keys are {trusted}",
            evidence={"signed_by": seen_keys, "trusted": trusted},
        )
    return VerifiedNote(note.text, tuple(verified), note)
