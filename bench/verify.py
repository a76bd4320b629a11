"""Benchmark 3: full verification throughput beside raw SHA-256 over the same entries.

A log of the benchmark records is sealed (fsync off to build it quickly; the bytes are
the same), then ``verify_log`` re-reads every bundle, re-hashes every entry, rebuilds
every tile, and checks every tile and every signed checkpoint in the history. The
limit is ``hashlib.sha256`` once over each sealed entry (header + event, the exact leaf
input), read back from the bundles, in the same run. Both run with a warm page cache.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from auditseal.config import WriterConfig
from auditseal.core.tiles import decode_bundle
from auditseal.log.local import LocalLog, init_log, open_writer
from auditseal.verify import DirectorySource, VerifyReport, verify_log
from bench.append import sha256_seconds
from bench.data import Profile, Result, build_records, print_table, scratch_dir

ORIGIN = "bench.example/verify"
WORKERS = os.cpu_count() or 1
BATCH = 4096
GOAL_FRACTION = 0.40


def build_log(root: Path, records: list[bytes]) -> LocalLog:
    """Seal ``records``, publishing a checkpoint after every batch."""
    log, _ = init_log(root, ORIGIN)
    config = WriterConfig(fsync=False, set_immutable=False)
    with open_writer(log, config=config) as writer:
        for i in range(0, len(records), BATCH):
            writer.append(records[i : i + BATCH], source="file:bench.jsonl")
            writer.publish()
    return log


def sealed_entries(root: Path) -> list[bytes]:
    """Every entry as sealed, read back from the entry bundles."""
    source = DirectorySource(root)
    entries: list[bytes] = []
    for key in source.list("tile/entries/"):
        entries.extend(decode_bundle(source.read(key)))
    return entries


def verify_seconds(log: LocalLog, workers: int = 1) -> tuple[float, VerifyReport]:
    """Wall time of one full verify_log with the log's key, and its report."""
    verifiers = [log.verifier()]  # NoteVerifier.from_vkey(log.verifier_key)
    started = time.perf_counter()
    report = verify_log(DirectorySource(log.root), verifiers, workers=workers)
    return time.perf_counter() - started, report


def run(profile: Profile) -> list[Result]:
    """Run benchmark 3 and print its table; returns its summary row."""
    records = build_records(profile.verify_events)
    with scratch_dir("verify") as scratch:
        root = scratch / "log"
        log = build_log(root, records)
        entries = sealed_entries(root)
        mb = sum(len(e) for e in entries) / 1e6
        sha = min(sha256_seconds(entries) for _ in range(3))
        verify_seconds(log)  # warm the page cache and the interpreter
        serial, _ = verify_seconds(log)
        seconds, report = verify_seconds(log, workers=WORKERS)
    assert report.ok, [str(f) for f in report.findings[:3]]
    assert report.entries_checked == len(entries) == len(records)
    print_table(
        f"3. Full verification ({len(entries):,} entries, {mb:.0f} MB, "
        f"{report.checkpoints_checked} checkpoints, {report.tiles_checked} tiles, warm cache)",
        ["what", "seconds", "MB/s", "entries/s"],
        [
            (f"verify_log, {WORKERS} hashing workers (the CLI default: one per CPU)",
             seconds, mb / seconds, len(entries) / seconds),
            ("verify_log, serial (read, re-hash, rebuild tiles, check checkpoints)", serial,
             mb / serial, len(entries) / serial),
            ("hashlib.sha256 per entry (physical limit)", sha, mb / sha, len(entries) / sha),
        ],
    )
    ours, limit = mb / seconds, mb / sha
    return [
        Result("full verify throughput", ours, limit, "MB/s", ">= 40 % of raw SHA-256",
               ours >= GOAL_FRACTION * limit, "raw SHA-256"),
    ]
