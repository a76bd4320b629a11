"""Benchmark 6: sealing into Azure Blob Storage (Azurite), beside the filesystem backend.

Three figures, each for the ``azblob://`` log in a local Azurite and for a log directory
on the local disk, in the same run and with the same records:

1. **Throughput**: events/s through ``LogWriter.append`` (4,096 per batch, journal with
   fdatasync) with the background publisher sealing every 100 ms, the final publish
   included.
2. **Storage requests per 1,000 events** (every HTTP request the SDK sent, retries
   included: ``RequestCounter``) for a steady 5,000 events/s stream at two publish
   cadences. The floor any tlog-tiles log must pay is shown beside it: every 256 entries
   need one full entry bundle and one full level-0 hash tile, i.e. 2 / 256 * 1,000 = 7.8
   writes per 1,000 events, so the issue's goal of <= 5 cannot be met with this layout
   (see docs/benchmarks.md).
3. **Share of stored bytes in partial objects** (``.p/`` tiles and bundles, written once
   per publish and superseded by the full object later) and in the checkpoint history,
   for the same streams.

Azurite is a single Node.js process on this machine, not Azure: its latency is far lower
than a real region's (~5-20 ms per Put Blob) and it does not replicate. The request counts
do not depend on that; the events/s do.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from azure.storage.blob import BlobServiceClient
from tests.azurite import Azurite, azurite_executable, run_azurite

from auditseal.config import WriterConfig
from auditseal.log.local import LocalLog, init_log, latest_checkpoint, open_writer
from auditseal.storage.azure_location import AzureBlobLocation
from bench.data import Profile, Result, build_records, print_table, scratch_dir

ORIGIN = "bench.example/azure"
BATCH = 4096
STREAM_RATE = 5000  # events/s: the goal rate
FLOOR_PER_1000 = 2 / 256 * 1000  # a full bundle + a full level-0 tile per 256 entries
GOAL_RATE, GOAL_REQUESTS = 5000.0, 5.0


@dataclass(frozen=True)
class Run:
    """What one sealing run measured."""

    backend: str
    events: int
    seconds: float
    requests: int  # storage requests (Azure) or objects + head swaps (filesystem)
    total_bytes: int
    partial_bytes: int
    history_bytes: int

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds

    @property
    def per_1000(self) -> float:
        """Requests per 1,000 events."""
        return self.requests / self.events * 1000


@contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _sizes_azure(azurite: Azurite, container: str) -> dict[str, int]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return {str(b.name): int(b.size) for b in service.get_container_client(container).list_blobs()}


def _sizes_dir(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size
            for p in root.rglob("*") if p.is_file() and ".auditseal" not in p.parts
            and p.name != "checkpoint" and not p.name.startswith(".")}


def _requests(log: LocalLog) -> int:
    remote = log.remote
    if isinstance(remote, AzureBlobLocation):
        return remote.object_store().requests + remote.head_store().requests
    return 0


def _seal(log: LocalLog, records: list[bytes], interval_s: float, rate: float | None) -> float:
    """Append ``records``; returns seconds, the final publish included.

    ``rate`` None: 4,096-batches as fast as possible, the background publisher sealing
    every ``interval_s``. Otherwise a steady stream of ``rate`` events/s in 10 ms ticks,
    published from this thread exactly every ``interval_s``: the background publisher's
    ``publish()`` keeps sealing while new entries keep arriving, so under a steady
    stream its real cadence is the seal time, not ``interval_s`` (see docs/benchmarks.md).
    """
    config = WriterConfig(publish_interval_s=interval_s, set_immutable=False)
    started = time.perf_counter()
    with open_writer(log, config=config) as writer:
        if rate is None:
            writer.start_publisher()
            for i in range(0, len(records), BATCH):
                writer.append(records[i:i + BATCH])
            writer.stop_publisher()
        else:
            tick = 0.01
            per_tick = max(1, int(rate * tick))
            every = max(1, round(interval_s / tick))
            for n, i in enumerate(range(0, len(records), per_tick)):
                delay = started + n * tick - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                writer.append(records[i:i + per_tick])
                if (n + 1) % every == 0:
                    writer.publish()
        writer.publish()
    elapsed = time.perf_counter() - started
    head = latest_checkpoint(log)
    assert head is not None
    assert head.size == len(records)
    return elapsed


def _run(backend: str, azurite: Azurite, scratch: Path, records: list[bytes],
         interval_s: float, rate: float | None) -> Run:
    name = f"bench-{uuid.uuid4().hex[:12]}"
    if backend == "azure":
        with _env(AUDITSEAL_AZURE_CONNECTION_STRING=azurite.connection_string,
                  AUDITSEAL_STATE=str(scratch / name)):
            log, _ = init_log(f"azblob://{name}", ORIGIN)
            before = _requests(log)
            seconds = _seal(log, records, interval_s, rate)
            requests = _requests(log) - before
            assert isinstance(log.remote, AzureBlobLocation)
            log.remote.close()
        sizes = _sizes_azure(azurite, name)
    else:
        log, _ = init_log(scratch / name, ORIGIN)
        existing = _sizes_dir(scratch / name)
        seconds = _seal(log, records, interval_s, rate)
        sizes = _sizes_dir(scratch / name)
        # Objects created + head swaps: what the same publishes would cost as requests.
        requests = len(sizes) - len(existing) + sum(
            1 for key in sizes if key.startswith("checkpoints/") and key not in existing)
    return Run(
        backend=backend, events=len(records), seconds=seconds, requests=requests,
        total_bytes=sum(sizes.values()),
        partial_bytes=sum(size for key, size in sizes.items() if ".p/" in key),
        history_bytes=sum(size for key, size in sizes.items() if key.startswith("checkpoints/")),
    )


def run(profile: Profile) -> list[Result]:
    """Run benchmark 6 and print its tables; returns its summary rows."""
    if azurite_executable() is None:
        print("\n(azure: skipped: azurite-blob is not installed; 'make test' installs it)")
        return []
    burst = build_records(min(profile.append_events, 100_000))
    stream = burst[: int(STREAM_RATE * profile.latency_seconds)]
    runs: dict[tuple[str, str], Run] = {}
    with run_azurite() as azurite, scratch_dir("azure") as scratch:
        for backend in ("azure", "filesystem"):
            runs[backend, "burst"] = _run(backend, azurite, scratch, burst, 0.1, None)
            for interval in (0.1, 1.0):
                runs[backend, f"{interval:g} s"] = _run(backend, azurite, scratch, stream,
                                                       interval, STREAM_RATE)
    fastest = runs["azure", "burst"]
    print_table(
        f"6a. Sealing throughput ({len(burst):,} events, append {BATCH}/batch, publish "
        "every 100 ms, fsync on)",
        ["backend", "events", "seconds", "events/s", "storage requests", "per 1,000 events"],
        [(b, r.events, r.seconds, r.rate, r.requests, r.per_1000)
         for (b, kind), r in runs.items() if kind == "burst"],
    )
    print_table(
        f"6b. Requests and stored bytes for a steady {STREAM_RATE:,} events/s stream "
        f"({len(stream):,} events)",
        ["backend", "publish every", "requests / 1,000 events", "floor (full objects only)",
         "stored MB", "partial objects", "checkpoint history"],
        [(b, kind, r.per_1000, FLOOR_PER_1000, r.total_bytes / 1e6,
          f"{r.partial_bytes / r.total_bytes:.1%}", f"{r.history_bytes / r.total_bytes:.2%}")
         for (b, kind), r in runs.items() if kind != "burst"],
    )
    steady = runs["azure", "0.1 s"]
    relaxed = runs["azure", "1 s"]
    return [
        Result("Azure (Azurite) sealing rate", fastest.rate, runs["filesystem", "burst"].rate,
               "events/s", f">= {GOAL_RATE:,.0f}", fastest.rate >= GOAL_RATE, "filesystem"),
        Result("Azure requests / 1,000 events (100 ms)", steady.per_1000, FLOOR_PER_1000,
               "req", f"<= {GOAL_REQUESTS:g}", steady.per_1000 <= GOAL_REQUESTS,
               "tlog-tiles floor"),
        Result("Azure requests / 1,000 events (1 s)", relaxed.per_1000, FLOOR_PER_1000,
               "req", f"<= {GOAL_REQUESTS:g}", relaxed.per_1000 <= GOAL_REQUESTS,
               "tlog-tiles floor"),
    ]
