"""Run the benchmarks: ``python -m bench [--quick | --full] [--only NAME ...] [--profile]``.

Each benchmark prints its own table (Markdown, ready for docs/benchmarks.md); a summary
table follows: metric | auditseal | peer/limit | ratio | goal | met?. Nothing here
asserts timings: the figures are for people to read.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

from bench import alerts as alerts_bench
from bench import append, azure, latency, memory, proofs, service_load, verify
from bench import collector as collector_lag
from bench import search as search_bench
from bench.data import PROFILES, Profile, Result, print_table, summary_rows

BENCHMARKS: dict[str, Callable[[Profile], list[Result]]] = {
    "alerts": alerts_bench.run,  # --only alerts: streaming Sigma evaluation (issue 4)
    "append": append.run,
    "latency": latency.run,
    "verify": verify.run,
    "proofs": proofs.run,
    "memory": memory.run,
    "azure": azure.run,
    "collector": collector_lag.run,
    "search": search_bench.run,
}
# --only service: `auditseal serve` under HTTP load from this process (issue 5); it runs
# last by default, after the library benchmarks it is compared with.
BENCHMARKS["service"] = service_load.run


def _machine() -> str:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo").read().splitlines()  # noqa: SIM115, PTH123
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return (f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the chosen benchmarks."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    size.add_argument("--full", action="store_true",
                      help="the issue's sizes (10 M leaves and events), ~10 minutes")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the CLI append path and print its top cost centres")
    args = parser.parse_args(argv)
    profile = PROFILES["quick" if args.quick else "full" if args.full else "default"]
    print(f"# auditseal benchmarks ({profile.name} sizes)\n\n{_machine()}")
    started = time.perf_counter()
    results: list[Result] = []
    for name in args.only or list(BENCHMARKS):
        t0 = time.perf_counter()
        results.extend(BENCHMARKS[name](profile))
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    if args.profile:
        append.profile_cli(profile)
    print_table(
        f"Summary ({profile.name} sizes, {time.perf_counter() - started:.0f} s in all)",
        ["metric", "auditseal", "peer/limit", "ratio", "goal", "met?"],
        summary_rows(results),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
