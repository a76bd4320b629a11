"""``auditseal collect eventhubs``: seal Azure Monitor events streamed to an Event Hub.

A thin command over :mod:`auditseal.ingest.azure_eventhubs` (its docstring explains the
at-least-once, no-duplicates design). Runs until SIGINT or SIGTERM, then finishes the batch
in hand, seals what is pending and prints totals. Connection strings may come from the
environment instead of the command line, where other users could read them in ``ps``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson

from auditseal.cli import exitcodes
from auditseal.cli.output import print_json
from auditseal.log.local import load_log, open_writer
from auditseal.log.reader import LogReader

if TYPE_CHECKING:
    from auditseal.ingest.azure_eventhubs import BadEvent

CONNECTION_ENV = "AUDITSEAL_EVENTHUB_CONNECTION_STRING"
CHECKPOINT_CONNECTION_ENV = "AUDITSEAL_CHECKPOINT_CONNECTION_STRING"


def register(sources: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``collect eventhubs``."""
    command = sources.add_parser(
        "eventhubs", parents=parents,
        help="seal Azure Monitor diagnostic-settings events from an Event Hub (all partitions)",
        description="Receive from every partition of an Event Hub and seal each record of "
        "each {\"records\": [...]} envelope (or each plain JSON event) byte for byte. The "
        "Event Hubs checkpoint moves only after the batch is durable in the log; on restart "
        "records the log already holds are skipped. Stop with Ctrl-C or SIGTERM.",
    )
    hub = command.add_argument_group("event hub (one of --connection-string, --namespace)")
    hub.add_argument("--connection-string", default=os.environ.get(CONNECTION_ENV),
                     metavar="CS",
                     help=f"namespace or hub connection string (or ${CONNECTION_ENV})")
    hub.add_argument("--namespace", default=None, metavar="FQDN",
                     help="fully qualified namespace, e.g. contoso.servicebus.windows.net; "
                     "signs in with DefaultAzureCredential")
    hub.add_argument("--eventhub", required=True, metavar="NAME", help="the event hub's name")
    hub.add_argument("--consumer-group", default="$Default", metavar="GROUP",
                     help="consumer group (default: $Default; give auditseal its own)")
    store = command.add_argument_group(
        "checkpoint store (one of --checkpoint-store-connection-string, "
        "--checkpoint-store-account-url)")
    store.add_argument("--checkpoint-store-connection-string", metavar="CS",
                       default=os.environ.get(CHECKPOINT_CONNECTION_ENV),
                       help=f"storage account connection string (or ${CHECKPOINT_CONNECTION_ENV})")
    store.add_argument("--checkpoint-store-account-url", default=None, metavar="URL",
                       help="blob account URL; signs in with DefaultAzureCredential")
    store.add_argument("--checkpoint-container", required=True, metavar="C",
                       help="existing blob container for checkpoints and ownership")
    command.add_argument("--start", choices=["earliest", "latest"], default="earliest",
                         help="where a partition without checkpoint starts (default: earliest "
                         "retained event)")
    command.add_argument("--max-batch-size", type=int, default=300, metavar="N",
                         help="events per batch (default: 300)")
    command.add_argument("--scan-max-entries", type=int, default=1_000_000, metavar="N",
                         help="on start, read at most N log entries back for positions already "
                         "sealed (default: 1000000; 0: the whole log)")
    command.set_defaults(handler=run_collect_eventhubs)


def run_collect_eventhubs(args: argparse.Namespace) -> int:
    """Collect until a signal; exit 3 if any record was rejected."""
    # Loads the Azure Event Hubs SDK: only this command pays for it, not the CLI's start-up.
    from auditseal.ingest.azure_eventhubs import EventHubSettings, collect_eventhub

    settings = EventHubSettings(
        eventhub=args.eventhub,
        checkpoint_container=args.checkpoint_container,
        connection_string=args.connection_string if args.namespace is None else None,
        namespace=args.namespace,
        consumer_group=args.consumer_group,
        checkpoint_connection_string=(
            args.checkpoint_store_connection_string
            if args.checkpoint_store_account_url is None else None),
        checkpoint_account_url=args.checkpoint_store_account_url,
        start_at_latest=args.start == "latest",
        max_batch_size=args.max_batch_size,
        scan_max_entries=args.scan_max_entries or None,
    )
    log = load_log(args.log)
    stop = threading.Event()

    def reject(bad: BadEvent) -> None:
        if args.json:
            sys.stderr.write(orjson.dumps({"rejected": bad.__dict__}).decode() + "\n")
        else:
            print(describe(bad), file=sys.stderr)

    with stop_on_signals(stop), open_writer(log) as writer:
        writer.start_publisher()
        checkpoint = writer.publish() or writer.checkpoint
        assert checkpoint is not None  # open_writer published one
        reader = LogReader(log.object_store(), checkpoint)
        print(f"collecting {settings.eventhub} into {log.name}; Ctrl-C or SIGTERM stops",
              file=sys.stderr)
        stats = collect_eventhub(writer, reader, settings, stop=stop, on_reject=reject,
                                 on_message=lambda text: print(text, file=sys.stderr))
        writer.stop_publisher()
        final = writer.publish() or writer.checkpoint
    totals = {**stats.__dict__, "log_size": final.size if final else 0}
    if args.json:
        print_json(totals)
    else:
        print(", ".join(f"{name.replace('_', ' ')} {value}" for name, value in totals.items()))
    return exitcodes.REJECTED if stats.rejected else exitcodes.OK


def describe(bad: BadEvent) -> str:
    """One line for a person: where the rejected event or record is, and why."""
    where = f"partition {bad.partition} sequence {bad.sequence_number}"
    if bad.record_index is not None:
        where += f" record {bad.record_index}"
    return f"{where}: rejected: {bad.reason}" + (f" [{bad.excerpt}]" if bad.excerpt else "")


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT and SIGTERM (main thread only), restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda _sig, _frame: stop.set()) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
