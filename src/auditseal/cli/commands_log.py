"""``auditseal init``, ``append`` and ``status``: the log owner's commands."""

from __future__ import annotations

import argparse
import secrets
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from auditseal.cli import exitcodes
from auditseal.cli.output import ProgressBar, print_json
from auditseal.core.layout import HISTORY_PREFIX
from auditseal.errors import ConfigError
from auditseal.ingest.pipeline import IngestSummary, ingest_batches
from auditseal.ingest.records import iter_batches
from auditseal.log.local import init_log, latest_checkpoint, load_log, open_writer

_MAX_REJECTIONS_SHOWN = 20
_STATUS_SAMPLE = 2000


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add this module's commands to the parser."""
    init = commands.add_parser("init", parents=parents, help="create a new log and signing key")
    init.add_argument(
        "--name", default=None,
        help="the log's origin and key name, e.g. example.com/audit (default: derived from "
        "the host name)",
    )
    init.set_defaults(handler=run_init)

    append = commands.add_parser(
        "append", parents=parents,
        help="seal events from a file or stdin (JSON lines, JSON array, or {\"records\": [...]})",
    )
    append.add_argument("file", help="input file, or - for standard input")
    append.add_argument("--source", default=None, help="source name recorded with each event")
    append.add_argument("--no-progress", action="store_true", help="no progress bar")
    append.set_defaults(handler=run_append)

    status = commands.add_parser("status", parents=parents, help="size, checkpoint, storage")
    status.set_defaults(handler=run_status)


def run_init(args: argparse.Namespace) -> int:
    """Create the log; print its verifier key (the public key to hand auditors)."""
    name = args.name or f"{_host_label()}/auditseal/{secrets.token_hex(4)}"
    log, vkey = init_log(args.log, name)
    if args.json:
        print_json({"log": log.name, "origin": log.origin, "verifier_key": vkey})
    else:
        print(f"created log {log.name}")
        print(f"origin: {log.origin}")
        print("verifier key (give this to auditors; it verifies every checkpoint):")
        print(vkey)
    return exitcodes.OK


def run_append(args: argparse.Namespace) -> int:
    """Seal every valid record; report each rejected one with its line and reason."""
    log = load_log(args.log)
    source = args.source or ("stdin" if args.file == "-" else f"file:{Path(args.file).name}")
    bar = ProgressBar("sealing", enabled=False if args.no_progress or args.json else None)
    total = None if args.file == "-" else _size_of(Path(args.file))
    with _open_input(args.file) as stream, open_writer(log) as writer:
        writer.start_publisher()

        def progress(summary: IngestSummary) -> None:
            if total:
                bar.update(summary.bytes_in, total)

        summary = ingest_batches(writer, iter_batches(stream), source=source,
                                 on_batch=progress)
        writer.stop_publisher()
        checkpoint = writer.publish() or writer.checkpoint
    bar.close()
    _report_append(args, summary, checkpoint.size if checkpoint else 0)
    return exitcodes.REJECTED if summary.rejected else exitcodes.OK


def _report_append(args: argparse.Namespace, summary: IngestSummary, size: int) -> None:
    if args.json:
        print_json({
            "sealed": summary.sealed,
            "first_index": summary.first_index,
            "last_index": summary.last_index,
            "log_size": size,
            "rejected": [
                {"line": r.line, "offset": r.offset, "reason": r.reason} for r in summary.rejected
            ],
        })
        return
    for rejected in summary.rejected[:_MAX_REJECTIONS_SHOWN]:
        print(f"{args.file}:{rejected.line}: rejected: {rejected.reason}", file=sys.stderr)
    hidden = len(summary.rejected) - _MAX_REJECTIONS_SHOWN
    if hidden > 0:
        print(f"... and {hidden} more rejected records (use --json for all)", file=sys.stderr)
    span = (
        f" as entries {summary.first_index}..{summary.last_index}"
        if summary.first_index is not None else ""
    )
    print(f"sealed {summary.sealed} events{span}; rejected {len(summary.rejected)}; "
          f"log size {size}")


def run_status(args: argparse.Namespace) -> int:
    """Describe the log: size, checkpoint, storage and protection of sealed files."""
    log = load_log(args.log)
    checkpoint = latest_checkpoint(log)
    store = log.object_store()
    keys = store.list("tile/")
    history = store.list(HISTORY_PREFIX)
    sample = (keys + history)[-_STATUS_SAMPLE:]
    read_only = immutable = unknown = 0
    for key in sample:
        protection = store.protection(key)
        read_only += protection.read_only
        if protection.immutable_attr is None:
            unknown += 1
        else:
            immutable += protection.immutable_attr
    journal = log.state / "journal"
    status = {
        "log": log.name,
        "origin": log.origin,
        "verifier_key": log.verifier_key,
        "size": checkpoint.size if checkpoint else 0,
        "root_hash": checkpoint.root_hash.hex() if checkpoint else None,
        "checkpoints_published": len(history),
        "sealed_objects": len(keys) + len(history),
        "storage": store.describe(),
        "head": log.head_store().describe(),
        "journal_bytes": sum(p.stat().st_size for p in journal.glob("*.wal")),
        "protection": {
            "objects_sampled": len(sample),
            "read_only": read_only,
            "immutable_attribute": immutable,
            "immutable_attribute_unknown": unknown,
        },
    }
    if args.json:
        print_json(status)
        return exitcodes.OK
    for key in ("log", "origin", "size", "root_hash", "checkpoints_published",
                "sealed_objects", "storage", "head", "journal_bytes", "verifier_key"):
        print(f"{key.replace('_', ' ')}: {status[key]}")
    print(
        f"protection: {read_only}/{len(sample)} sealed files read-only, {immutable} with the "
        f"immutable attribute"
        + (f", {unknown} unknown (file system does not support it)" if unknown else "")
    )
    return exitcodes.OK


@contextmanager
def _open_input(name: str) -> Iterator[BinaryIO]:
    if name == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = Path(name).open("rb")  # noqa: SIM115 -- closed below, after the yield
    except FileNotFoundError:
        raise ConfigError(f"input file {name} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"input {name} is a directory; give a file or -") from None
    with stream:
        yield stream


def _size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _host_label() -> str:
    host = socket.gethostname().split(".")[0] or "localhost"
    return "".join(c for c in host if c.isalnum() or c in "-_") or "localhost"
