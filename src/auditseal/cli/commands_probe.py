"""``auditseal probe``: try to tamper with the storage and say plainly whether it held.

Exit 0 only when every attempt to overwrite, re-describe or delete a sealed canary was
refused; exit 1 with "the storage is NOT protected: ..." otherwise. The probe works on any
``--log`` location, with or without a log in it yet, so run it before trusting a new
storage set-up (``auditseal.storage.probe``). When a log is there, the report (time,
verdict, attempts) is also kept in ``<log state>/last-probe.json``, which the service
shows as ``last_probe`` in ``GET /v1/integrity``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditseal.cli import exitcodes
from auditseal.cli.output import print_json
from auditseal.config import WriterConfig
from auditseal.errors import ConfigError
from auditseal.log.local import load_log
from auditseal.log.location import resolve
from auditseal.storage.base import ObjectStore
from auditseal.storage.filesystem import FilesystemObjectStore
from auditseal.storage.probe import (
    Outcome,
    ProbeReport,
    TamperTarget,
    probe_record,
    run_probe,
    save_probe_record,
    tamper_target,
)

_LABELS = {"overwrite": "overwrite", "set_metadata": "set metadata", "set_tier": "set tier",
           "delete": "delete"}


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``probe``."""
    probe = commands.add_parser(
        "probe", parents=parents,
        help="prove the storage is immutable: write a canary, try to overwrite, re-describe "
        "and delete it; exit 0 only if every attempt was refused",
    )
    probe.set_defaults(handler=run_probe_command)


def run_probe_command(args: argparse.Namespace) -> int:
    """Probe the storage of ``--log``, remember the result, and print the report."""
    store, target = open_target(str(args.log))
    when = datetime.now(UTC)
    report = run_probe(store, target)
    remember(str(args.log), report, when)
    if args.json:
        print_json(report.to_json())
    else:
        print_report(report)
    return exitcodes.OK if report.protected else exitcodes.INTEGRITY


def remember(spec: str, report: ProbeReport, when: datetime) -> Path | None:
    """Keep the report in the log's ``last-probe.json``; None when no log is at ``spec``.

    A failure to write is reported on stderr, not raised: the probe's verdict stands.
    """
    try:
        state = load_log(spec).state
    except ConfigError:
        return None  # probing a folder before a log is created there: nothing to update
    try:
        return save_probe_record(state, probe_record(report, when, by="cli"))
    except OSError as exc:
        print(f"warning: could not record the probe in {state}: {exc}", file=sys.stderr)
        return None


def open_target(spec: str) -> tuple[ObjectStore, TamperTarget]:
    """The object store of ``spec`` and its tamper interface.

    Raises:
        ConfigError: the directory does not exist, or the backend has no tamper interface.
    """
    location = resolve(spec)
    if location.remote is None:
        root = Path(spec)
        if not root.is_dir():
            raise ConfigError(f"{spec} is not a directory; probe an existing log directory "
                              "or the folder a log will go in")
        # Seal the canary exactly as the log writer seals objects (immutable where possible).
        store: ObjectStore = FilesystemObjectStore(
            root, set_immutable=WriterConfig().set_immutable)
    else:
        store = location.remote.object_store()
    try:
        return store, tamper_target(store)
    except ConfigError as exc:
        raise ConfigError(f"{spec}: {exc}") from None


def print_report(report: ProbeReport) -> None:
    """The report for people: one line per attempt, the verdict, what became of the canary."""
    print(f"probing {report.storage}")
    print(f"canary: {report.canary_key}")
    for attempt in report.attempts:
        detail = ": ".join(part for part in (attempt.code, attempt.message) if part)
        note = ""
        if not attempt.decides and attempt.outcome is Outcome.NOT_REFUSED:
            note = (" (does not count: immutable storage allows tier changes by design; the "
                    "content cannot change)")
        print(f"  {_LABELS.get(attempt.action, attempt.action):<13} "
              f"{attempt.outcome.value:<15} {detail}{note}")
    print(report.verdict())
    print(f"note: {report.canary_note}")
