"""Every error auditseal raises, grouped by who must act.

The tree::

    AuditsealError                      base of everything below
    ├── IntegrityError                  the log or a proof is not what it claims: page a human.
    │   │                               Each carries its evidence (what, where, expected, found).
    │   ├── EntryMismatch               an entry's hash disagrees with the tiles/checkpoint
    │   ├── ObjectMissing               a sealed object the tree needs is absent
    │   ├── ObjectCorrupt               a sealed object cannot be decoded (truncated, bad length)
    │   ├── RootMismatch                re-derived root != the signed checkpoint's root
    │   ├── CheckpointRollback          the published head is older than a checkpoint we know
    │   ├── SignatureError              a note's signature is invalid or by an unknown key
    │   ├── InclusionProofError         an inclusion proof does not lead to the root
    │   └── ConsistencyProofError       two tree heads are not consistent (fork / rewrite)
    ├── FormatError                     bytes that do not parse as the format says (note,
    │                                   checkpoint, tile path, proof file, entry); the caller
    │                                   handed us something malformed
    ├── StorageError                    infrastructure; may be retried
    │   ├── ObjectNotFound              read of a key that does not exist
    │   ├── StorageConflict             create of an existing key with different bytes, or a
    │   │                               compare-and-swap that lost
    │   ├── StorageUnavailable          transient: try again later
    │   ├── StorageRefused              the storage refused a change because the object is
    │   │                               protected (WORM policy, legal hold, immutable file)
    │   └── LogLocked                   another writer holds the log
    ├── IngestError                     bad input: reject that record with a reason
    │   └── EntryTooLarge               the entry exceeds the tlog-tiles 65,535-byte limit
    ├── ConfigError                     missing/invalid configuration or key material
    └── OverloadError                   back off and retry (HTTP 503 + Retry-After)

Integrity errors are raised by the pure core and by the verifier; the CLI maps each family
to a distinct exit code in one place (``auditseal.cli.exitcodes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class AuditsealError(Exception):
    """Base class of every auditseal error."""


# --- integrity -------------------------------------------------------------------------------


@dataclass(eq=False)
class IntegrityError(AuditsealError):
    """The log or a proof is not what it claims.

    Attributes:
        what: the kind of failure in one or two words ("modified", "missing", "truncated",
            "reordered", "unknown key", "rolled back", "forked", ...).
        where: the location: an entry index ("entry 41"), an object key ("tile/0/001"), or
            a checkpoint ("checkpoint size 512").
        detail: human text with the evidence (expected vs found).
    """

    what: str
    where: str
    detail: str = ""
    evidence: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}"
        return f"{text}: {self.detail}" if self.detail else text


class EntryMismatch(IntegrityError):
    """An entry's leaf hash disagrees with the sealed tiles or the signed root."""


class ObjectMissing(IntegrityError):
    """A sealed object the tree needs is absent."""


class ObjectCorrupt(IntegrityError):
    """A sealed object exists but cannot be decoded (truncated, wrong size)."""


class RootMismatch(IntegrityError):
    """The root re-derived from the entries differs from the signed checkpoint's root."""


class CheckpointRollback(IntegrityError):
    """The published head is older than a checkpoint already known."""


class SignatureError(IntegrityError):
    """A signed note's signature is invalid, or no trusted key signed it."""


class InclusionProofError(IntegrityError):
    """An inclusion proof does not lead from the leaf to the root."""


class ConsistencyProofError(IntegrityError):
    """Two tree heads cannot both be views of one append-only log."""


# --- input formats ---------------------------------------------------------------------------


class FormatError(AuditsealError):
    """Bytes that do not parse as the named format (note, checkpoint, proof, entry, key)."""


# --- storage ---------------------------------------------------------------------------------


class StorageError(AuditsealError):
    """Storage infrastructure failed; some subclasses may be retried."""


class ObjectNotFound(StorageError):
    """A read named a key that does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key}")
        self.key = key


class StorageConflict(StorageError):
    """A create found different bytes at the key, or a compare-and-swap lost the race."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class StorageUnavailable(StorageError):
    """Transient failure (timeout, throttling, connection reset): retry with backoff."""


class StorageRefused(StorageError):
    """The storage refused to change or delete an object because it is protected.

    Attributes:
        key: the object.
        code: the storage's own word for why, e.g. Azure's ``BlobImmutableDueToPolicy`` or
            ``BlobImmutableDueToLegalHold``, or ``EPERM`` on a file system.
    """

    def __init__(self, key: str, code: str, message: str = "") -> None:
        super().__init__(f"{key}: refused ({code}){': ' + message if message else ''}")
        self.key = key
        self.code = code


class LogLocked(StorageError):
    """Another process holds the writer lock of this log."""


# --- ingest ----------------------------------------------------------------------------------


class IngestError(AuditsealError):
    """A record was rejected; the message says why. Other records are unaffected."""


class EntryTooLarge(IngestError):
    """The encoded entry exceeds the tlog-tiles limit of 65,535 bytes per entry."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"entry is {size} bytes; the tlog-tiles entry bundle format limits an entry "
            f"to {limit} bytes"
        )
        self.size = size
        self.limit = limit


# --- configuration and load ------------------------------------------------------------------


class ConfigError(AuditsealError):
    """Missing or invalid configuration or key material; the message says what to fix."""


class OverloadError(AuditsealError):
    """Too much in flight; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
