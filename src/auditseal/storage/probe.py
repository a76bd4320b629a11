"""The storage probe: prove, by trying, that sealed objects cannot be changed or deleted.

A log is only as trustworthy as its storage's refusal to rewrite it. Reading a policy's
settings says what *should* happen; the probe checks what *does* happen. It seals one canary
object exactly as the log seals its tiles (``ObjectStore.create``), then deliberately
tampers with it through a ``TamperTarget`` -- the narrow back door each backend offers for
this purpose only -- and records, per attempt, whether the storage refused and with which
code (Azure ``BlobImmutableDueToPolicy``, ``EPERM`` from a file system immutable attribute).

Attempts, in this order so that a successful delete cannot hide the others:

* ``overwrite``: replace the canary's bytes;
* ``set_metadata``: change what describes it (Azure metadata; file mode and times);
* ``set_tier``: move it to another access tier. Reported, but it does not decide the
  verdict: Azure immutable storage allows tier changes by design ("You can change the access
  tier of a blob with the Set Blob Tier operation", immutable storage overview; reference
  notes 1.10) because the content cannot change; a file system has no tiers;
* ``delete``: remove it.

The canary's key (``probe/canary-<UTC time>-<random>``) lies outside the tlog-tiles tree
(``tile/``, ``checkpoint``, ``checkpoints/``), so verifiers and readers never see it. On WORM
storage it can never be deleted again; the report says so.

The last probe of a log is remembered in ``<log state>/last-probe.json``
(:func:`save_probe_record`, written atomically; :func:`load_probe_record`): time, verdict,
who ran it and the full report, for ``GET /v1/integrity``.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from auditseal.clock import Clock, SystemClock
from auditseal.errors import ConfigError, StorageError, StorageRefused
from auditseal.storage.base import ObjectStore, validate_key
from auditseal.storage.durable import replace_file
from auditseal.storage.filesystem import FilesystemObjectStore
from auditseal.storage.filesystem_tamper import FilesystemTamper

CANARY_PREFIX = "probe/"
VERDICT_ACTIONS = ("overwrite", "set_metadata", "delete")
"""Attempts that must be refused for the storage to count as protected."""
ALL_ACTIONS = ("overwrite", "set_metadata", "set_tier", "delete")
LAST_PROBE_FILE = "last-probe.json"
"""The last probe's record, in the log's private state folder."""


@runtime_checkable
class TamperTarget(Protocol):
    """Deliberately bypass the write-once rules on one object; only the probe uses this.

    Each method returns normally when the storage let the change happen, raises
    ``StorageRefused(key, code, message)`` when the storage refused it because the object is
    protected, ``NotImplementedError(reason)`` when the action does not exist on this
    storage, and another ``StorageError`` when it failed for some other reason.
    """

    def overwrite(self, key: str, data: bytes) -> None:
        """Replace the object's bytes."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object."""
        ...

    def set_metadata(self, key: str) -> None:
        """Change the object's metadata (Azure metadata; file mode and times)."""
        ...

    def set_tier(self, key: str) -> None:
        """Move the object to another access tier."""
        ...

    def describe(self) -> str:
        """Where the tampering goes, for humans."""
        ...


class Outcome(enum.Enum):
    """What happened to one tampering attempt."""

    REFUSED = "refused"
    NOT_REFUSED = "NOT refused"
    NOT_APPLICABLE = "not applicable"
    ERROR = "error"


@dataclass(frozen=True)
class Attempt:
    """One tampering attempt and the storage's answer.

    Attributes:
        action: overwrite, set_metadata, set_tier or delete.
        outcome: refused, NOT refused, not applicable, or error (failed for another reason).
        code: the storage's own word (``BlobImmutableDueToPolicy``, ``EPERM``), or "".
        message: the storage's message, or why the action does not apply.
        decides: whether this attempt counts for the verdict (see ``VERDICT_ACTIONS``).
    """

    action: str
    outcome: Outcome
    code: str = ""
    message: str = ""
    decides: bool = True


@dataclass(frozen=True)
class ProbeReport:
    """Everything the probe found out.

    Attributes:
        storage: the storage's description.
        canary_key: the object tampered with.
        attempts: one per action, in the order tried.
    """

    storage: str
    canary_key: str
    attempts: tuple[Attempt, ...]

    @property
    def protected(self) -> bool:
        """True only if every deciding attempt was refused."""
        deciding = [a for a in self.attempts if a.decides]
        return bool(deciding) and all(a.outcome is Outcome.REFUSED for a in deciding)

    @property
    def canary_note(self) -> str:
        """What became of the canary."""
        deleted = any(a.action == "delete" and a.outcome is Outcome.NOT_REFUSED
                      for a in self.attempts)
        if deleted:
            return f"the canary {self.canary_key} was deleted by the delete attempt"
        return (f"the canary {self.canary_key} stays in the storage: protected storage will "
                "not let anyone delete it until its retention ends or its hold is cleared; "
                "it is outside the log's tree, so readers and verifiers ignore it")

    def verdict(self) -> str:
        """One plain sentence: protected, or NOT protected and why."""
        if self.protected:
            return (f"the storage is protected: every attempt to change or delete a sealed "
                    f"object was refused ({self.storage})")
        deciding = [a for a in self.attempts if a.decides]
        allowed = [a.action for a in deciding if a.outcome is Outcome.NOT_REFUSED]
        unclear = [a.action for a in deciding if a.outcome is Outcome.ERROR]
        reasons = []
        if allowed:
            reasons.append(f"{_join(allowed)} of a sealed object succeeded")
        if unclear:
            reasons.append(f"{_join(unclear)} failed for another reason, so protection is "
                           "unproven")
        return f"the storage is NOT protected: {'; '.join(reasons)} ({self.storage})"

    def to_json(self) -> dict[str, object]:
        """The report as JSON-ready values."""
        return {
            "storage": self.storage,
            "canary_key": self.canary_key,
            "protected": self.protected,
            "verdict": self.verdict(),
            "canary": self.canary_note,
            "attempts": [
                {"action": a.action, "outcome": a.outcome.value, "code": a.code,
                 "message": a.message, "decides_verdict": a.decides}
                for a in self.attempts
            ],
        }


def canary_key(clock: Clock, token: str | None = None) -> str:
    """``probe/canary-<YYYYmmddTHHMMSSZ>-<16 hex>``: unique, sortable, outside the tree."""
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    return validate_key(f"{CANARY_PREFIX}canary-{stamp}-{token or secrets.token_hex(8)}")


def run_probe(store: ObjectStore, target: TamperTarget, *, clock: Clock | None = None,
              key: str | None = None) -> ProbeReport:
    """Seal a canary in ``store``, tamper with it through ``target``, report the answers.

    Args:
        store: the log's object store; the canary is sealed exactly as log objects are.
        target: the same storage's tamper interface.
        clock: names the canary (default: the system clock).
        key: the canary's key (default: ``canary_key``).

    Raises:
        StorageError: the canary itself could not be written.
    """
    key = key or canary_key(clock or SystemClock())
    original = f"auditseal storage probe canary {key}\n".encode()
    store.create(key, original)
    tampered = b"tampered by auditseal probe\n"
    actions: dict[str, Callable[[], None]] = {
        "overwrite": lambda: target.overwrite(key, tampered),
        "set_metadata": lambda: target.set_metadata(key),
        "set_tier": lambda: target.set_tier(key),
        "delete": lambda: target.delete(key),
    }
    attempts = tuple(_attempt(name, actions[name]) for name in ALL_ACTIONS)
    return ProbeReport(storage=target.describe(), canary_key=key, attempts=attempts)


def _attempt(action: str, call: Callable[[], None]) -> Attempt:
    decides = action in VERDICT_ACTIONS
    try:
        call()
    except StorageRefused as exc:
        return Attempt(action, Outcome.REFUSED, exc.code, _message(exc), decides)
    except NotImplementedError as exc:
        return Attempt(action, Outcome.NOT_APPLICABLE, "", str(exc), decides=False)
    except StorageError as exc:
        return Attempt(action, Outcome.ERROR, type(exc).__name__, str(exc), decides)
    return Attempt(action, Outcome.NOT_REFUSED, "", "the storage accepted the change", decides)


def _message(exc: StorageRefused) -> str:
    text = str(exc)
    marker = f"refused ({exc.code})"
    return text.split(marker, 1)[1].lstrip(": ") if marker in text else text


def _join(words: list[str]) -> str:
    names = [w.replace("_", " ") for w in words]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def tamper_target(store: ObjectStore) -> TamperTarget:
    """The tamper interface of ``store``'s own backend.

    Raises:
        ConfigError: the backend has no tamper interface (or does not expose its client).
    """
    if isinstance(store, FilesystemObjectStore):
        return FilesystemTamper(store)
    if type(store).__name__ == "AzureBlobObjectStore":
        from auditseal.azure.tamper import AzureBlobTamper  # loads the Azure SDK

        return AzureBlobTamper.for_store(store)  # type: ignore[arg-type]
    raise ConfigError(f"the probe cannot tamper with {store.describe()}")


def probe_record(report: ProbeReport, when: datetime, by: str) -> dict[str, Any]:
    """What is remembered of one probe run: when, by whom, the verdict, the report.

    Args:
        report: the probe's report.
        when: when it ran (aware datetime; written as RFC 3339 UTC).
        by: who ran it ("cli", or the service's principal).
    """
    stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"time": stamp, "by": by, "protected": report.protected,
            "verdict": report.verdict(), "storage": report.storage,
            "canary_key": report.canary_key, "report": report.to_json()}


def save_probe_record(state: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` to ``state/last-probe.json`` atomically (temp file, fsync, rename).

    Readers see the old record or the new one, never a torn file.

    Raises:
        OSError: the state folder cannot be written.
    """
    path = state / LAST_PROBE_FILE
    replace_file(path, orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def load_probe_record(state: Path) -> dict[str, Any] | None:
    """The last probe's record from ``state``; None if there is none or it is unreadable."""
    try:
        value = orjson.loads((state / LAST_PROBE_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
