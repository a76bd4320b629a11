"""Service settings: one frozen dataclass, validated once, units in the names.

Concept: the *serve configuration* (docs/api.md, "Ingest" limits and "Authentication").
The command line (``auditseal serve``) builds one :class:`ServeSettings`; everything in
the service reads it and nothing changes it while serving; the few values an admin may
change at run time are layered over it by :mod:`auditseal.api.runtime_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from auditseal.config import WriterConfig
from auditseal.errors import ConfigError

if TYPE_CHECKING:
    from auditseal.api.auth import Principal

DEFAULT_MAX_REQUEST_BYTES = 16 << 20
"""16 MiB, the documented default of ``--max-request-bytes``."""


class TokenValidator(Protocol):
    """Validates a bearer token that is not an auditseal API key (Entra ID JWTs)."""

    def validate(self, token: str) -> Principal | None:
        """The principal the token names, or None when it is not valid."""
        ...

    @property
    def last_reason(self) -> str:
        """Why this thread's last token was refused (sealed in the log, never answered)."""
        ...


@dataclass(frozen=True)
class ServeSettings:
    """How ``auditseal serve`` behaves.

    Attributes:
        max_request_bytes: the largest request body accepted (413 beyond), counted while
            the body is read, so a chunked upload without Content-Length is cut off too.
        rate_limit_events_per_s: per-key sustained ingest rate (429 beyond); 0 = no limit.
        rate_limit_burst_s: how many seconds of the rate a key may spend at once.
        public_log: serve the tlog-tiles tree under ``/log/`` without authentication.
        retry_after_s: the Retry-After given with 503 answers when the error names none.
        receipt_retry_after_s: the Retry-After of a 202 receipt (about one publish).
        follow_interval_s: how often the follower feeds the index and the alert engine.
        index: feed the search index after each publish.
        alerts: evaluate the alert rules after each publish (sealing each alert).
        rules_paths: extra Sigma rule files or folders (beside the built-in pack).
        builtin_rules: include the built-in Azure rule pack.
        alert_suppress_window_s: an alert of the same rule and group within this many
            seconds (event time) of the last one is suppressed; 0 = off. Admins may change
            it while serving (``PATCH /v1/settings``).
        idempotency_window_s: how long the answer to a request with an ``Idempotency-Key``
            is remembered (a retry within it is answered again without sealing).
        ui_dir: the web UI's static files; None or a missing folder serves no UI.
        entra: an Entra ID token validator, or None to accept API keys only.
        writer: the log writer's configuration.
    """

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    rate_limit_events_per_s: float = 0.0
    rate_limit_burst_s: float = 2.0
    public_log: bool = False
    retry_after_s: float = 1.0
    receipt_retry_after_s: float = 1.0
    follow_interval_s: float = 0.25
    index: bool = True
    alerts: bool = True
    rules_paths: tuple[Path, ...] = ()
    builtin_rules: bool = True
    alert_suppress_window_s: float = 600.0
    idempotency_window_s: float = 24 * 3600.0
    ui_dir: Path | None = None
    entra: TokenValidator | None = None
    writer: WriterConfig = field(default_factory=WriterConfig)

    def __post_init__(self) -> None:
        """Validate once."""
        if self.max_request_bytes < 1024:
            raise ConfigError("max_request_bytes must be at least 1024")
        if self.rate_limit_events_per_s < 0:
            raise ConfigError("rate_limit_events_per_s must be >= 0 (0 = unlimited)")
        if self.rate_limit_burst_s <= 0:
            raise ConfigError("rate_limit_burst_s must be > 0")
        if self.retry_after_s <= 0 or self.receipt_retry_after_s <= 0:
            raise ConfigError("Retry-After values must be > 0 seconds")
        if self.alert_suppress_window_s < 0:
            raise ConfigError("alert_suppress_window_s must be >= 0 (0 = no suppression)")
        if self.idempotency_window_s <= 0:
            raise ConfigError("idempotency_window_s must be > 0")
        if not 0.01 <= self.follow_interval_s <= 60:
            raise ConfigError("follow_interval_s must be between 0.01 and 60 seconds")
