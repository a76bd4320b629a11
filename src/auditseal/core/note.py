"""C2SP signed notes (https://c2sp.org/signed-note), Ed25519 signature type 0x01.

A signed note is UTF-8 text ending in a newline, a blank line, then one or more
signature lines ``— <key name> base64(key ID || signature)``. This module is
byte-compatible with Go's ``golang.org/x/mod/sumdb/note`` (the reference the spec was
written from): the same key string formats, the same key ID, the same parsing rules in
``open_note`` as ``note.Open``, and the same output from ``sign_note`` as ``note.Sign``.

Key strings, as Go writes them::

    verifier key:  <name>+<8 hex digits key ID>+base64(0x01 || 32-byte public key)
    private key:   PRIVATE+KEY+<name>+<8 hex digits key ID>+base64(0x01 || 32-byte seed)
    key ID:        SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian uint32

``Note.parse`` only checks syntax; ``open_note`` verifies and hands back a
``VerifiedNote``. Code that acts on a note's text should accept only the latter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditseal.errors import ConfigError, FormatError, SignatureError

ALG_ED25519 = 0x01
"""Signature type identifier byte of Ed25519 (signed-note spec, "Signature types")."""

MAX_SIGNATURES = 100
"""Signature lines accepted in one note: Go's cap. The spec requires at least 16."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
# ASCII control characters other than newline: forbidden anywhere in a note.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
# Go's unicode.IsSpace: the Unicode White_Space property. Python's str.isspace also
# counts U+001C..U+001F, which Go does not, so the set is spelled out.
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def decode_base64(text: str, what: str) -> bytes:
    """Decode standard padded base64 (RFC 4648 section 4) as Go's StdEncoding does.

    Args:
        text: the base64 text; no white space, padding required.
        what: what the text is, for the error message ("root hash", "signature").

    Raises:
        FormatError: the text is not valid base64.
    """
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise FormatError(f"{what} is not valid base64: {text!r} ({exc})") from None


def is_valid_name(name: str) -> bool:
    """Report whether ``name`` is a valid key name: non-empty, no '+', no Unicode space."""
    if not name or "+" in name or any(ch in _UNICODE_SPACES for ch in name):
        return False
    try:
        name.encode("utf-8")  # rejects lone surrogates: Go requires well-formed UTF-8
    except UnicodeEncodeError:
        return False
    return True


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """Return the key ID: SHA-256(name || 0x0A || alg || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def vkey_from_public_key(name: str, public_key: bytes) -> str:
    """Return the verifier key string for an Ed25519 public key (Go NewEd25519VerifierKey).

    Raises:
        FormatError: the name is invalid or the key is not 32 bytes.
    """
    if not is_valid_name(name):
        raise FormatError(f"invalid key name {name!r}: must be non-empty, no '+', no spaces")
    if len(public_key) != 32:
        raise FormatError(f"Ed25519 public key is {len(public_key)} bytes, expected 32")
    encoded = base64.b64encode(bytes([ALG_ED25519]) + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key):08x}+{encoded}"


class _NamedKey(Protocol):
    """A key as signature lines name it: key name and 32-bit key ID."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...


class Signer(_NamedKey, Protocol):
    """Anything that can sign note text: a local key, or later a key held in a vault."""

    def sign(self, message: bytes) -> bytes:
        """Return the signature of ``message`` (without the key ID)."""
        ...


class Verifier(_NamedKey, Protocol):
    """Anything that can check a signature by one named key."""

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether ``signature`` (without the key ID) is valid for ``message``."""
        ...


def _split_key(rest: str, kind: str) -> tuple[str, int, bytes]:
    """Split ``name+hex+base64`` the way Go's chop does and decode the parts."""
    parts = rest.split("+", 2)
    if len(parts) != 3:
        raise FormatError(f"malformed {kind}: expected <name>+<key id>+<key data>")
    name, hex_id, key64 = parts
    if not is_valid_name(name):
        raise FormatError(f"malformed {kind}: invalid key name {name!r}")
    if not _HEX8.fullmatch(hex_id):
        raise FormatError(f"malformed {kind}: key id {hex_id!r} is not 8 hex digits")
    key = decode_base64(key64, f"{kind} data")
    if not key:
        raise FormatError(f"malformed {kind}: empty key data")
    if key[0] != ALG_ED25519:
        raise FormatError(f"{kind} uses unknown signature algorithm {key[0]:#04x}")
    if len(key) != 33:
        raise FormatError(f"malformed {kind}: Ed25519 key is {len(key) - 1} bytes, expected 32")
    return name, int(hex_id, 16), key[1:]


@dataclass(frozen=True, eq=False)
class NoteSigner:
    """An Ed25519 note signer made from a ``PRIVATE+KEY+...`` string.

    Attributes:
        name: the key name.
        key_id: the 32-bit key ID.
        vkey: the matching verifier key string, to hand to verifiers.
    """

    name: str
    key_id: int
    vkey: str
    _private: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def from_private_key(cls, skey: str) -> NoteSigner:
        """Parse a private key string as Go's note.NewSigner does.

        Raises:
            FormatError: the string is malformed or its key ID does not match the key.
        """
        if not skey.startswith(_PRIVATE_PREFIX):
            raise FormatError("malformed private key: must start with PRIVATE+KEY+")
        name, kid, seed = _split_key(skey[len(_PRIVATE_PREFIX) :], "private key")
        signer = cls.from_seed(name, seed)
        if signer.key_id != kid:
            raise FormatError(
                f"private key id {kid:08x} does not match its key (expected {signer.key_id:08x})"
            )
        return signer

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> NoteSigner:
        """Make a signer from a key name and a 32-byte Ed25519 seed.

        Raises:
            FormatError: the name is invalid or the seed is not 32 bytes.
        """
        if len(seed) != 32:
            raise FormatError(f"Ed25519 seed is {len(seed)} bytes, expected 32")
        private = Ed25519PrivateKey.from_private_bytes(seed)
        public = private.public_key().public_bytes_raw()
        vkey = vkey_from_public_key(name, public)
        return cls(name=name, key_id=key_id(name, public), vkey=vkey, _private=private)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._private.sign(message)


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 note verifier made from a ``name+keyid+keydata`` string.

    Attributes:
        name: the key name.
        key_id: the 32-bit key ID.
        vkey: the verifier key string it was made from.
        public_key: the 32-byte Ed25519 public key; two verifiers are equal when their
            name, key ID and public key are.
    """

    name: str
    key_id: int
    vkey: str = field(compare=False)
    public_key: bytes = field(repr=False)
    _public: Ed25519PublicKey = field(repr=False, compare=False)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string as Go's note.NewVerifier does.

        Raises:
            FormatError: the string is malformed or its key ID does not match the key.
        """
        name, kid, public = _split_key(vkey, "verifier key")
        expected = key_id(name, public)
        if kid != expected:
            raise FormatError(
                f"verifier key id {kid:08x} does not match its key (expected {expected:08x})"
            )
        return cls(name, kid, vkey, public, Ed25519PublicKey.from_public_bytes(public))

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether ``signature`` is a valid Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def generate_key(name: str) -> tuple[str, str]:
    """Generate a new Ed25519 key pair for ``name`` from the operating system's randomness.

    Returns:
        ``(private key string, verifier key string)`` in Go's formats.

    Raises:
        FormatError: the name is not a valid key name.
    """
    if not is_valid_name(name):
        raise FormatError(f"invalid key name {name!r}: must be non-empty, no '+', no spaces")
    private = Ed25519PrivateKey.generate()  # the one place the core draws randomness
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes_raw()
    encoded_seed = base64.b64encode(bytes([ALG_ED25519]) + seed).decode("ascii")
    skey = f"{_PRIVATE_PREFIX}{name}+{key_id(name, public):08x}+{encoded_seed}"
    return skey, vkey_from_public_key(name, public)


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
