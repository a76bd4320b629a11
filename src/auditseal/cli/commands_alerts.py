"""``auditseal alerts run|test|list``: Sigma alerting over the sealed log (issue 4, "Alerts").

``run`` evaluates the built-in Azure pack, the log's configured rules
(``<log state>/rules/*.yml``) and any ``--rules`` over the log; ``test`` shows which events
of a file match one rule file and why; ``list`` reports which rules load and which do not.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from auditseal.cli import exitcodes
from auditseal.cli.commands_verify import log_source
from auditseal.cli.output import print_json
from auditseal.errors import ConfigError, FormatError
from auditseal.ingest.records import Record, split_records
from auditseal.log.local import LocalLog, latest_checkpoint, load_log, open_writer
from auditseal.log.reader import LogReader

if TYPE_CHECKING:
    from auditseal.alerts.sigma import RuleSet
    from auditseal.alerts.sinks import Sink, WebhookSink

# The alerts package loads pySigma: every function that needs it imports it itself, so
# that only ``auditseal alerts`` pays for it, not the CLI's start-up.

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``alerts`` and its subcommands to the parser."""
    alerts = commands.add_parser("alerts", help="Sigma alert rules over the sealed log")
    sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="SUBCOMMAND")
    rules = argparse.ArgumentParser(add_help=False)
    rules.add_argument("--rules", action="append", default=[], type=Path, metavar="PATH",
                       help="a Sigma rule file or directory; repeatable")
    rules.add_argument("--no-builtin", action="store_true", help="leave out the built-in pack")

    run = sub.add_parser("run", parents=[*parents, rules],
                         help="evaluate the rules over the log; print the alerts")
    run.add_argument("--since", default=None, metavar="DURATION",
                     help="only records from the last DURATION (e.g. 7d, 12h, 30m)")
    run.add_argument("--suppress-window", default="10m", metavar="DURATION",
                     help="suppress repeats of a rule and group within this time (0 = off)")
    run.add_argument("--webhook", action="append", default=[], metavar="[FORMAT=]URL",
                     help="POST alerts to URL; FORMAT json (default), teams or slack")
    run.add_argument("--file", type=Path, default=None, help="append alerts as JSON lines")
    run.add_argument("--dead-letter", type=Path, default=None,
                     help="where undeliverable alerts go (default: <log state>/alerts-dead.jsonl)")
    run.add_argument("--seal", action="store_true",
                     help="append each alert to the log (kind alert), skipping those already there")
    run.set_defaults(handler=run_alerts)

    test = sub.add_parser("test", parents=[parents[1]],
                          help="show which events of a file match a rule, and why")
    test.add_argument("rule", type=Path, help="a Sigma rule file")
    test.add_argument("--on", required=True, type=Path, metavar="FILE",
                      help="events: JSON lines, a JSON array or {\"records\": [...]}")
    test.set_defaults(handler=run_test)

    listing = sub.add_parser("list", parents=[parents[1], rules],
                             help="which rules load, which do not, and why")
    listing.set_defaults(handler=run_list)


def parse_duration(text: str) -> float:
    """Seconds in ``7d``, ``12h``, ``30m``, ``45s``, ``2w`` (``0`` is zero).

    Raises:
        ConfigError: not a duration.
    """
    if text.strip() == "0":
        return 0.0
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(f"{text!r} is not a duration: use a number and s, m, h, d or w (7d)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def _ruleset(args: argparse.Namespace, log: LocalLog | None = None) -> RuleSet:
    from auditseal.alerts.sigma import load_rules

    paths = list(args.rules)
    if log is not None and (log.state / "rules").is_dir():
        paths.insert(0, log.state / "rules")
    try:
        return load_rules(paths, builtin=not args.no_builtin)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None


def run_alerts(args: argparse.Namespace) -> int:
    """Evaluate the rules over the log and print (and deliver) the alerts."""
    from auditseal.alerts.engine import AlertEngine, EngineConfig, run_history
    from auditseal.alerts.sinks import Dispatcher, FileSink, LogSink, RetryPolicy

    log = load_log(args.log)
    ruleset = _ruleset(args, log)
    for status in ruleset.report:
        if not status.loaded:
            print(f"auditseal: rule {status.title or status.path} not loaded: {status.reason}",
                  file=sys.stderr)
    checkpoint = latest_checkpoint(log)
    if checkpoint is None:
        raise ConfigError(f"{args.log} has no checkpoint yet")
    since = None
    if args.since is not None:
        since = datetime.now(UTC) - timedelta(seconds=parse_duration(args.since))
    engine = AlertEngine(ruleset, EngineConfig(parse_duration(args.suppress_window)))
    reader = LogReader(log_source(log)[0], checkpoint)
    alerts = list(run_history(reader.entries(), engine, since))
    sinks: list[Sink] = [_webhook(spec) for spec in args.webhook]
    if args.file is not None:
        sinks.append(FileSink(args.file))
    if sinks:
        dead = args.dead_letter or log.state / "alerts-dead.jsonl"
        Dispatcher(sinks, dead_letter=dead, retry=RetryPolicy()).dispatch(alerts)
    if args.seal and alerts:
        sealed = _already_sealed(reader)
        fresh = [a for a in alerts if (a.rule_id, a.indexes) not in sealed]
        with open_writer(log) as writer:
            Dispatcher([LogSink(writer)]).dispatch(fresh)
    if args.json:
        print_json([alert.to_json() for alert in alerts])
    else:
        for alert in alerts:
            indexes = ", ".join(str(i) for i in alert.indexes[:20])
            more = f" (+{len(alert.indexes) - 20})" if len(alert.indexes) > 20 else ""
            print(f"[{alert.level}] {alert.title} ({alert.rule_id}): entries {indexes}{more}")
        stats = engine.stats
        print(f"{len(alerts)} alerts from {stats.records} records "
              f"({stats.suppressed} suppressed as repeats)", file=sys.stderr)
    return exitcodes.OK


def _webhook(spec: str) -> WebhookSink:
    from auditseal.alerts.sinks import WebhookSink

    fmt, _, url = spec.partition("=") if "=" in spec.split("://", 1)[0] else ("json", "", spec)
    try:
        return WebhookSink(url, fmt)
    except ValueError as exc:
        raise ConfigError(f"--webhook {spec}: {exc}") from None


def _already_sealed(reader: LogReader) -> set[tuple[str, tuple[int, ...]]]:
    from auditseal.core.entry import decode_entry  # only with --seal

    found: set[tuple[str, tuple[int, ...]]] = set()
    for _, raw in reader.entries():
        entry = decode_entry(raw)
        if entry.header.kind == "alert":
            data = orjson.loads(entry.event)
            found.add((data["rule_id"], tuple(data["indexes"])))
    return found


def run_test(args: argparse.Namespace) -> int:
    """Show, per event of ``--on``, whether the rule matches and which parts did."""
    from auditseal.alerts.engine import AlertEngine, EngineConfig
    from auditseal.alerts.sigma import load_rules

    ruleset = load_rules([args.rule])
    failed = [s for s in ruleset.report if not s.loaded]
    if failed:
        raise FormatError(f"{args.rule}: {failed[0].title or ''} does not load: {failed[0].reason}")
    try:
        records, rejected = split_records(args.on.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {args.on}: {exc}") from None
    results = [_test_record(ruleset, number, record) for number, record in enumerate(records)]
    engine = AlertEngine(ruleset, EngineConfig(0))
    fired = [a.to_json() for a in engine.feed((n, r.data) for n, r in enumerate(records))]
    fired += [a.to_json() for a in engine.flush()]
    if args.json:
        print_json({"events": results, "alerts": fired,
                    "rejected": [{"line": r.line, "reason": r.reason} for r in rejected]})
        return exitcodes.OK
    for result in results:
        names = ", ".join(m["title"] for m in result["matches"]) or "no match"
        print(f"event {result['event']} (line {result['line']}): {names}")
        for match in result["matches"]:
            for hit in match["why"]:
                modifiers = "|".join(hit["modifiers"])
                print(f"    {hit['detection']}: {hit['field'] or '(keyword)'}"
                      f"{'|' + modifiers if modifiers else ''} = {hit['expected']} "
                      f"(found {hit['found']})")
    for alert in fired:
        if alert["kind"] != "rule":
            print(f"{alert['kind']} {alert['title']}: events {alert['indexes']}")
    for bad in rejected:
        print(f"line {bad.line}: not an event: {bad.reason}", file=sys.stderr)
    return exitcodes.OK


def _test_record(ruleset: RuleSet, number: int, record: Record) -> dict[str, Any]:
    from auditseal.alerts.fields import EventView

    event = orjson.loads(record.data)
    view = EventView(event)
    matches = []
    for rule in ruleset.rules:
        matched, hits = rule.explain(view)
        if matched:
            matches.append({"id": rule.id, "title": rule.title, "why": [
                {"detection": h.detection, "field": h.field, "modifiers": list(h.modifiers),
                 "expected": h.expected, "found": h.found} for h in hits]})
    return {"event": number, "line": record.line, "service": view.service, "matches": matches}


def run_list(args: argparse.Namespace) -> int:
    """Print the load report: every rule, loaded or not, and why."""
    ruleset = _ruleset(args)
    if args.json:
        print_json({"counts": ruleset.counts(),
                    "rules": [status.to_json() for status in ruleset.report]})
        return exitcodes.OK
    for status in ruleset.report:
        mark = "ok  " if status.loaded else "FAIL"
        print(f"{mark} {status.kind:<11} {status.title or '-'}  [{status.path}]")
        if status.reason:
            print(f"       {status.reason}")
        for warning in status.warnings:
            print(f"       warning: {warning}")
    counts = ruleset.counts()
    print(f"{counts['loaded']} of {counts['total']} rules loaded "
          f"({counts['with_warnings']} with warnings), {counts['not_loaded']} not loaded")
    return exitcodes.OK
