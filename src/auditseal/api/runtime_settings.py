"""The settings an admin may change while the service runs, and where they are kept.

Concept: *run-time settings* (docs/api.md, "Settings"). ``auditseal serve`` starts from
:class:`~auditseal.api.settings.ServeSettings` (its command line); ``PATCH /v1/settings``
overrides a few values that can change safely without a restart: the alert suppression
window and the per-key ingest rate limit. Everything else (storage, size limits, who may
read the tile tree, Entra ID) shapes what the process promises and stays fixed while it
runs.

Overrides are kept in ``<log state>/serve-settings.json`` (replaced atomically), so they
survive a restart and take precedence over the command line until an admin resets them
(``null``). A damaged file stops the service from starting rather than silently falling
back to other limits.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import orjson

from auditseal.api.settings import ServeSettings
from auditseal.errors import ConfigError
from auditseal.storage.durable import replace_file

SETTINGS_FILE = "serve-settings.json"
MAX_SUPPRESS_WINDOW_S = 30 * 24 * 3600.0
"""30 days: a longer window would keep one key per rule and group for as long."""
MAX_BURST_S = 3600.0


@dataclass(frozen=True)
class RuntimeSettings:
    """The values ``PATCH /v1/settings`` may change.

    Attributes:
        alert_suppress_window_s: repeats of a rule and group within this many seconds of
            event time are suppressed; 0 = off.
        rate_limit_events_per_s: per-key sustained ingest rate (429 beyond); 0 = no limit.
        rate_limit_burst_s: how many seconds of the rate a key may spend at once.
    """

    alert_suppress_window_s: float
    rate_limit_events_per_s: float
    rate_limit_burst_s: float

    def __post_init__(self) -> None:
        """Validate once; the messages go back to the admin as 422."""
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number, not {type(value).__name__}")
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number")
        if not 0 <= self.alert_suppress_window_s <= MAX_SUPPRESS_WINDOW_S:
            raise ConfigError("alert_suppress_window_s must be between 0 (off) and "
                              f"{MAX_SUPPRESS_WINDOW_S:g} seconds")
        if self.rate_limit_events_per_s < 0:
            raise ConfigError("rate_limit_events_per_s must be >= 0 (0 = unlimited)")
        if not 0 < self.rate_limit_burst_s <= MAX_BURST_S:
            raise ConfigError(f"rate_limit_burst_s must be > 0 and at most {MAX_BURST_S:g}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The setting names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_serve(cls, settings: ServeSettings) -> RuntimeSettings:
        """The command line's values."""
        return cls(settings.alert_suppress_window_s, settings.rate_limit_events_per_s,
                   settings.rate_limit_burst_s)


@dataclass(frozen=True)
class SettingsChange:
    """What one PATCH did: the settings before and after, and the names that changed."""

    before: RuntimeSettings
    after: RuntimeSettings
    changed: tuple[str, ...]


class SettingsStore:
    """The effective run-time settings: the command line with the stored overrides on top."""

    def __init__(self, state_dir: Path, defaults: RuntimeSettings) -> None:
        """Read ``state_dir/serve-settings.json`` if there is one.

        Raises:
            ConfigError: the file is damaged or holds a value that is not valid.
        """
        self.path = state_dir / SETTINGS_FILE
        self.defaults = defaults
        self._lock = threading.Lock()
        self._overrides = self._load()
        self.current = self._effective(self._overrides)

    @property
    def overridden(self) -> tuple[str, ...]:
        """The names whose value comes from an admin's change, not the command line."""
        return tuple(sorted(self._overrides))

    def update(self, patch: Any) -> SettingsChange:
        """Apply a ``PATCH`` body (name -> value, ``null`` = back to the command line).

        Raises:
            ConfigError: not an object, an unknown name or a value that is not valid; the
                stored and effective settings are then unchanged.
        """
        if not isinstance(patch, dict) or not patch:
            raise ConfigError("the body must be a JSON object of settings to change, e.g. "
                              '{"alert_suppress_window_s": 300}')
        unknown = sorted(set(patch) - set(RuntimeSettings.names()))
        if unknown:
            raise ConfigError(f"unknown or read-only setting {', '.join(unknown)}; may change: "
                              f"{', '.join(RuntimeSettings.names())}")
        with self._lock:
            overrides = {k: v for k, v in self._overrides.items() if k not in patch}
            overrides.update({k: v for k, v in patch.items() if v is not None})
            after = self._effective(overrides)  # validates
            self._save(overrides)
            before, self.current, self._overrides = self.current, after, overrides
        changed = tuple(n for n in RuntimeSettings.names()
                        if getattr(before, n) != getattr(after, n))
        return SettingsChange(before, after, changed)

    def to_json(self) -> dict[str, Any]:
        """The documented ``GET /v1/settings`` body."""
        return {"settings": asdict(self.current), "overridden": list(self.overridden),
                "defaults": asdict(self.defaults)}

    def _effective(self, overrides: dict[str, Any]) -> RuntimeSettings:
        try:
            return replace(self.defaults, **overrides)
        except TypeError as exc:  # a name the dataclass does not know
            raise ConfigError(str(exc)) from None

    def _load(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{self.path} is damaged ({exc}); fix or remove it") from None
        overrides = data.get("overrides") if isinstance(data, dict) else None
        if not isinstance(overrides, dict) or set(overrides) - set(RuntimeSettings.names()):
            raise ConfigError(f"{self.path}: not a settings file this version understands")
        try:
            self._effective(overrides)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None
        return overrides

    def _save(self, overrides: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(self.path, orjson.dumps({"overrides": overrides},
                                             option=orjson.OPT_INDENT_2) + b"\n")


def stored_suppress_window_s(state_dir: Path) -> float | None:
    """The suppression window an admin set, if any (for the follower process).

    Raises:
        ConfigError: the settings file is damaged.
    """
    store = SettingsStore(state_dir, RuntimeSettings(0.0, 0.0, 1.0))
    if "alert_suppress_window_s" not in store.overridden:
        return None
    return store.current.alert_suppress_window_s
