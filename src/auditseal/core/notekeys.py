"""Signed-note keys: Go's key string formats, the Ed25519 signer and verifier, key IDs.

Implements the key half of C2SP signed notes (https://c2sp.org/signed-note, "Signatures"
and "Signature types", Ed25519 type 0x01), byte-compatible with Go's
``golang.org/x/mod/sumdb/note``: the same key string formats, the same key ID, the same
parsing as ``note.NewSigner`` / ``note.NewVerifier``. The note text format and its
signing and verification are in :mod:`auditseal.core.note`.

Key strings, as Go writes them::

    verifier key:  <name>+<8 hex digits key ID>+base64(0x01 || 32-byte public key)
    private key:   PRIVATE+KEY+<name>+<8 hex digits key ID>+base64(0x01 || 32-byte seed)
    key ID:        SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian uint32
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditseal.errors import FormatError

ALG_ED25519 = 0x01
"""Signature type identifier byte of Ed25519 (signed-note spec, "Signature types")."""

_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
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
