"""The auditor's commands: ``verify``, ``prove``, ``proof verify``, ``checkpoint verify``."""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from auditseal.cli import exitcodes
from auditseal.cli.output import ProgressBar, print_json
from auditseal.core.checkpoint import verify_checkpoint
from auditseal.core.entry import decode_entry
from auditseal.core.notekeys import NoteVerifier
from auditseal.core.proofs import verify_consistency
from auditseal.core.tlogproof import TlogProof, verify_tlog_proof
from auditseal.errors import ConfigError, FormatError
from auditseal.log.local import LocalLog, latest_checkpoint, load_log
from auditseal.log.reader import LogReader
from auditseal.verify import DirectorySource, LogSource, verify_log

CONSISTENCY_FORMAT = "auditseal.dev/consistency-proof@v1"


def register(commands: Any, *, log_parents: list[argparse.ArgumentParser],
             key_option: argparse.ArgumentParser, json_option: argparse.ArgumentParser) -> None:
    """Add this module's commands to the parser."""
    verify = commands.add_parser(
        "verify", parents=[*log_parents, key_option],
        help="re-derive the whole log from its entries and check every checkpoint",
    )
    verify.add_argument("--origin", default=None, help="expected log origin")
    verify.add_argument("--no-progress", action="store_true", help="no progress bar")
    verify.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, metavar="N",
        help="processes hashing entries in parallel (default: one per CPU)",
    )
    verify.set_defaults(handler=run_verify)

    prove = commands.add_parser(
        "prove", parents=log_parents,
        help="write an inclusion proof (C2SP tlog-proof) or a consistency proof to stdout",
    )
    target = prove.add_mutually_exclusive_group(required=True)
    target.add_argument("--index", type=int, help="entry index to prove")
    target.add_argument("--old-size", type=int, help="prove consistency from this tree size")
    prove.add_argument("--no-entry", action="store_true",
                       help="leave the entry out (a bare tlog-proof)")
    prove.set_defaults(handler=run_prove)

    proof = commands.add_parser("proof", help="check proofs offline")
    proof_commands = proof.add_subparsers(dest="proof_command", required=True, metavar="ACTION")
    proof_verify = proof_commands.add_parser(
        "verify", parents=[key_option, json_option],
        help="verify a .tlog-proof or consistency proof with only the public key",
    )
    proof_verify.add_argument("file", help="proof file, or - for stdin")
    proof_verify.add_argument("--entry", type=Path, default=None,
                              help="the entry bytes, for a bare tlog-proof")
    proof_verify.add_argument("--origin", default=None, help="expected log origin")
    proof_verify.set_defaults(handler=run_proof_verify)

    checkpoint = commands.add_parser("checkpoint", help="signed checkpoints")
    cp_commands = checkpoint.add_subparsers(dest="checkpoint_command", required=True,
                                            metavar="ACTION")
    cp_verify = cp_commands.add_parser(
        "verify", parents=[key_option, json_option],
        help="verify a C2SP checkpoint from any log (e.g. the Go checksum database)",
    )
    cp_verify.add_argument("file", help="checkpoint file, or - for stdin")
    cp_verify.add_argument("--origin", default=None, help="expected log origin")
    cp_verify.set_defaults(handler=run_checkpoint_verify)


def load_verifiers(keys: list[str], fallback: str | None = None) -> list[NoteVerifier]:
    """Verifier keys from ``--key`` values: literal vkeys or files holding one per line."""
    texts: list[str] = []
    for key in keys:
        path = Path(key)
        if "+" not in key or path.is_file():
            try:
                texts.extend(line.strip() for line in path.read_text().splitlines())
            except OSError as exc:
                raise ConfigError(f"--key {key}: not a verifier key and not a readable file "
                                  f"({exc.strerror})") from None
        else:
            texts.append(key)
    texts = [t for t in texts if t and not t.startswith("#")]
    if not texts and fallback is not None:
        texts = [fallback]
    if not texts:
        raise ConfigError("no verifier key: pass --key VKEY (the log's public key)")
    try:
        return [NoteVerifier.from_vkey(text) for text in texts]
    except FormatError as exc:
        raise ConfigError(f"bad verifier key: {exc}") from exc


def log_source(log: LocalLog) -> tuple[LogSource, bytes | None]:
    """Read access to a log's tree, and its head bytes when the head lives apart.

    A local log is read as a plain directory (what an auditor would be handed); a remote
    one through its object store, with the head read from its head store.
    """
    if log.remote is None:
        return DirectorySource(log.root), None
    head = log.head_store().load()
    return log.object_store(), None if head is None else head.data


def run_verify(args: argparse.Namespace) -> int:
    """Verify the whole log; exit 0 only if everything holds."""
    log = load_log(args.log)
    pinned = bool(args.key)
    verifiers = load_verifiers(args.key, fallback=log.verifier_key)
    bar = ProgressBar("verifying", enabled=False if args.no_progress or args.json else None)
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    source, head = log_source(log)
    report = verify_log(source, verifiers, origin=args.origin, head=head,
                        progress=bar.update, workers=args.workers if log.remote is None else 1)
    bar.close()
    if args.json:
        print_json({**report.to_json(), "key_pinned": pinned})
    else:
        for finding in report.findings:
            print(finding)
        if report.suppressed:
            print(f"... and {report.suppressed} more findings (use --json)")
        verdict = "OK" if report.ok else "FAILED"
        rate = report.bytes_hashed / max(report.seconds, 1e-9) / 1e6
        print(f"{verdict}: {report.entries_checked} entries, {report.checkpoints_checked} "
              f"checkpoints, {report.tiles_checked} tiles checked in {report.seconds:.2f} s "
              f"({rate:.0f} MB/s); size {report.size}, root {report.root_hash}")
        if not pinned:
            print("note: checked against the log's own key; pass --key VKEY to pin the key "
                  "you were given", file=sys.stderr)
    return exitcodes.OK if report.ok else exitcodes.INTEGRITY


def run_prove(args: argparse.Namespace) -> int:
    """Print a tlog-proof for ``--index`` or a consistency proof from ``--old-size``."""
    log = load_log(args.log)
    checkpoint = latest_checkpoint(log)
    if checkpoint is None:
        raise ConfigError(f"{args.log} has no checkpoint yet")
    reader = LogReader(log_source(log)[0], checkpoint, edge=log.edge_hint(checkpoint))
    try:
        if args.index is not None:
            sys.stdout.buffer.write(
                reader.tlog_proof(args.index, with_entry=not args.no_entry).to_bytes())
            return exitcodes.OK
        proof = reader.consistency_proof(args.old_size)
        old = reader.source.read(f"checkpoints/{args.old_size:020d}")
    except IndexError as exc:
        raise ConfigError(str(exc)) from None
    document = {
        "format": CONSISTENCY_FORMAT,
        "old_checkpoint": old.decode(),
        "new_checkpoint": checkpoint.note_bytes.decode(),
        "proof": [base64.b64encode(h).decode() for h in proof],
    }
    print_json(document)
    return exitcodes.OK


def run_proof_verify(args: argparse.Namespace) -> int:
    """Verify an inclusion (tlog-proof) or consistency proof offline."""
    verifiers = load_verifiers(args.key)
    data = _read_input(args.file)
    if data.lstrip().startswith(b"{"):
        return _verify_consistency_document(data, verifiers, args)
    proof = TlogProof.parse(data)
    if args.entry is not None:
        entry = _read_input(str(args.entry))
    elif proof.extra is not None:
        entry = proof.extra
    else:
        raise ConfigError("this proof carries no entry: pass --entry FILE with the entry bytes")
    checkpoint = verify_tlog_proof(proof, entry, verifiers, origin=args.origin)
    result: dict[str, Any] = {
        "ok": True, "index": proof.index, "origin": checkpoint.origin,
        "tree_size": checkpoint.size, "root_hash": checkpoint.root_hash.hex(),
        "verified_by": list(checkpoint.verified_by),
    }
    try:
        decoded = decode_entry(entry)
        result["received"] = decoded.header.received.isoformat()
        result["source"] = decoded.header.source
        result["event"] = orjson.loads(decoded.event)
    except (FormatError, orjson.JSONDecodeError):
        pass  # a foreign log's entry: the proof holds, we just cannot show it
    if args.json:
        print_json(result)
    else:
        print(f"OK: entry {proof.index} is in {checkpoint.origin} at size {checkpoint.size} "
              f"(signed by {', '.join(checkpoint.verified_by)})")
        if "event" in result:
            print(f"received {result['received']} from {result['source']}")
            print(orjson.dumps(result["event"]).decode())
    return exitcodes.OK


def _verify_consistency_document(data: bytes, verifiers: list[NoteVerifier],
                                 args: argparse.Namespace) -> int:
    try:
        document = orjson.loads(data)
        if document.get("format") != CONSISTENCY_FORMAT:
            raise FormatError(f"unknown proof format {document.get('format')!r}")
        old = verify_checkpoint(document["old_checkpoint"].encode(), verifiers, args.origin)
        new = verify_checkpoint(document["new_checkpoint"].encode(), verifiers, args.origin)
        proof = [base64.b64decode(h, validate=True) for h in document["proof"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise FormatError(f"malformed consistency proof: {exc}") from exc
    verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    if args.json:
        print_json({"ok": True, "old_size": old.size, "new_size": new.size,
                    "origin": new.origin})
    else:
        print(f"OK: {new.origin} at size {new.size} is an append-only extension of size "
              f"{old.size}")
    return exitcodes.OK


def run_checkpoint_verify(args: argparse.Namespace) -> int:
    """Verify one signed checkpoint with the given keys."""
    verifiers = load_verifiers(args.key)
    checkpoint = verify_checkpoint(_read_input(args.file), verifiers, origin=args.origin)
    if args.json:
        print_json({"ok": True, "origin": checkpoint.origin, "size": checkpoint.size,
                    "root_hash": checkpoint.root_hash.hex(),
                    "verified_by": list(checkpoint.verified_by)})
    else:
        print(f"OK: {checkpoint.origin} size {checkpoint.size} root "
              f"{base64.b64encode(checkpoint.root_hash).decode()} "
              f"(signed by {', '.join(checkpoint.verified_by)})")
    return exitcodes.OK


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror}") from None
