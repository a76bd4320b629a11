"""Benchmark 7: collector lag, from a record appended to a PT1H.json blob to its seal.

An Azure Monitor export is simulated in a local Azurite exactly as diagnostic settings
write it (``tests/azure/export_layout.py``: append blobs in ``insights-activity-logs``,
one record per line). The collector (``auditseal.ingest.collector`` with the
``azure_storage`` source) polls every 1 s in a thread; records (benchmark workload, ~1.9 KB
Activity Log events) are appended one at a time at random moments, mostly to the current
hour's blob and every fourth to the previous hour's (late records). A monitor notes when
the writer's signed checkpoint first covers each size. A record's lag runs from the
return of its Append Block to the first signed checkpoint that includes it; its log
index is found from the position sealed in its entry header.

Expected: half the poll interval on average (the record waits for the next poll), plus
one list, a ranged read, the journal fsync and a publish. Azurite is local, so a real
account adds its request latency (~10-50 ms per call) to every round.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

from tests.azure.export_layout import ExportWriter, activity_blob
from tests.azurite import azurite_executable, run_azurite

from auditseal.clock import SystemClock
from auditseal.config import WriterConfig
from auditseal.core.entry import decode_entry
from auditseal.ingest.azure_storage import open_export_source
from auditseal.ingest.collector import Collector, CollectorConfig
from auditseal.ingest.cursor import parse_position
from auditseal.log.local import init_log, open_writer
from auditseal.log.reader import LogReader
from bench.data import Profile, Result, build_records, percentile, print_table, scratch_dir
from bench.latency import CheckpointMonitor

ORIGIN = "bench.example/collector"
INTERVAL_S = 1.0
GOAL_P50_S = 2.0
SAMPLES = {"quick": 12, "default": 40, "full": 100}


def measure(samples: int) -> tuple[list[float], int]:
    """Append ``samples`` records one by one; their lags (s) and the collector's rounds."""
    records = build_records(samples)
    rng = random.Random(11)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    blobs = [activity_blob(hour), activity_blob(hour - timedelta(hours=1))]
    with run_azurite() as azurite, scratch_dir("collector") as root:
        export = ExportWriter(azurite.connection_string)
        for blob in blobs:  # the blobs exist before the run, as in a live account
            export.append_raw(blob, b"")
        source = open_export_source(connection_string=azurite.connection_string)
        log, _ = init_log(root / "log", ORIGIN)
        config = WriterConfig(fsync=True, set_immutable=False)
        appended: dict[tuple[str, int], float] = {}
        rounds = 0
        with open_writer(log, config=config) as writer:
            collector = Collector(
                source, writer, log.object_store(), state_dir=log.state / "cursors",
                name=f"azure-storage-{source.account}", clock=SystemClock(),
                config=CollectorConfig(interval_s=INTERVAL_S),
            )
            collector.reconcile()
            monitor = CheckpointMonitor(writer)
            monitor.start()
            stop = threading.Event()

            def count_round(_report: object) -> None:
                nonlocal rounds
                rounds += 1

            thread = threading.Thread(target=collector.run, args=(stop, count_round),
                                      name="bench-collector", daemon=True)
            thread.start()
            for i, record in enumerate(records):
                time.sleep(rng.uniform(0.1, 0.6))
                blob = blobs[1] if i % 4 == 3 else blobs[0]
                offset = export.append(blob, [record])[0]
                appended[(blob.key, offset)] = time.perf_counter()
            deadline = time.monotonic() + 10 * INTERVAL_S
            while time.monotonic() < deadline and (
                writer.checkpoint is None or writer.checkpoint.size < len(records)
            ):
                time.sleep(0.01)
            stop.set()
            thread.join()
            monitor.stop.set()
            monitor.join()
            checkpoint = writer.checkpoint
            assert checkpoint is not None
            lags = []
            for index, entry in LogReader(log.object_store(), checkpoint).entries():
                position = parse_position(decode_entry(entry).header.source, source.account)
                if position in appended:
                    lags.append(monitor.covered_at(index) - appended[position])
    return lags, rounds


def run(profile: Profile) -> list[Result]:
    """Benchmark entry point (``python -m bench --only collector``)."""
    if azurite_executable() is None:
        print("\n(collector: skipped, azurite-blob is not installed; 'make test' installs it)")
        return []
    samples = SAMPLES.get(profile.name, 40)
    lags, rounds = measure(samples)
    p50, p90, p99 = (percentile(lags, q) for q in (0.5, 0.9, 0.99))
    print_table(
        f"7. Collector lag: PT1H.json append -> signed checkpoint, s ({len(lags)} records, "
        f"poll every {INTERVAL_S:g} s, {rounds} rounds, Azurite)",
        ["records", "min", "p50", "p90", "p99", "max", "goal p50"],
        [(len(lags), min(lags), p50, p90, p99, max(lags), f"<= {GOAL_P50_S:g} s")],
    )
    return [
        Result("collector lag p50 (append blob -> signed checkpoint)", p50, INTERVAL_S, "s",
               f"<= {GOAL_P50_S:g} s", p50 <= GOAL_P50_S, "poll interval"),
        Result("collector lag p99", p99, INTERVAL_S, "s", "-", None, "poll interval"),
    ]
