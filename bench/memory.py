"""Benchmark 5: resident memory stays flat while the log grows.

N small events are appended (batches of 1,000, fsync off to keep the run short, the
background publisher sealing every 100 ms) and the resident set size (VmRSS from
/proc/self/status) is sampled every 100,000 events, with the number of entries not yet
sealed. The writer keeps only the tree's right edge and the unsealed entries, so RSS
should not grow with N. It is run twice: *free-running* (the issue's scenario: the
appender never waits) and *paced* (``publish()`` inline at every sample, so the
sealer keeps up; this separates a backlog from a leak). The peer is pymerkle's
InmemoryTree fed the same events, which keeps every node in memory.

Each side runs in a fresh interpreter (``python -m bench.memory CHILD N``) so that the
records other benchmarks built do not blur the baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from auditseal.config import WriterConfig
from auditseal.log.local import init_log, open_writer
from bench.data import Profile, Result, print_table, scratch_dir, small_event

SAMPLE_EVERY = 100_000
BATCH = 1000
PEER_MAX = 1_000_000  # pymerkle holds every node: ~1 KB per entry, so cap its run
FLAT_MB = 32.0  # goal: growth over the second half of the run stays below this


def rss_mb() -> float:
    """This process's resident set size in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


Sample = tuple[int, float, int]  # (events appended, RSS MB, entries not yet sealed)


def ours(count: int, *, paced: bool) -> list[Sample]:
    """Samples while auditseal appends ``count`` small events."""
    config = WriterConfig(fsync=False, set_immutable=False, publish_interval_s=0.1)
    samples = [(0, rss_mb(), 0)]
    with scratch_dir("memory") as root:
        log, _ = init_log(root / "log", "bench.example/memory")
        with open_writer(log, config=config) as writer:
            writer.start_publisher()
            for start in range(0, count, BATCH):
                writer.append([small_event(i) for i in range(start, min(count, start + BATCH))])
                done = min(count, start + BATCH)
                if done % SAMPLE_EVERY == 0 or done == count:
                    if paced:
                        writer.publish()
                    sealed = writer.checkpoint.size if writer.checkpoint else 0
                    samples.append((done, rss_mb(), done - sealed))
            writer.stop_publisher()
            writer.publish()
            assert writer.checkpoint is not None
            assert writer.checkpoint.size == count
    return samples


def peer(count: int) -> list[Sample]:
    """The same samples while pymerkle's InmemoryTree appends ``count`` small events."""
    import pymerkle

    tree = pymerkle.InmemoryTree()
    samples = [(0, rss_mb(), 0)]
    for i in range(count):
        tree.append_entry(small_event(i))
        if (i + 1) % SAMPLE_EVERY == 0 or i + 1 == count:
            samples.append((i + 1, rss_mb(), 0))
    return samples


def _child(kind: str, count: int) -> tuple[list[Sample], float]:
    env_path = str(Path(__file__).resolve().parent.parent)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", kind, str(count)],
        check=True, capture_output=True, text=True, cwd=env_path,
    )
    samples = [(int(n), float(mb), int(u)) for n, mb, u in json.loads(out.stdout)]
    return samples, time.perf_counter() - started


def run(profile: Profile) -> list[Result]:
    """Run benchmark 5 and print its table; returns its summary row."""
    count = profile.memory_events
    free, free_s = _child("ours", count)
    paced, paced_s = _child("paced", count)
    peer_count = min(count, PEER_MAX)
    theirs, _ = _child("peer", peer_count)

    def at(samples: list[Sample], fraction: float) -> Sample:
        return samples[min(len(samples) - 1, round(fraction * (len(samples) - 1)))]

    rows = []
    for name, samples in (
        (f"auditseal, free-running ({count:,} events, {free_s:.0f} s)", free),
        (f"auditseal, paced ({count:,} events, {paced_s:.0f} s)", paced),
        (f"pymerkle InmemoryTree ({peer_count:,} events)", theirs),
    ):
        start, first, middle, end = samples[0], samples[1], at(samples, 0.5), samples[-1]
        rows.append((name, start[1], first[1], f"{middle[1]:.0f} @ {middle[0]:,}", end[1],
                     end[1] - first[1], end[1] - middle[1], max(u for _, _, u in samples)))
    print_table(
        f"5. Resident memory, MB, sampled every {SAMPLE_EVERY:,} events (fsync off, "
        "publisher on)",
        ["what", "start", f"after {SAMPLE_EVERY:,}", "middle", "end", "growth first->end",
         "growth middle->end", "most unsealed"],
        rows,
    )
    for name, samples in (("free-running", free), ("paced", paced)):
        print(f"\nauditseal {name} (events: MB, unsealed): " + ", ".join(
            f"{n // 1000:,}k: {mb:.0f}, {u:,}" for n, mb, u in samples[1:: max(
                1, len(samples) // 10)]))
    results = []
    for name, samples in (("free-running", free), ("paced", paced)):
        second_half = at(samples, 1.0)[1] - at(samples, 0.5)[1]
        results.append(Result(
            f"RSS growth, {count:,} appends, {name}", samples[-1][1] - samples[1][1],
            theirs[-1][1] - theirs[1][1], "MB", f"flat (2nd half < {FLAT_MB:g} MB)",
            second_half < FLAT_MB, f"pymerkle @ {peer_count:,}"))
    return results


def main(argv: list[str]) -> None:
    """Child entry point: ``python -m bench.memory ours|paced|peer COUNT`` prints JSON samples."""
    kind, count = argv[0], int(argv[1])
    samples = peer(count) if kind == "peer" else ours(count, paced=kind == "paced")
    print(json.dumps(samples))


if __name__ == "__main__":
    main(sys.argv[1:])
