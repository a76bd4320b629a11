"""``auditseal query``: KQL or SQL over the search index, as a table, JSON or CSV, proven.

The index package loads DuckDB and the KQL translator; the handler imports it itself so
that only ``auditseal query`` pays for it, not the CLI's start-up.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from auditseal.cli import exitcodes
from auditseal.cli.output import print_json
from auditseal.errors import ConfigError
from auditseal.log.local import load_log

if TYPE_CHECKING:
    from auditseal.index import ProvenResult, QueryResult

_CELL_WIDTH = 48
# auditseal.index.query.DEFAULT_MAX_ROWS, repeated so that building the parser does not load
# DuckDB; tests/architecture/test_cli_startup.py checks that the two agree.
DEFAULT_MAX_ROWS = 10_000


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``query`` to the parser."""
    query = commands.add_parser(
        "query", parents=parents,
        help="search the sealed events with KQL (or --sql), optionally with proofs",
        description="Bring the search index up to the latest checkpoint, then run a "
        "read-only query. Tables: AuditEvents (all), AzureActivity, SigninLogs, AuditLogs, "
        "AzureDiagnostics, AKSAudit, ... with Log Analytics column names plus _LogIndex, "
        "_LeafHash and _Event.",
    )
    query.add_argument("text", metavar="QUERY", help="the query; - reads it from stdin")
    query.add_argument("--sql", action="store_true", help="QUERY is DuckDB SQL, not KQL")
    query.add_argument("--csv", action="store_true", help="CSV output")
    query.add_argument("--prove", action="store_true",
                       help="prove every row that has _LogIndex against the signed checkpoint "
                       "(the tlog-proof goes in _Proof)")
    query.add_argument("--proof-dir", type=Path, default=None, metavar="DIR",
                       help="with --prove: write entry-<index>.tlog-proof files, the "
                       "checkpoint and results.json to DIR, for an auditor")
    query.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, metavar="N",
                       help=f"return at most N rows (default {DEFAULT_MAX_ROWS})")
    query.add_argument("--no-update", action="store_true",
                       help="query the index as it is, without feeding it first")
    query.set_defaults(handler=run_query_command)


def run_query_command(args: argparse.Namespace) -> int:
    """Feed, query, prove if asked, print."""
    from auditseal.index import open_searcher, prove_result

    if args.json and args.csv:
        raise ConfigError("choose one of --json and --csv")
    if args.max_rows < 1:
        raise ConfigError("--max-rows must be at least 1")
    prove = args.prove or args.proof_dir is not None
    text = sys.stdin.read() if args.text == "-" else args.text
    log = load_log(args.log)
    with open_searcher(log, update=not args.no_update) as searcher:
        result = searcher.run(text, language="sql" if args.sql else "kql",
                              max_rows=args.max_rows)
        proven = prove_result(log, searcher, result) if prove else None
    if result.truncated:
        print(f"auditseal: showing the first {len(result.rows)} rows; more matched "
              "(raise --max-rows or narrow the query)", file=sys.stderr)
    if proven is not None and args.proof_dir is not None:
        _write_bundle(args.proof_dir, result, proven)
    if args.json:
        print_json(_objects(result, proven, embed=True))
    else:
        columns, rows = _cells(result, proven, proof_dir=args.proof_dir, full=args.csv)
        if args.csv:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
        else:
            _print_table(columns, rows)
    if proven is not None:
        count = sum(proof is not None for proof in proven.proofs)
        where = f"; proofs in {args.proof_dir}" if args.proof_dir is not None else ""
        print(f"auditseal: {count} of {len(result.rows)} rows proven and verified against "
              f"checkpoint size {proven.checkpoint.size}{where}", file=sys.stderr)
    return exitcodes.OK


def _objects(result: QueryResult, proven: ProvenResult | None, *, embed: bool
             ) -> list[dict[str, Any]]:
    objects = result.as_objects()
    if proven is not None:
        for obj, proof in zip(objects, proven.proofs, strict=True):
            obj["_Proof"] = None if proof is None else proof.text if embed else proof.file_name
    return objects


def _write_bundle(directory: Path, result: QueryResult, proven: ProvenResult) -> None:
    """What an auditor is handed: one proof per entry, the checkpoint, and the rows."""
    from auditseal.index import write_proofs

    write_proofs(proven, directory)
    rows = _objects(result, proven, embed=False)
    (directory / "results.json").write_bytes(
        orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")


def _cells(result: QueryResult, proven: ProvenResult | None, *, proof_dir: Path | None,
           full: bool) -> tuple[list[str], list[list[str]]]:
    columns = list(result.columns)
    rows = [[_cell(value, kind, full) for value, kind in zip(row, result.types, strict=True)]
            for row in result.rows]
    if proven is not None:
        columns.append("_Proof")
        for cells, proof in zip(rows, proven.proofs, strict=True):
            if proof is None:
                cells.append("")
            else:
                cells.append(proof.file_name if proof_dir is not None else "verified")
    return columns, rows


def _cell(value: Any, kind: str, full: bool) -> str:
    from auditseal.index.query import json_value

    shown = json_value(value, kind)
    if shown is None:
        return ""
    text = shown if isinstance(shown, str) and kind != "JSON" else (
        orjson.dumps(shown).decode() if not isinstance(shown, str) else shown)
    if not full:
        text = text.replace("\n", " ")
        if len(text) > _CELL_WIDTH:
            text = text[: _CELL_WIDTH - 1] + "…"
    return text


def _print_table(columns: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)]
    print("  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                        ).rstrip())
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", file=sys.stderr)
