"""The search index commands: ``auditseal index rebuild | check | status``.

The index package loads DuckDB; each handler imports it itself so that only these commands
pay for it, not the CLI's start-up.
"""

from __future__ import annotations

import argparse
from typing import Any

from auditseal.cli import exitcodes
from auditseal.cli.output import ProgressBar, print_json
from auditseal.log.local import load_log


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``index`` command group to the parser."""
    index = commands.add_parser(
        "index", help="the search index (derived from the log, rebuildable, checkable)")
    actions = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild", parents=parents, help="recreate the search index from the log alone")
    rebuild.add_argument("--no-progress", action="store_true", help="no progress bar")
    rebuild.set_defaults(handler=run_rebuild)
    check = actions.add_parser(
        "check", parents=parents,
        help="re-derive the index from the log and report every row that disagrees")
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.add_argument("--limit", type=int, default=1000, metavar="N",
                       help="report at most N findings (default 1000)")
    check.set_defaults(handler=run_check)
    status = actions.add_parser("status", parents=parents,
                                help="how far the index is behind the log")
    status.set_defaults(handler=run_status)


def run_rebuild(args: argparse.Namespace) -> int:
    """Rebuild the index and say how fast."""
    from auditseal.index import rebuild_index

    log = load_log(args.log)
    bar = ProgressBar("indexing", enabled=False if args.no_progress or args.json else None)
    result = rebuild_index(log, progress=bar.update)
    bar.close()
    rate = result.rows / max(result.seconds, 1e-9)
    if args.json:
        print_json({"ok": True, "rows": result.rows, "seconds": round(result.seconds, 3)})
    else:
        print(f"rebuilt the search index: {result.rows} entries in {result.seconds:.2f} s "
              f"({rate:,.0f} entries/s)")
    return exitcodes.OK


def run_check(args: argparse.Namespace) -> int:
    """Compare the index with the log; exit 1 when they disagree."""
    from auditseal.index import check_index

    log = load_log(args.log)
    bar = ProgressBar("checking", enabled=False if args.no_progress or args.json else None)
    report = check_index(log, limit=args.limit, progress=bar.update)
    bar.close()
    if args.json:
        print_json({
            "ok": report.ok, "size": report.size,
            "findings": [{"what": f.what, "index": f.index, "detail": f.detail}
                         for f in report.findings],
        })
    else:
        for finding in report.findings:
            print(finding)
        verdict = "OK" if report.ok else f"FAILED ({len(report.findings)} findings)"
        print(f"{verdict}: {report.size} indexed entries compared with the log in "
              f"{report.seconds:.2f} s" + ("" if report.ok else
                                            "; fix with 'auditseal index rebuild'"))
    return exitcodes.OK if report.ok else exitcodes.INTEGRITY


def run_status(args: argparse.Namespace) -> int:
    """Print the index's position against the log."""
    from auditseal.index import index_status

    status = index_status(load_log(args.log))
    if args.json:
        print_json({"path": str(status.path), "exists": status.exists, "size": status.size,
                    "rows": status.rows, "log_size": status.log_size,
                    "behind": status.behind})
    elif not status.exists:
        print(f"no search index yet at {status.path} (a query or 'auditseal index rebuild' "
              "creates it)")
    else:
        print(f"search index: {status.path}\nindexed entries: {status.size} ({status.rows} "
              f"rows)\nlog size: {status.log_size}\nbehind: {status.behind}")
    return exitcodes.OK
