"""Tests of auditseal.core.note: C2SP signed notes, byte-compatible with Go's sumdb/note.

Known answers are transcribed from golang/mod, sumdb/note/note_test.go (commit
02c991387e35f9e4c0a9b7ce137717055f8d716d), functions TestNewVerifier, TestNewSigner,
TestSign and TestOpen; and from the package doc of sumdb/note/note.go (commit 605edab4).
The Italian example note is from C2SP/C2SP signed-note.md (commit 05528762).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import pytest

from auditseal.core.note import MAX_SIGNATURES, Note, NoteSignature, open_note, sign_note
from auditseal.core.notekeys import (
    NoteSigner,
    NoteVerifier,
    generate_key,
    is_valid_name,
    key_id,
    vkey_from_public_key,
)
from auditseal.errors import ConfigError, FormatError, SignatureError

# --- Go's vectors (golang/mod sumdb/note/note_test.go) -----------------------------------
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n".encode()
ENOCH_SIG = f"\u2014 EnochRoot {ENOCH_B64}\n".encode()
SIGNED = TEXT.encode() + b"\n" + PETER_SIG  # TestSign's `want`

PETER = NoteVerifier.from_vkey(PETER_VKEY)
ENOCH = NoteVerifier.from_vkey(ENOCH_VKEY)


def seeded_signer(name: str, n: int = 0) -> NoteSigner:
    """A deterministic signer for tests: seed = 32 copies of byte n."""
    return NoteSigner.from_seed(name, bytes([n]) * 32)


# --- keys ------------------------------------------------------------------------------


def test_go_verifier_key_parses() -> None:
    assert (PETER.name, PETER.key_id, PETER.vkey) == ("PeterNeumann", 0xC74F20A3, PETER_VKEY)


def test_go_private_key_parses_and_derives_the_go_verifier_key() -> None:
    signer = NoteSigner.from_private_key(PETER_SKEY)
    assert (signer.name, signer.key_id, signer.vkey) == ("PeterNeumann", 0xC74F20A3, PETER_VKEY)
    assert "AYEKFALV" not in repr(signer)  # the private key never shows in logs


def _manglings(key: str) -> list[str]:
    """Go's TestNewVerifier/TestNewSigner: every proper substring and every +1 byte."""
    out = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)]
    out.remove(key)
    out += [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return out


def test_every_mangled_go_verifier_key_is_rejected() -> None:
    for bad in _manglings(PETER_VKEY):
        with pytest.raises(FormatError):
            NoteVerifier.from_vkey(bad)


def test_every_mangled_go_private_key_is_rejected() -> None:
    for bad in _manglings(PETER_SKEY):
        with pytest.raises(FormatError):
            NoteSigner.from_private_key(bad)


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        # The two explicit bad keys of Go's TestNewVerifier, key IDs adjusted to match.
        (
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "expected 32",
        ),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "algorithm"),
        ("PeterNeumann+c74f20a3", "expected <name>"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
        ("PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex"),
        ("PeterNeumann+c74f20a3+", "empty key data"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX", "does not match"),
    ],
    ids=["wrong-length", "unknown-alg", "no-key", "space-in-name", "0x-id", "empty", "wrong-id"],
)
def test_bad_verifier_keys(vkey: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        NoteVerifier.from_vkey(vkey)


def test_uppercase_hex_key_id_is_accepted_like_go_strconv() -> None:
    upper = NoteVerifier.from_vkey(PETER_VKEY.replace("c74f20a3", "C74F20A3"))
    assert upper == PETER  # equal keys, though the strings differ


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("PeterNeumann", True),
        ("example.com/log", True),
        ("\u00e9t\u00e9", True),
        ("a\x1cb", True),  # Go's unicode.IsSpace is false for U+001C; Python's isspace is not
        ("", False),
        ("a+b", False),
        ("a b", False),
        ("a\tb", False),
        ("a\u00a0b", False),
        ("a\u2028b", False),
        ("a\u3000b", False),
        ("a\ud800b", False),  # lone surrogate: not well-formed UTF-8
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else str(v),
)
def test_key_name_rules(name: str, valid: bool) -> None:
    assert is_valid_name(name) is valid


def test_generate_key_round_trip() -> None:
    skey, vkey = generate_key("example.com/log")
    assert re.fullmatch(r"PRIVATE\+KEY\+example\.com/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", skey)
    assert re.fullmatch(r"example\.com/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", vkey)
    signer = NoteSigner.from_private_key(skey)
    assert signer.vkey == vkey
    verified = open_note(sign_note("hello\n", [signer]), [NoteVerifier.from_vkey(vkey)])
    assert verified.verified_by == ("example.com/log",)
    assert generate_key("example.com/log") != (skey, vkey)


@pytest.mark.parametrize(
    "call",
    [
        lambda: generate_key("bad name"),
        lambda: NoteSigner.from_seed("ok", b"\x00" * 31),
        lambda: vkey_from_public_key("ok", b"\x00" * 31),
        lambda: vkey_from_public_key("a+b", b"\x00" * 32),
    ],
    ids=["generate-bad-name", "short-seed", "short-public-key", "vkey-bad-name"],
)
def test_bad_key_material(call: object) -> None:
    assert callable(call)
    with pytest.raises(FormatError):
        call()


def test_vkey_from_public_key_matches_go() -> None:
    assert vkey_from_public_key("PeterNeumann", PETER.public_key) == PETER_VKEY
    assert key_id("PeterNeumann", PETER.public_key) == 0xC74F20A3


def test_verifier_rejects_wrong_length_signature() -> None:
    sig = seeded_signer("PeterNeumann").sign(b"hi")
    verifier = NoteVerifier.from_vkey(seeded_signer("PeterNeumann").vkey)
    assert verifier.verify(b"hi", sig)
    assert not verifier.verify(b"hi", sig + b"\x00")
    assert not verifier.verify(b"hi!", sig)


# --- signing ---------------------------------------------------------------------------


def test_sign_matches_go_byte_for_byte() -> None:
    assert sign_note(TEXT, [NoteSigner.from_private_key(PETER_SKEY)]) == SIGNED


def test_sign_with_two_keys_lists_signatures_in_signer_order() -> None:
    a, b = seeded_signer("a.example", 1), seeded_signer("b.example", 2)
    note = Note.parse(sign_note(TEXT, [a, b]))
    assert [s.name for s in note.signatures] == ["a.example", "b.example"]


@dataclass(frozen=True)
class BadNameSigner:
    name: str = "bad name"
    key_id: int = 1

    def sign(self, message: bytes) -> bytes:
        return b"x" * 64


@pytest.mark.parametrize(
    ("text", "signers", "error"),
    [
        ("abc", [seeded_signer("a")], FormatError),  # Go: "Sign with short text"
        ("a\x01b\n", [seeded_signer("a")], FormatError),
        (TEXT, [BadNameSigner()], FormatError),  # Go: "Sign with bad signer"
        (TEXT, [], ValueError),
    ],
    ids=["no-final-newline", "control-char", "bad-signer-name", "no-signers"],
)
def test_sign_rejects(text: str, signers: list[NoteSigner], error: type[Exception]) -> None:
    with pytest.raises(error):
        sign_note(text, signers)


# --- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        SIGNED,
        TEXT.encode() + b"\n" + PETER_SIG + ENOCH_SIG,
        # C2SP signed-note.md's example: the text itself holds a blank line.
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed \u00e8 subito sera.\n\n\u2014 quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPe"
        "FDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n".encode(),
    ],
    ids=["go-signed", "go-two-signatures", "c2sp-example"],
)
def test_parse_round_trip(data: bytes) -> None:
    assert Note.parse(data).to_bytes() == data


def test_parse_splits_at_the_last_blank_line() -> None:
    note = Note.parse(
        "a\n\nb\n\n\u2014 quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGIT"
        "LlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n".encode()
    )
    assert note.text == "a\n\nb\n"
    assert note.signatures[0].name == "quasimodo.example/salvatore"


def test_parse_go_signature_fields() -> None:
    note = Note.parse(SIGNED)
    assert note.text == TEXT
    (sig,) = note.signatures
    assert (sig.name, sig.key_id, sig.key) == ("PeterNeumann", 0xC74F20A3, "PeterNeumann+c74f20a3")
    assert len(sig.signature) == 64


BAD_NOTES = {
    # Go's TestOpen badMsgs, in order.
    "text-only": TEXT.encode(),
    "no-signatures": TEXT.encode() + b"\n",
    "no-final-newline": TEXT.encode() + b"\n" + PETER_SIG[:-1],
    "control-char": b"\x01" + TEXT.encode() + b"\n" + PETER_SIG,
    "invalid-utf8": b"\xff" + TEXT.encode() + b"\n" + PETER_SIG,
    "name-with-space": TEXT.encode() + b"\n" + f"\u2014 Bad Name {PETER_B64}".encode(),
    "unexpected-line": TEXT.encode() + b"\n" + PETER_SIG + b"Unexpected line.\n",
    # Ours: one per remaining rejection branch.
    "hyphen-not-em-dash": TEXT.encode() + b"\n- PeterNeumann " + PETER_B64.encode() + b"\n",
    "empty-signature": TEXT.encode() + "\n\u2014 PeterNeumann \n".encode(),
    "no-space-after-name": TEXT.encode() + "\n\u2014 PeterNeumann\n".encode(),
    "bad-base64": TEXT.encode() + "\n\u2014 PeterNeumann x08go/ZJ!!\n".encode(),
    "unpadded-base64": TEXT.encode() + "\n\u2014 PeterNeumann AAAAAAA\n".encode(),
    "four-byte-signature": TEXT.encode() + "\n\u2014 PeterNeumann AAAAAA==\n".encode(),
    "too-many-signatures": TEXT.encode() + b"\n" + PETER_SIG * (MAX_SIGNATURES + 1),
    "surrogate-utf8": b"\xed\xa0\x80" + TEXT.encode() + b"\n" + PETER_SIG,
}


@pytest.mark.parametrize("data", BAD_NOTES.values(), ids=BAD_NOTES.keys())
def test_malformed_notes_are_rejected(data: bytes) -> None:
    with pytest.raises(FormatError):
        Note.parse(data)
    with pytest.raises(FormatError):
        open_note(data, [PETER])


@pytest.mark.parametrize(
    "note",
    [Note("no newline", (NoteSignature("a", 1, b"x"),)), Note("text\n", ())],
    ids=["no-final-newline", "no-signatures"],
)
def test_to_bytes_rejects(note: Note) -> None:
    with pytest.raises(FormatError):
        note.to_bytes()


# --- opening (Go's TestOpen) -------------------------------------------------------------


def test_open_one_known_one_unknown() -> None:
    verified = open_note(TEXT.encode() + b"\n" + PETER_SIG + ENOCH_SIG, [PETER])
    assert verified.text == TEXT
    assert verified.verified_by == ("PeterNeumann",)
    assert [s.key for s in verified.note.signatures] == [
        "PeterNeumann+c74f20a3",
        "EnochRoot+af0cfe78",
    ]


def test_open_both_known() -> None:
    verified = open_note(TEXT.encode() + b"\n" + PETER_SIG + ENOCH_SIG, [PETER, ENOCH])
    assert verified.verified_by == ("PeterNeumann", "EnochRoot")


def test_open_with_no_known_key_names_what_it_saw() -> None:
    with pytest.raises(SignatureError) as caught:
        open_note(TEXT.encode() + b"\n" + PETER_SIG + ENOCH_SIG, [])
    err = caught.value
    assert (err.what, err.where) == ("signed by unknown key", "note")
    assert err.evidence["signed_by"] == "PeterNeumann+c74f20a3, EnochRoot+af0cfe78"
    assert err.evidence["trusted"] == "(none)"


def test_open_ignores_a_key_sharing_only_the_name() -> None:
    impostor = NoteVerifier.from_vkey(seeded_signer("PeterNeumann").vkey)
    with pytest.raises(SignatureError, match="signed by unknown key"):
        open_note(SIGNED, [impostor])
    # ... and a key sharing only the ID would need an ID collision; the spec says the
    # same: ignore a signature unless name AND ID match.


def test_open_same_verifier_twice_is_fine() -> None:
    assert open_note(SIGNED, [ENOCH, PETER, ENOCH, PETER]).verified_by == ("PeterNeumann",)


@dataclass(frozen=True)
class AnyVerifier:
    """A verifier that claims Peter's name and ID but is a different key."""

    name: str = "PeterNeumann"
    key_id: int = 0xC74F20A3

    def verify(self, message: bytes, signature: bytes) -> bool:
        return True


def test_open_ambiguous_trust_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ambiguous key PeterNeumann\\+c74f20a3"):
        open_note(SIGNED, [PETER, AnyVerifier()])


def test_open_accepts_go_maximum_of_100_signatures() -> None:
    verified = open_note(TEXT.encode() + b"\n" + PETER_SIG * MAX_SIGNATURES, [PETER])
    assert verified.verified_by == ("PeterNeumann",)  # duplicates dropped, as Go does
    assert len(verified.note.signatures) == MAX_SIGNATURES


def test_open_accepts_16_distinct_signers_as_the_spec_requires() -> None:
    signers = [seeded_signer(f"witness{i}.example", i) for i in range(16)]
    verifiers = [NoteVerifier.from_vkey(s.vkey) for s in signers]
    verified = open_note(sign_note(TEXT, signers), verifiers)
    assert verified.verified_by == tuple(f"witness{i}.example" for i in range(16))


def test_open_invalid_signature_from_go_test() -> None:
    # Go: Open(text+"\n"+peterSig[:60]+"ABCD"+peterSig[60:]): byte offsets, em dash is 3 bytes
    with pytest.raises(SignatureError) as caught:
        open_note(TEXT.encode() + b"\n" + PETER_SIG[:60] + b"ABCD" + PETER_SIG[60:], [PETER])
    assert caught.value.what == "invalid signature"
    assert caught.value.evidence["key"] == "PeterNeumann+c74f20a3"


def test_open_duplicated_verified_and_unverified_signatures_from_go_test() -> None:
    enoch_abcd = ENOCH_SIG[:60] + b"ABCD" + ENOCH_SIG[60:]
    data = TEXT.encode() + b"\n" + PETER_SIG * 2 + ENOCH_SIG * 2 + enoch_abcd
    verified = open_note(data, [PETER])
    assert verified.verified_by == ("PeterNeumann",)
    assert len(verified.note.signatures) == 5


SHORT_PETER_SIG = base64.b64encode(PETER.key_id.to_bytes(4, "big") + b"\x00" * 10)


@pytest.mark.parametrize(
    "data",
    [
        SIGNED.replace(b"cryptography", b"cryptographY"),
        SIGNED.replace(PETER_B64[10:14].encode(), b"AAAA"),
        SIGNED.replace(PETER_B64.encode(), SHORT_PETER_SIG),
    ],
    ids=["tampered-text", "tampered-signature", "short-signature"],
)
def test_open_rejects_tampering(data: bytes) -> None:
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(data, [PETER])


def test_open_checks_only_the_first_signature_per_key_like_go() -> None:
    # Go's Open verifies one signature per (name, key ID) and drops later copies
    # unverified; a corrupt second copy therefore does not fail the note.
    bad_copy = PETER_SIG.replace(b"x08go/ZJ", b"x08go/ZK")
    assert open_note(TEXT.encode() + b"\n" + PETER_SIG + bad_copy, [PETER]).verified_by == (
        "PeterNeumann",
    )
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(TEXT.encode() + b"\n" + bad_copy + PETER_SIG, [PETER])


def test_open_where_names_the_object() -> None:
    with pytest.raises(SignatureError) as caught:
        open_note(SIGNED, [ENOCH], where="checkpoint")
    assert caught.value.where == "checkpoint"


def test_non_canonical_base64_padding_bits_are_accepted_like_go() -> None:
    # Go's base64.StdEncoding ignores the unused low bits of the last character, so
    # "...nAM=" and "...nAN=" are the same signature; to_bytes writes the canonical one.
    assert PETER_B64.endswith("AM=")
    sloppy = SIGNED.replace(b"nAM=\n", b"nAN=\n")
    assert sloppy != SIGNED
    assert open_note(sloppy, [PETER]).verified_by == ("PeterNeumann",)
    assert Note.parse(sloppy).to_bytes() == SIGNED
