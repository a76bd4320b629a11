"""Tests of auditseal.core.checkpoint: C2SP tlog-checkpoint text, signing and verification.

Real Go checksum database (sum.golang.org) tree heads:

- tests/vectors/go_sumdb_checkpoint_15081221.txt: the output of
  ``http https://sum.golang.org/latest`` after a witness cosigned it, transcribed from
  google/trillian-examples, witness/golang/cmd/addrwitness/README.md (commit
  7fc8e4db9946d0c5bee741b8d26d58befb39fcc7). Besides the log's signature it carries two
  ``test.example.com`` witness signatures (an Ed25519 note signature and a 76-byte
  cosignature) by keys we do not know: they must be ignored.
- SUMDB_15067302 below: the same README at an earlier version (the index did not record
  its commit), also fetched from https://sum.golang.org/latest.

The log's key is Go's built-in one: golang/go, src/cmd/go/internal/modfetch/key.go
(commit c674ce87c2e47699bb51e02885fb80519ecbfb27).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from auditseal.core.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    VerifiedCheckpoint,
    parse_decimal,
    parse_unverified,
    sign_checkpoint,
    verify_checkpoint,
)
from auditseal.core.hashing import EMPTY_ROOT
from auditseal.core.note import sign_note
from auditseal.core.notekeys import NoteSigner, NoteVerifier
from auditseal.errors import FormatError, SignatureError

VECTORS = Path(__file__).parents[1] / "vectors"

SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB = NoteVerifier.from_vkey(SUMDB_VKEY)
SUMDB_ORIGIN = "go.sum database tree"
SUMDB_15081221 = (VECTORS / "go_sumdb_checkpoint_15081221.txt").read_bytes()
SUMDB_15067302 = (
    "go.sum database tree\n15067302\ngJyioq6dwR9n+NjEWORfYmH+ubeYm3kH42BBQ0bTpYI=\n\n"
    "\u2014 sum.golang.org Az3grp1rvWOs5NKlr/xR4GLN/CDyzzakmt1o61uSxYKpK1SerqOP2ClbX/peKUZjYny"
    "omH5Xz7GZG3TpB7OeKn4E2ww=\n"
    "\u2014 test.example.com qTGhC/xIPQ0AXKHK6Y+9ypRfuvMZWPjRXM8NiOg5M1WREn07VQXyuIXM3NRNav3ieVF"
    "LUqDRK77PWDmL6w8w84UqeAw=\n"
).encode()

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()
LOG = NoteSigner.from_seed("example.com/log", b"\x01" * 32)
LOG_KEY = NoteVerifier.from_vkey(LOG.vkey)
OTHER = NoteSigner.from_seed("example.com/other", b"\x02" * 32)


# --- text codec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkpoint", "body"),
    [
        (Checkpoint("example.com/log", 0, EMPTY_ROOT), None),
        (Checkpoint("example.com/log", 5, ROOT), f"example.com/log\n5\n{ROOT_B64}\n"),
        (
            Checkpoint("example.com/log", 20852163, ROOT, ("ext one", "— two")),
            f"example.com/log\n20852163\n{ROOT_B64}\next one\n— two\n",
        ),
        (Checkpoint("go.sum database tree", MAX_TREE_SIZE, ROOT), None),
    ],
    ids=["empty-tree", "plain", "extensions", "max-size"],
)
def test_body_round_trip(checkpoint: Checkpoint, body: str | None) -> None:
    text = checkpoint.body()
    if body is not None:
        assert text == body
    assert Checkpoint.parse(text) == checkpoint


def test_c2sp_spec_example_parses() -> None:
    # C2SP/C2SP tlog-checkpoint.md (commit 27938939), the example's note text.
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = Checkpoint.parse(body)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.body() == body


BAD_BODIES = {
    "no-final-newline": f"o\n5\n{ROOT_B64}",
    "two-lines": "o\n5\n",
    "empty-origin": f"\n5\n{ROOT_B64}\n",
    "control-in-origin": f"o\x01\n5\n{ROOT_B64}\n",
    "leading-zero-size": f"o\n012\n{ROOT_B64}\n",
    "plus-size": f"o\n+5\n{ROOT_B64}\n",
    "negative-size": f"o\n-1\n{ROOT_B64}\n",
    "empty-size": f"o\n\n{ROOT_B64}\n",
    "spaced-size": f"o\n 5\n{ROOT_B64}\n",
    "underscore-size": f"o\n1_0\n{ROOT_B64}\n",
    "arabic-digit-size": f"o\n\u0663\n{ROOT_B64}\n",
    "size-over-int64": f"o\n{2**63}\n{ROOT_B64}\n",
    "root-bad-base64": "o\n5\nnot base64!\n",
    "root-unpadded": f"o\n5\n{ROOT_B64.rstrip('=')}\n",
    "root-31-bytes": f"o\n5\n{base64.b64encode(ROOT[:31]).decode()}\n",
    "root-33-bytes": f"o\n5\n{base64.b64encode(ROOT + b'x').decode()}\n",
    "empty-extension": f"o\n5\n{ROOT_B64}\n\next\n",
    "control-in-extension": f"o\n5\n{ROOT_B64}\ne\x7fok\x02\n",
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_parse_rejects(body: str) -> None:
    with pytest.raises(FormatError):
        Checkpoint.parse(body)


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("7", 7), (str(MAX_TREE_SIZE), MAX_TREE_SIZE)]
)
def test_parse_decimal_accepts_canonical(text: str, value: int) -> None:
    assert parse_decimal(text, "size") == value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "size": 1, "root_hash": ROOT},
        {"origin": "a\nb", "size": 1, "root_hash": ROOT},
        {"origin": "o", "size": -1, "root_hash": ROOT},
        {"origin": "o", "size": 2**63, "root_hash": ROOT},
        {"origin": "o", "size": 1, "root_hash": ROOT[:31]},
        {"origin": "o", "size": 1, "root_hash": ROOT, "extensions": ("",)},
        {"origin": "o", "size": 1, "root_hash": ROOT, "extensions": ("a\nb",)},
    ],
    ids=[
        "empty-origin",
        "newline-origin",
        "negative",
        "too-big",
        "short-root",
        "empty-ext",
        "newline-ext",
    ],
)
def test_constructor_refuses_values_that_cannot_be_encoded(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Checkpoint(**kwargs)  # type: ignore[arg-type]


# --- signing and verification -------------------------------------------------------------


def test_sign_and_verify_round_trip() -> None:
    checkpoint = Checkpoint("example.com/log", 5, ROOT)
    signed = sign_checkpoint(checkpoint, [LOG])
    verified = verify_checkpoint(signed, [LOG_KEY], origin="example.com/log")
    assert verified == VerifiedCheckpoint(checkpoint, signed, ("example.com/log",))
    assert (verified.origin, verified.size, verified.root_hash) == ("example.com/log", 5, ROOT)
    assert parse_unverified(signed) == checkpoint


def test_verify_without_origin_accepts_any_origin() -> None:
    signed = sign_checkpoint(Checkpoint("somewhere/else", 1, ROOT), [LOG])
    assert verify_checkpoint(signed, [LOG_KEY]).origin == "somewhere/else"


def test_wrong_origin() -> None:
    signed = sign_checkpoint(Checkpoint("example.com/log", 5, ROOT), [LOG])
    with pytest.raises(SignatureError) as caught:
        verify_checkpoint(signed, [LOG_KEY], origin="example.com/other-log")
    err = caught.value
    assert (err.what, err.where) == ("wrong origin", "checkpoint")
    assert err.evidence == {"expected": "example.com/other-log", "found": "example.com/log"}


def test_unknown_key_error_names_the_claimed_origin() -> None:
    signed = sign_checkpoint(Checkpoint("example.com/other", 5, ROOT), [OTHER])
    with pytest.raises(SignatureError) as caught:
        verify_checkpoint(signed, [LOG_KEY])
    err = caught.value
    assert (err.what, err.where) == ("signed by unknown key", "checkpoint")
    assert err.evidence["claimed_origin_unverified"] == "example.com/other"
    assert err.evidence["signed_by"] == f"example.com/other+{OTHER.key_id:08x}"


def test_unknown_key_on_unparseable_body_still_reports() -> None:
    signed = sign_note("not a checkpoint\n", [OTHER])
    with pytest.raises(SignatureError) as caught:
        verify_checkpoint(signed, [LOG_KEY])
    assert "claimed_origin_unverified" not in caught.value.evidence


@pytest.mark.parametrize(
    ("old", "new"),
    [(b"\n5\n", b"\n6\n"), (b"example.com/log\n", b"example.com/lug\n")],
    ids=["tampered-size", "tampered-origin"],
)
def test_tampered_checkpoint_fails_signature(old: bytes, new: bytes) -> None:
    signed = sign_checkpoint(Checkpoint("example.com/log", 5, ROOT), [LOG])
    with pytest.raises(SignatureError, match="invalid signature"):
        verify_checkpoint(signed.replace(old, new, 1), [LOG_KEY])


def test_signed_note_that_is_not_a_checkpoint() -> None:
    with pytest.raises(FormatError, match="at least 3"):
        verify_checkpoint(sign_note("just a note\n", [LOG]), [LOG_KEY])


def test_malformed_note_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        verify_checkpoint(b"example.com/log\n5\n" + ROOT_B64.encode() + b"\n", [LOG_KEY])


def test_cosigned_checkpoint_verifies_for_each_trusted_key() -> None:
    signed = sign_checkpoint(Checkpoint("example.com/log", 5, ROOT), [LOG, OTHER])
    both = verify_checkpoint(signed, [LOG_KEY, NoteVerifier.from_vkey(OTHER.vkey)])
    assert both.verified_by == ("example.com/log", "example.com/other")


# --- the real Go checksum database ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "size", "root_b64"),
    [
        (SUMDB_15081221, 15081221, "BoMMe1wd25Tco0mYGROkyqxHZWx+hcSCtMV315Lu6Lg="),
        (SUMDB_15067302, 15067302, "gJyioq6dwR9n+NjEWORfYmH+ubeYm3kH42BBQ0bTpYI="),
    ],
    ids=["15081221-cosigned", "15067302"],
)
def test_real_sumdb_checkpoint_verifies(data: bytes, size: int, root_b64: str) -> None:
    verified = verify_checkpoint(data, [SUMDB], origin=SUMDB_ORIGIN)
    assert verified.size == size
    assert verified.root_hash == base64.b64decode(root_b64)
    assert verified.verified_by == ("sum.golang.org",)  # the witnesses' keys are unknown
    assert verified.note_bytes == data


def test_sumdb_origin_is_not_its_key_name() -> None:
    with pytest.raises(SignatureError, match="wrong origin"):
        verify_checkpoint(SUMDB_15081221, [SUMDB], origin="sum.golang.org")


def test_sumdb_checkpoint_with_tampered_size_fails() -> None:
    tampered = SUMDB_15081221.replace(b"\n15081221\n", b"\n15081222\n")
    with pytest.raises(SignatureError, match="invalid signature"):
        verify_checkpoint(tampered, [SUMDB], origin=SUMDB_ORIGIN)


def test_a_corrupted_sumdb_key_is_rejected_by_its_key_id() -> None:
    # The key data was quoted to us once with a corrupted tail; the key ID catches it.
    with pytest.raises(FormatError, match="does not match"):
        NoteVerifier.from_vkey(
            "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ery+KzBHJGKYkdd0="
        )
