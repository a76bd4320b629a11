"""What a verification found, in a form for people and for machines."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from auditseal.errors import IntegrityError


@dataclass(frozen=True)
class Finding:
    """One thing that does not hold.

    Attributes:
        severity: "error" (the log fails verification) or "warning" (noteworthy, harmless
            to what is sealed, e.g. objects beyond the latest checkpoint).
        what: modified, missing, truncated, reordered, unknown key, invalid signature,
            rolled back, forked, corrupt, beyond checkpoint.
        where: entry index, object key or checkpoint.
        detail: the evidence in words.
    """

    severity: str
    what: str
    where: str
    detail: str = ""

    @classmethod
    def from_error(cls, error: IntegrityError, severity: str = "error") -> Finding:
        """Record an integrity error raised by the core."""
        return cls(severity=severity, what=error.what, where=error.where, detail=error.detail)

    def __str__(self) -> str:
        text = f"{self.severity.upper()}: {self.where}: {self.what}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class VerifyReport:
    """The outcome of ``verify_log``: ``ok`` only if no finding is an error."""

    size: int = 0
    root_hash: str = ""
    origin: str = ""
    checkpoints_checked: int = 0
    entries_checked: int = 0
    bytes_hashed: int = 0
    tiles_checked: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    max_listed: int = 50
    suppressed: int = 0

    @property
    def ok(self) -> bool:
        """True when every check held."""
        return not any(f.severity == "error" for f in self.findings)

    def add(self, finding: Finding) -> None:
        """Record a finding, keeping the list readable on a badly damaged log."""
        if len(self.findings) >= self.max_listed:
            self.suppressed += 1
            return
        self.findings.append(finding)

    def error(self, what: str, where: str, detail: str = "") -> None:
        """Record an error finding."""
        self.add(Finding("error", what, where, detail))

    def warning(self, what: str, where: str, detail: str = "") -> None:
        """Record a warning finding."""
        self.add(Finding("warning", what, where, detail))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json``)."""
        return {
            "ok": self.ok,
            "origin": self.origin,
            "size": self.size,
            "root_hash": self.root_hash,
            "checkpoints_checked": self.checkpoints_checked,
            "entries_checked": self.entries_checked,
            "bytes_hashed": self.bytes_hashed,
            "tiles_checked": self.tiles_checked,
            "seconds": round(self.seconds, 3),
            "findings": [asdict(f) for f in self.findings],
            "findings_not_listed": self.suppressed,
        }
