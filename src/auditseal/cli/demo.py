"""``auditseal demo``: seal sample Azure audit events, verify, tamper with a copy, catch it.

The README's first command runs this, so a newcomer sees the whole promise in one go.
"""

from __future__ import annotations

import argparse
import io
import shutil
import stat
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from auditseal.api.keys import KeyStore
from auditseal.cli import commands_serve, exitcodes
from auditseal.core.notekeys import NoteVerifier
from auditseal.core.tiles import bundle_path
from auditseal.core.tlogproof import verify_tlog_proof
from auditseal.ingest.pipeline import ingest
from auditseal.ingest.records import iter_records
from auditseal.log.local import init_log, latest_checkpoint, open_writer
from auditseal.log.reader import LogReader
from auditseal.verify import DirectorySource, verify_log


def register(commands: Any) -> None:
    """Add the demo command."""
    demo = commands.add_parser(
        "demo", help="seal sample Azure audit events, verify, tamper with a copy, catch it"
    )
    demo.add_argument("--dir", type=Path, default=None,
                      help="where to create the demo log (default: a new temporary folder)")
    demo.add_argument(
        "--serve", action="store_true",
        help="then serve the demo log (API and web UI) until Ctrl-C, when run at a terminal",
    )
    demo.add_argument("--port", type=int, default=8421, help="port for --serve")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when every tampering was caught."""
    base = args.dir or Path(tempfile.mkdtemp(prefix="auditseal-demo-"))
    root = base / "log"
    sample = resources.files("auditseal.demo").joinpath("sample_events.jsonl").read_bytes()

    _step(1, f"create a log in {root}")
    log, vkey = init_log(root, "demo.auditseal.local/log")
    print(f"   verifier key (what an auditor pins): {vkey}")

    _step(2, "seal sample Azure audit events (Activity Log, Entra ID sign-ins, AKS audit)")
    with open_writer(log) as writer:
        summary = ingest(writer, iter_records(io.BytesIO(sample)), source="demo")
    checkpoint = latest_checkpoint(log)
    assert checkpoint is not None
    print(f"   sealed {summary.sealed} events; signed checkpoint at size {checkpoint.size}")

    verifiers = [NoteVerifier.from_vkey(vkey)]
    _step(3, "verify the log from its entries with only the public key")
    report = verify_log(DirectorySource(root), verifiers)
    print(f"   {'OK' if report.ok else 'FAILED'}: {report.entries_checked} entries, "
          f"{report.checkpoints_checked} checkpoints re-derived")

    _step(4, "prove one event is in the log, and check the proof offline")
    index = checkpoint.size // 2
    proof = LogReader(DirectorySource(root), checkpoint).tlog_proof(index)
    verified = verify_tlog_proof(proof, proof.extra or b"", verifiers)
    print(f"   entry {index}: inclusion proof of {len(proof.hashes)} hashes verified against "
          f"the checkpoint of size {verified.size}")

    caught = 0
    _step(5, "tamper with a copy: change one byte of one sealed event")
    copy = base / "tampered"
    _copy_writable(root, copy)
    bundle = copy / bundle_path(0, min(256, checkpoint.size))
    data = bytearray(bundle.read_bytes())
    position = data.rfind(b'"', 0, len(data) // 2)  # inside some event near the middle
    data[position - 1] ^= 0x01
    bundle.write_bytes(bytes(data))
    caught += _show(verify_log(DirectorySource(copy), verifiers))

    _step(6, "tamper with another copy: roll the checkpoint back to an older one")
    rolled = base / "rolled-back"
    _copy_writable(root, rolled)
    older = sorted((rolled / "checkpoints").iterdir())[-2]
    (rolled / "checkpoint").write_bytes(older.read_bytes())
    caught += _show(verify_log(DirectorySource(rolled), verifiers))

    print()
    print(f"the original log verifies: {report.ok}; tamperings caught: {caught} of 2")
    print(f"try it yourself: auditseal verify --log {root} --key '{vkey}'")
    ok = report.ok and caught == 2
    if ok and args.serve:
        return _serve_demo(root, vkey, args.port)
    return exitcodes.OK if ok else exitcodes.INTEGRITY


def _serve_demo(root: Path, vkey: str, port: int) -> int:
    """Serve the demo log with a fresh admin key, so the web UI shows it at once.

    Only at a terminal: a script running ``make demo`` gets the demo and its exit code,
    not a server that never returns.
    """
    serve = f"auditseal serve --log {root} --port {port}"
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(f"\n(not a terminal: not starting the server; to browse the demo log run: "
              f"auditseal keys create --role admin --log {root} && {serve})")
        return exitcodes.OK
    _, token = KeyStore(root / ".auditseal").create("admin", name="demo")
    _step(7, f"serve the demo log: open http://127.0.0.1:{port}/ (Ctrl-C stops it)")
    print(f"   API key (paste it in Settings): {token}")
    print(f"   verifier key to pin:            {vkey}")
    args = commands_serve_args(root, port)
    return commands_serve.run_serve(args)


def commands_serve_args(root: Path, port: int) -> argparse.Namespace:
    """The arguments ``auditseal serve --log ROOT --port PORT`` would parse to."""
    from auditseal.cli.main import build_parser  # main imports this module

    return build_parser().parse_args(["serve", "--log", str(root), "--port", str(port)])


def _show(report: Any) -> int:
    for finding in report.findings[:4]:
        print(f"   caught -> {finding}")
    return 0 if report.ok else 1


def _step(number: int, text: str) -> None:
    print(f"\n{number}. {text}")


def _copy_writable(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".auditseal"))
    for path in target.rglob("*"):
        if path.is_file():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
