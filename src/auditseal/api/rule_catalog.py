"""The service's alert rules: built-in, configured and uploaded, each enabled or not.

Concept: the *rule catalog* (docs/api.md, "Rules"). The rules the service evaluates are
the built-in Azure pack, the files given with ``serve --rules`` (for instance a SigmaHQ
checkout) and the rules admins upload (``POST /v1/rules``). Uploads are kept as
``<log state>/rules/<rule id>.yml`` -- the folder ``auditseal alerts run --log`` also reads --
so they survive restarts; the ids an admin disabled are kept in
``<log state>/rules-disabled.json``. Both files are replaced atomically.

An upload is validated by loading it *together with every other rule* with the engine's
own loader (:func:`auditseal.alerts.load_rules`): a correlation may refer to a built-in
rule, and a rule id may not clash with another. It is written only if every rule in it
loads, so what is on disk always loads.

A disabled rule raises no alert: it is left out of the set handed to the engine, except
when an enabled correlation needs it, where it stays as a silent base rule
(``generate: false``); a disabled correlation is left out.

The engine itself runs in the service's follower process, which builds it with
:func:`alert_engine` from these files; after a change the routes ask it to build it again
(:class:`AlertTarget`, ``AuditService.reload_rules``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from auditseal.alerts import AlertEngine, EngineConfig, LoadStatus, RuleSet, load_rules
from auditseal.errors import ConfigError
from auditseal.storage.durable import replace_file

RULES_DIR = "rules"
DISABLED_FILE = "rules-disabled.json"
MAX_RULE_BYTES = 256 << 10
"""256 KiB: far above any real Sigma rule, far below the request limit."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class AlertTarget(Protocol):
    """What evaluates the rules: the service, whose follower process runs the engine.

    ``reload_rules`` must be safe to call from a request thread; the follower then builds
    its engine again (with :func:`alert_engine`, reading this catalog's files and the
    run-time settings) before its next round, keeping its position in the log.
    """

    def reload_rules(self) -> None:
        """Build the alert engine again from the rules and settings on disk."""
        ...


def alert_engine(state_dir: Path, paths: Sequence[Path], *, builtin: bool,
                 suppress_window_s: float) -> AlertEngine:
    """The engine the service runs: the enabled rules and the suppression window in force.

    For the follower process, which has only the log: the rules are this catalog's
    (``paths``, the built-in pack when ``builtin``, the uploads, minus the disabled ones);
    ``suppress_window_s`` is the command line's, unless an admin changed it
    (:mod:`auditseal.api.runtime_settings`).
    """
    from auditseal.api.runtime_settings import stored_suppress_window_s

    window = stored_suppress_window_s(state_dir)
    config = EngineConfig(suppress_window_s=suppress_window_s if window is None else window)
    return AlertEngine(RuleCatalog(state_dir, paths, builtin=builtin).active(), config)


class RuleRejected(ConfigError):
    """An upload that does not load; ``report`` says why, rule by rule."""

    def __init__(self, message: str, report: Sequence[LoadStatus] = ()) -> None:
        """``message`` for people, ``report`` the loader's statuses of the upload."""
        super().__init__(message)
        self.report = tuple(report)


class RuleConflict(ConfigError):
    """An upload whose rule id is already taken by a rule from elsewhere."""


@dataclass(frozen=True)
class Upload:
    """What an accepted upload became.

    Attributes:
        file: the stored file's name under ``<log state>/rules/``.
        replaced: whether it replaced an earlier upload of the same id.
        statuses: the loader's status of each rule in it (warnings included).
        sha256: hex SHA-256 of the YAML as uploaded.
    """

    file: str
    replaced: bool
    statuses: tuple[LoadStatus, ...]
    sha256: str


class RuleCatalog:
    """The rule set of one log's service; thread-safe."""

    def __init__(self, state_dir: Path, paths: Sequence[Path], *, builtin: bool) -> None:
        """Rules from ``paths`` (``serve --rules``), the built-in pack when ``builtin``,
        and the uploads under ``state_dir/rules``. Nothing is loaded until first needed."""
        self.folder = state_dir / RULES_DIR
        self.disabled_path = state_dir / DISABLED_FILE
        self._paths = tuple(paths)
        self._builtin = builtin
        self._lock = threading.Lock()
        self._ruleset: RuleSet | None = None
        self._disabled = self._load_disabled()

    # -- reading ---------------------------------------------------------------------------

    def ruleset(self) -> RuleSet:
        """Every rule, loaded (enabled or not)."""
        with self._lock:
            return self._loaded()

    def active(self) -> RuleSet:
        """The set the engine evaluates: without the disabled rules (see the docstring)."""
        with self._lock:
            return _without(self._loaded(), self._disabled)

    def listing(self) -> list[dict[str, Any]]:
        """The documented ``GET /v1/rules`` items: every loaded rule and correlation."""
        with self._lock:
            ruleset, disabled = self._loaded(), set(self._disabled)
        levels = {r.id: r.level for r in ruleset.rules}
        levels.update({c.id: c.level for c in ruleset.correlations})
        return [{"id": s.id, "title": s.title, "level": levels.get(s.id or ""),
                 "kind": s.kind, "source": self.source(s.path), "file": _file(s.path),
                 "enabled": s.id not in disabled, "warnings": list(s.warnings)}
                for s in ruleset.report if s.loaded and s.kind != "file"]

    def not_loaded(self) -> list[dict[str, Any]]:
        """The rules (or files) that did not load, and why."""
        return [{"id": s.id, "title": s.title, "kind": s.kind, "source": self.source(s.path),
                 "file": _file(s.path), "reason": s.reason}
                for s in self.ruleset().report if not s.loaded]

    def source(self, path: str) -> str:
        """``built-in``, ``custom`` (uploaded) or ``configured`` (``serve --rules``)."""
        if path.startswith("builtin:"):
            return "built-in"
        return "custom" if Path(path).parent == self.folder else "configured"

    def known(self, rule_id: str) -> bool:
        """Whether a loaded rule or correlation has this id."""
        return any(s.id == rule_id and s.loaded for s in self.ruleset().report)

    # -- changing --------------------------------------------------------------------------

    def upload(self, data: bytes) -> Upload:
        """Validate and store one rule file (YAML, one or more documents).

        Raises:
            RuleRejected: not UTF-8, no rule in it, or a rule that does not load.
            RuleConflict: a rule id that a built-in, configured or other uploaded rule has.
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleRejected(f"the rule is not UTF-8 text ({exc.reason})") from None
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            staged = self.folder / f".upload-{secrets.token_hex(6)}.new"  # not *.yml
            staged.write_text(text, "utf-8")
            try:
                return self._install(staged, data)
            finally:
                staged.unlink(missing_ok=True)

    def set_enabled(self, rule_id: str, enabled: bool) -> bool:
        """Enable or disable ``rule_id``; whether that changed anything.

        Raises:
            KeyError: no loaded rule has this id (a disabled id can always be enabled).
        """
        with self._lock:
            loaded = {s.id for s in self._loaded().report if s.loaded}
            if rule_id not in loaded and (enabled is False or rule_id not in self._disabled):
                raise KeyError(rule_id)
            if (rule_id not in self._disabled) == enabled:
                return False
            disabled = (self._disabled - {rule_id}) if enabled else self._disabled | {rule_id}
            self.disabled_path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(self.disabled_path,
                         orjson.dumps({"disabled": sorted(disabled)}) + b"\n")
            self._disabled = frozenset(disabled)
            return True

    # -- private ---------------------------------------------------------------------------

    def _install(self, staged: Path, data: bytes) -> Upload:
        peek = load_rules([staged])  # alone first: only to learn the ids it declares
        ids = [s.id for s in peek.report if s.kind != "file" and s.id]
        if not ids:
            reason = next((s.reason for s in peek.report if s.reason), "no Sigma rule in it")
            raise RuleRejected(f"the upload holds no rule: {reason}", peek.report)
        target = self.folder / f"{_safe_name(ids[0])}.yml"
        others = [p for p in self._custom_files() if p != target]
        ruleset = self._load([*others, staged])
        taken = {s.id: s.path for s in ruleset.report
                 if s.path != str(staged) and s.kind != "file" and s.id in ids}
        if taken:
            rule_id, path = next(iter(taken.items()))
            raise RuleConflict(f"rule id {rule_id} is already used by the {self.source(path)} "
                               f"rule in {Path(path).name}")
        statuses = [s for s in ruleset.report if s.path == str(staged)]
        failed = [s for s in statuses if not s.loaded]
        if failed:
            first = failed[0]
            raise RuleRejected(f"{first.kind} {first.id or '(no id)'} does not load: "
                               f"{first.reason}", statuses)
        replaced = target.exists()
        replace_file(target, data)
        self._ruleset = _renamed(ruleset, str(staged), str(target))
        return Upload(target.name, replaced,
                      tuple(dataclasses.replace(s, path=str(target)) for s in statuses),
                      hashlib.sha256(data).hexdigest())

    def _loaded(self) -> RuleSet:
        if self._ruleset is None:
            self._ruleset = self._load(self._custom_files())
        return self._ruleset

    def _load(self, custom: Sequence[Path]) -> RuleSet:
        try:
            return load_rules([*self._paths, *custom], builtin=self._builtin)
        except FileNotFoundError as exc:
            raise ConfigError(str(exc)) from None

    def _custom_files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir()
                      if p.suffix in (".yml", ".yaml") and not p.name.startswith("."))

    def _load_disabled(self) -> frozenset[str]:
        try:
            data = orjson.loads(self.disabled_path.read_bytes())
        except FileNotFoundError:
            return frozenset()
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{self.disabled_path} is damaged ({exc})") from None
        ids = data.get("disabled") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ConfigError(f"{self.disabled_path}: expected {{\"disabled\": [ids]}}")
        return frozenset(ids)


def _file(path: str) -> str:
    """A rule's file name for listings (never the server's folders)."""
    return Path(path.removeprefix("builtin:")).name


def _safe_name(rule_id: str) -> str:
    name = _UNSAFE.sub("_", rule_id)[:100]
    return name or hashlib.sha256(rule_id.encode()).hexdigest()[:32]


def _renamed(ruleset: RuleSet, old: str, new: str) -> RuleSet:
    """``ruleset`` with the rules loaded from ``old`` named as loaded from ``new``."""
    return RuleSet(
        rules=[dataclasses.replace(r, path=new) if r.path == old else r for r in ruleset.rules],
        correlations=list(ruleset.correlations),
        report=[dataclasses.replace(s, path=new) if s.path == old else s
                for s in ruleset.report])


def _without(ruleset: RuleSet, disabled: frozenset[str]) -> RuleSet:
    """The set without the disabled rules; silent base rules for enabled correlations."""
    if not disabled:
        return ruleset
    correlations = [c for c in ruleset.correlations if c.id not in disabled]
    needed = {rule_id for c in correlations for rule_id in c.rule_ids}
    rules = [r if r.id not in disabled else dataclasses.replace(r, generate=False)
             for r in ruleset.rules if r.id not in disabled or r.id in needed]
    return RuleSet(rules=rules, correlations=correlations, report=list(ruleset.report))
