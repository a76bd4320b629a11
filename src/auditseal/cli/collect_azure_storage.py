"""``auditseal collect azure-storage``: seal Azure Monitor exports from a storage account.

Tails the ``insights-*`` containers that diagnostic settings write to (one ``PT1H.json``
append blob per resource and hour), sealing each new record exactly once; see
``auditseal.ingest.collector`` for how, and ``auditseal.ingest.cursor`` for why a crash
never seals a record twice or skips one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import orjson

from auditseal.cli import exitcodes
from auditseal.cli.output import print_json
from auditseal.clock import SystemClock
from auditseal.errors import StorageUnavailable
from auditseal.ingest.collector import Collector, CollectorConfig, RoundReport
from auditseal.ingest.cursor import RejectedRecord
from auditseal.log.local import load_log, open_writer

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
_MAX_REJECTIONS_SHOWN = 20


def register(sources: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``azure-storage`` under ``auditseal collect``."""
    command = sources.add_parser(
        "azure-storage", parents=parents,
        help="seal Azure Monitor diagnostic-settings exports (insights-* containers, "
        "PT1H.json append blobs) from a storage account",
    )
    account = command.add_mutually_exclusive_group()
    account.add_argument(
        "--connection-string", default=None, metavar="CS",
        help=f"the storage account's connection string (default: ${CONNECTION_STRING_ENV})",
    )
    account.add_argument(
        "--account-url", default=None, metavar="URL",
        help="https://ACCOUNT.blob.core.windows.net, signing in with Azure AD "
        "(managed identity, environment or Azure CLI login)",
    )
    command.add_argument("--once", action="store_true",
                         help="seal what is there now and exit (default: keep polling)")
    command.add_argument("--interval-s", type=float, default=1.0, metavar="SECONDS",
                         help="seconds between polls (default: 1)")
    command.add_argument(
        "--settle-s", type=float, default=3600.0, metavar="SECONDS",
        help="take a last line without a newline as final once its blob has not changed "
        "for this long (default: 3600)",
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Reconcile with the log, then collect once or until SIGINT/SIGTERM."""
    # The Azure SDK is loaded only when this command runs, not for every auditseal command.
    from auditseal.ingest.azure_storage import open_export_source

    config = CollectorConfig(interval_s=args.interval_s, settle_s=args.settle_s)
    connection_string = args.connection_string
    if connection_string is None and args.account_url is None:
        connection_string = os.environ.get(CONNECTION_STRING_ENV) or None
    source = open_export_source(connection_string=connection_string,
                                account_url=args.account_url)
    log = load_log(args.log)
    with open_writer(log) as writer:
        collector = Collector(
            source, writer, log.object_store(), state_dir=log.state / "cursors",
            name=f"azure-storage-{source.account}", clock=SystemClock(), config=config,
        )
        reconciled = collector.reconcile()
        report = collector.collect_once() if args.once else _poll(args, collector, reconciled)
        checkpoint = writer.publish() or writer.checkpoint
    size = checkpoint.size if checkpoint is not None else 0
    if args.json and args.once:
        print_json({
            "account": source.account,
            "log": log.name,
            "sealed": report.sealed,
            "already_sealed": report.already_sealed,
            "first_index": report.first_index,
            "last_index": report.last_index,
            "rejected": describe(report.rejected),
            "blobs_listed": report.blobs_listed,
            "blobs_read": report.blobs_read,
            "bytes_read": report.bytes_consumed,
            "reconciled_entries": reconciled,
            "log_size": size,
            "cursor": str(collector.cursor_path),
            "rejects_file": str(collector.rejects.path),
            "warnings": report.warnings,
        })
    elif not args.json:
        if args.once:
            _print_problems(report)
        print(f"sealed {report.sealed} records from {report.blobs_read} blob reads "
              f"({report.blobs_listed} blobs listed, {report.already_sealed} already sealed); "
              f"rejected {len(report.rejected)}; log size {size}")
    return exitcodes.REJECTED if report.rejected else exitcodes.OK


def _poll(args: argparse.Namespace, collector: Collector, reconciled: int) -> RoundReport:
    """Poll until SIGINT or SIGTERM; print each round that did something."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, request_stop) for sig in handled}
    print(f"collecting from storage account {collector.source.account} every "
          f"{args.interval_s:g} s (reconciled {reconciled} log entries); "
          "Ctrl-C or SIGTERM stops", file=sys.stderr, flush=True)

    def on_round(report: RoundReport) -> None:
        if not (report.sealed or report.rejected or report.warnings):
            return
        size = collector.writer.checkpoint.size if collector.writer.checkpoint else 0
        if args.json:
            line = {"time": _now(), "sealed": report.sealed,
                    "already_sealed": report.already_sealed,
                    "rejected": describe(report.rejected), "warnings": report.warnings,
                    "log_size": size}
            sys.stdout.write(orjson.dumps(line).decode() + "\n")
            sys.stdout.flush()
            return
        _print_problems(report)
        print(f"{_now()} sealed {report.sealed} records from {report.blobs_read} blobs; "
              f"rejected {len(report.rejected)}; log size {size}", flush=True)

    def on_error(error: StorageUnavailable) -> None:
        print(f"auditseal: {error} (retrying)", file=sys.stderr, flush=True)

    try:
        total = collector.run(stop, on_round=on_round, on_error=on_error)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped", file=sys.stderr, flush=True)
    return total


def _print_problems(report: RoundReport) -> None:
    for warning in report.warnings:
        print(f"auditseal: warning: {warning}", file=sys.stderr)
    for rejected in report.rejected[:_MAX_REJECTIONS_SHOWN]:
        print(f"{rejected.blob}:{rejected.line}: rejected: {rejected.reason}", file=sys.stderr)
    hidden = len(report.rejected) - _MAX_REJECTIONS_SHOWN
    if hidden > 0:
        print(f"... and {hidden} more rejected records (all are in the rejects file)",
              file=sys.stderr)
    sys.stderr.flush()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(records: Iterable[RejectedRecord]) -> list[dict[str, object]]:
    """Rejections as JSON-ready dicts (for ``--json`` output)."""
    return [
        {"blob": r.blob, "line": r.line, "offset": r.offset, "reason": r.reason}
        for r in records
    ]
