"""Benchmark: the HTTP service under load from a second process (issue 5, "Performance").

``auditseal serve`` runs as a subprocess on 127.0.0.1 with its defaults (fsync on: the
durable path; index and alert follower on unless a variant turns them off). This process
is the load generator: 50 concurrent clients (threads, one ``httpx.Client`` and one
connection each) POST batches of ``BATCH`` Activity Log records (~1.9 KB each, from
:func:`bench.data.build_records`) to ``/v1/events`` for 5 s (``--quick``), 20 s (default)
or 60 s (``--full``). A response is counted only when it is 200 with an index per event:
the service answers after the group commit's fdatasync, so that is "accepted durably".
The server's RSS (``/proc/<pid>/status`` VmRSS) and CPU time are sampled meanwhile, and
those of its child, the index/alert follower, apart.

Then the server gets SIGTERM (final publish), and the log is read back: every returned
index must be unique and hold, byte for byte, the event sent with it; no other entry may
come from HTTP ingest; ``auditseal verify`` must exit 0. The same number of events then
goes through ``auditseal append FILE`` into another log, timed, for the HTTP overhead.

``AUDITSEAL_BENCH_SERVICE_PROFILE=1`` (or ``=<variant slug>``) runs the server of the
first (or that) variant under a per-thread cProfile (CPU time per thread, summed; this
module's ``profiled-serve`` entry) and prints its top cost centres. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import pstats
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from auditseal.core.entry import decode_entry
from auditseal.log.local import STATE_DIR, latest_checkpoint, load_log
from auditseal.log.reader import LogReader
from auditseal.verify import DirectorySource
from bench.data import (
    Profile,
    Result,
    build_records,
    percentile,
    print_table,
    scratch_dir,
    size_stats,
)

SECONDS = {"quick": 5.0, "default": 20.0, "full": 60.0}
CLIENTS = 50
BATCH = 250  # events per request (~480 KB)
POOL = 20_000  # distinct records; requests cycle through them
GOAL_EVENTS_PER_S = 20_000
PROFILE_ENV = "AUDITSEAL_BENCH_SERVICE_PROFILE"
REPO = Path(__file__).resolve().parents[1]
AUDITSEAL = [sys.executable, "-m", "auditseal"]


@dataclass(frozen=True)
class Variant:
    """One load run: how the server runs and how bodies are encoded."""

    name: str
    slug: str  # the log's folder
    serve_flags: tuple[str, ...]
    body: str  # "ndjson" or "array"


VARIANTS = (
    Variant("serve (defaults), NDJSON", "defaults-ndjson", (), "ndjson"),
    Variant("serve (defaults), JSON array", "defaults-array", (), "array"),
    Variant("serve --no-index --no-alerts, NDJSON", "ingest-only-ndjson",
            ("--no-index", "--no-alerts"), "ndjson"),
)


@dataclass
class Load:
    """What the clients saw."""

    indexes: array[int] = field(default_factory=lambda: array("q"))
    origins: array[int] = field(default_factory=lambda: array("q"))  # pool position sent
    latencies: list[float] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)  # status -> count
    rejected_items: int = 0
    seconds: float = 0.0
    client_cpu_s: float = 0.0


@dataclass
class Run:
    """One variant's figures."""

    variant: Variant
    load: Load
    rss_mb: list[tuple[float, float]]  # (seconds since load start, MB)
    server_cpu_s: float
    follower_cpu_s: float  # the index/alert follower, a child process of the server
    follower_rss_mb: list[float]  # its samples, every 0.5 s
    stop_s: float
    checked: int
    problems: list[str]
    verify_rc: int
    log_size: int  # after the final publish
    alerted: int | None  # entries the alert follower had evaluated when it stopped

    @property
    def rate(self) -> float:
        """Events accepted durably per second of load."""
        return len(self.load.indexes) / self.load.seconds


# -- the server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AUDITSEAL, *args], capture_output=True, text=True, check=False)


def _start_server(root: Path, port: int, flags: tuple[str, ...], profile_out: Path | None
                  ) -> subprocess.Popen[bytes]:
    serve = ["serve", "--log", str(root), "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", *flags]
    command = ([sys.executable, "-m", "bench.service_load", "profiled-serve", str(profile_out),
                *serve] if profile_out else [*AUDITSEAL, *serve])
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''!r}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """The server's child processes (the index/alert follower)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _over_children(pid: int, measure: Callable[[int], float]) -> float:
    """``measure`` summed over the server's children (one that just exited counts 0)."""
    total = 0.0
    for child in _children(pid):
        with contextlib.suppress(OSError):
            total += measure(child)
    return total


def _follower_cpu_s(pid: int) -> float:
    return _over_children(pid, _cpu_s)


def _follower_rss_mb(pid: int) -> float:
    return _over_children(pid, _rss_mb)


# -- the load -----------------------------------------------------------------------------


def _bodies(records: list[bytes], kind: str) -> list[bytes]:
    batches = [records[i : i + BATCH] for i in range(0, len(records) - BATCH + 1, BATCH)]
    if kind == "ndjson":
        return [b"".join(r + b"\n" for r in batch) for batch in batches]
    return [b"[" + b",".join(batch) + b"]" for batch in batches]


def _client(number: int, http: httpx.Client, url: str, bodies: list[bytes], deadline: float
            ) -> Load:
    """One client: POST batches until ``deadline``; what it saw."""
    load, turn = Load(), number
    while time.perf_counter() < deadline:
        which = turn % len(bodies)
        turn += CLIENTS
        started = time.perf_counter()
        answer = http.post(url, content=bodies[which])
        if answer.status_code != 200:
            load.refused[answer.status_code] = load.refused.get(answer.status_code, 0) + 1
            time.sleep(float(answer.headers.get("retry-after", "1")))
            continue
        load.latencies.append(time.perf_counter() - started)
        doc = orjson.loads(answer.content)
        load.rejected_items += doc["rejected"]
        for entry in doc["entries"]:
            load.indexes.append(entry["index"])
            load.origins.append(which * BATCH + entry["item"])
    return load


def _generate(port: int, key: str, bodies: list[bytes], kind: str, seconds: float, pid: int
              ) -> tuple[Load, list[tuple[float, float]], list[float]]:
    """``CLIENTS`` threads, one ``httpx.Client`` (one connection) each, for ``seconds``.

    Threads with the sync client cost ~1 ms of CPU per request here, the async client
    ~1.8 ms. The clients are made before the clock starts: each loads the CA bundle
    (~70 ms) unless given a shared SSL context, although this traffic is plain HTTP.
    """
    media = "application/x-ndjson" if kind == "ndjson" else "application/json"
    headers = {"authorization": f"Bearer {key}", "content-type": media}
    tls = ssl.create_default_context()
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300,
                            verify=tls) for _ in range(CLIENTS)]
    rss = [(0.0, _rss_mb(pid))]
    follower_rss = [_follower_rss_mb(pid)]
    done = threading.Event()
    cpu0, started = time.process_time(), time.perf_counter()

    def sample() -> None:
        while not done.wait(0.5):
            rss.append((time.perf_counter() - started, _rss_mb(pid)))
            follower_rss.append(_follower_rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with ThreadPoolExecutor(CLIENTS) as pool:
        loads = list(pool.map(lambda n: _client(n, clients[n], "/v1/events", bodies,
                                                started + seconds), range(CLIENTS)))
    total = Load(seconds=time.perf_counter() - started,
                 client_cpu_s=time.process_time() - cpu0)
    done.set()
    sampler.join()
    rss.append((total.seconds, _rss_mb(pid)))
    for load, http in zip(loads, clients, strict=True):
        http.close()
        total.indexes.extend(load.indexes)
        total.origins.extend(load.origins)
        total.latencies.extend(load.latencies)
        total.rejected_items += load.rejected_items
        for code, n in load.refused.items():
            total.refused[code] = total.refused.get(code, 0) + n
    follower_rss.append(_follower_rss_mb(pid))
    return total, rss, follower_rss


# -- checking -----------------------------------------------------------------------------


def _check(root: Path, load: Load, records: list[bytes]) -> tuple[int, int, list[str]]:
    """Read the log back: (log size, HTTP entries found, problems)."""
    log = load_log(root)
    head = latest_checkpoint(log)
    assert head is not None
    sent = dict(zip(load.indexes, load.origins, strict=True))
    problems = []
    if len(sent) != len(load.indexes):
        problems.append(f"{len(load.indexes) - len(sent)} indexes returned twice")
    found = 0
    for index, raw in LogReader(DirectorySource(log.root), head).entries():
        entry = decode_entry(raw)
        if not (entry.header.source or "").startswith("http:"):
            continue
        found += 1
        origin = sent.pop(index, None)
        if origin is None:
            problems.append(f"entry {index} came by HTTP but no client got its index")
        elif entry.event != records[origin % len(records)]:
            problems.append(f"entry {index} does not hold the event sent with it")
        if len(problems) > 10:
            break
    if sent:
        problems.append(f"{len(sent)} acknowledged events are not in the log "
                        f"(size {head.size}), e.g. index {next(iter(sent))}")
    return head.size, found, problems


def run_variant(variant: Variant, records: list[bytes], seconds: float, scratch: Path,
                profile_out: Path | None = None) -> Run:
    """Serve, load, stop, check, verify: one variant."""
    root = scratch / variant.slug
    if (made := _cli("init", "--log", str(root), "--name", "bench.example/serve")).returncode:
        raise RuntimeError(made.stderr)
    created = _cli("keys", "create", "--role", "ingest", "--log", str(root), "--json")
    key = orjson.loads(created.stdout)["key"]
    port = _free_port()
    proc = _start_server(root, port, variant.serve_flags, profile_out)
    try:
        _wait_ready(proc, port)
        cpu0, follower0 = _cpu_s(proc.pid), _follower_cpu_s(proc.pid)
        load, rss, follower_rss = _generate(port, key, _bodies(records, variant.body),
                                            variant.body, seconds, proc.pid)
        cpu = _cpu_s(proc.pid) - cpu0
        follower_cpu = _follower_cpu_s(proc.pid) - follower0
        stopping = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=600)
        stop_s = time.perf_counter() - stopping
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0:
        raise RuntimeError(f"server exit {rc}: {proc.stderr.read() if proc.stderr else ''!r}")
    size, checked, problems = _check(root, load, records)
    alerts = root / STATE_DIR / "serve-alerts.json"
    alerted = int(orjson.loads(alerts.read_bytes())["size"]) if alerts.exists() else None
    verified = _cli("verify", "--log", str(root), "--no-progress")
    if verified.returncode:
        problems.append(f"auditseal verify exit {verified.returncode}: {verified.stderr[-300:]}")
    return Run(variant, load, rss, cpu, follower_cpu, follower_rss, stop_s, checked, problems,
               verified.returncode, size, alerted)


def cli_append_seconds(scratch: Path, records: list[bytes], count: int) -> float:
    """Seconds for ``auditseal append FILE`` of ``count`` records (cycled), fsync on."""
    root, path = scratch / "cli-log", scratch / "cli-events.jsonl"
    with path.open("wb") as out:
        for i in range(count):
            out.write(records[i % len(records)] + b"\n")
    if (made := _cli("init", "--log", str(root), "--name", "bench.example/cli")).returncode:
        raise RuntimeError(made.stderr)
    started = time.perf_counter()
    done = _cli("append", str(path), "--log", str(root), "--no-progress")
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(done.stderr)
    path.unlink()
    return elapsed


# -- the report ---------------------------------------------------------------------------


def run(profile: Profile) -> list[Result]:
    """Run every variant and the CLI comparison; print the tables; the summary rows."""
    seconds = SECONDS[profile.name]
    records = build_records(POOL)
    low, median, high, _ = size_stats(records)
    profiling = os.environ.get(PROFILE_ENV, "")
    runs: list[Run] = []
    with scratch_dir("service") as scratch:
        for number, variant in enumerate(VARIANTS):
            chosen = profiling in ("1", variant.slug) if number == 0 else profiling == variant.slug
            out = scratch / "server.prof" if chosen else None
            runs.append(run_variant(variant, records, seconds, scratch, out))
            print(f"  {variant.name}: {runs[-1].rate:,.0f} events/s", flush=True)
            if out is not None:
                print_profile(out)
        count = len(runs[0].load.indexes)
        cli_s = cli_append_seconds(scratch, records, count)
    cli_rate = count / cli_s
    print_table(
        f"8. HTTP ingest under load ({CLIENTS} clients, {BATCH} events/request, {seconds:g} s "
        f"per variant; events {low:,}-{high:,} B, median {median:,} B; fsync on; 2 CPUs "
        "shared by server and load generator)",
        ["variant", "events acked", "events/s", "MB/s", "req p50 ms", "req p99 ms",
         "refused", "server CPU", "follower CPU", "client CPU", "RSS start/mid/end/max MB",
         "follower RSS start/mid/end/max MB", "stop s",
         "alerted/log size", "lost/dup/verify"],
        [_row(r, median) for r in runs]
        + [(f"auditseal append FILE (CLI, same {count:,} events)", count, cli_rate,
            cli_rate * median / 1e6, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-")],
    )
    return _results(runs, cli_rate)


def _row(r: Run, median: int) -> tuple[object, ...]:
    lat = r.load.latencies
    mid = min(r.rss_mb, key=lambda s: abs(s[0] - r.load.seconds / 2))[1]
    rss = f"{r.rss_mb[0][1]:.0f}/{mid:.0f}/{r.rss_mb[-1][1]:.0f}/{max(m for _, m in r.rss_mb):.0f}"
    refused = ", ".join(f"{n}x{code}" for code, n in sorted(r.load.refused.items())) or "0"
    check = "ok" if not r.problems else "; ".join(r.problems[:3])
    return (r.variant.name, len(r.load.indexes), r.rate, r.rate * median / 1e6,
            1000 * percentile(lat, 0.5), 1000 * percentile(lat, 0.99), refused,
            f"{r.server_cpu_s / r.load.seconds:.2f} cores",
            f"{r.follower_cpu_s / r.load.seconds:.2f} cores",
            f"{r.load.client_cpu_s / r.load.seconds:.2f} cores", rss, _samples(r.follower_rss_mb),
            r.stop_s,
            "-" if r.alerted is None else f"{r.alerted:,}/{r.log_size:,}",
            f"0/0/exit {r.verify_rc}" if not r.problems else check)


def _samples(mb: list[float]) -> str:
    """start/mid/end/max of RSS samples taken at a steady rate."""
    return f"{mb[0]:.0f}/{mb[len(mb) // 2]:.0f}/{mb[-1]:.0f}/{max(mb):.0f}"


def _results(runs: list[Run], cli_rate: float) -> list[Result]:
    results = []
    for r in runs:
        lat = r.load.latencies
        mid = min(r.rss_mb, key=lambda s: abs(s[0] - r.load.seconds / 2))[1]
        results += [
            Result(f"HTTP ingest, {r.variant.name}", r.rate, GOAL_EVENTS_PER_S, "events/s",
                   ">= 20,000 events/s", r.rate >= GOAL_EVENTS_PER_S, "goal"),
            Result(f"  request p99 ({BATCH} events)", 1000 * percentile(lat, 0.99),
                   1000 * percentile(lat, 0.5), "ms", "(reported)", None, "p50"),
            Result("  events in the log once, as sent", r.checked, len(r.load.indexes),
                   "events", "all; verify exit 0", not r.problems, "acknowledged"),
            Result("  server RSS growth, middle -> end", r.rss_mb[-1][1] - mid,
                   r.rss_mb[0][1], "MB", "flat (< 32 MB)", r.rss_mb[-1][1] - mid < 32,
                   "RSS at start"),
        ]
    results += [Result(f"HTTP ({r.variant.name}) vs CLI append", r.rate, cli_rate, "events/s",
                       "(context)", None, "auditseal append, same run") for r in runs]
    return results


# -- profiling the server -----------------------------------------------------------------


def print_profile(path: Path, top: int = 25) -> None:
    """The server's top cost centres by own CPU time, all threads summed."""
    print(f"\n### cProfile of the server (CPU time, all threads), top {top} by own time\n")
    stats = pstats.Stats(str(path))
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    print("\n### The same, by phase (cumulative CPU time)\n")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(PHASES)


PHASES = (r"(\(post_events|\(split_body|\(seal_batch|\(append_entries|\(_write_batch"
          r"|\(_publish_loop|\(_seal\)|\(create_many|\(_follow_loop|\(feed_index|\(_feed_alerts"
          r"|engine.py:\d+\(process\)|h11_impl.py:\d+\((data_received|send)\)|\(render)")


def profiled_serve(out: Path, argv: list[str]) -> int:
    """Run ``auditseal <argv>`` with a cProfile per thread (thread CPU time), summed to ``out``.

    ``threading.setprofile`` installs a hook in every thread started afterwards; its first
    call replaces itself with that thread's own profiler (cProfile sees one thread each).
    """
    import cProfile

    from auditseal.cli.main import main

    profilers: list[cProfile.Profile] = []

    def start(*_: object) -> None:
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()

    threading.setprofile(start)
    own = cProfile.Profile(time.thread_time)
    own.enable()
    code = main(argv)
    own.disable()
    stats = pstats.Stats(own)
    for profiler in profilers:
        with contextlib.suppress(TypeError):  # a thread that never ran Python code
            stats.add(profiler)
    stats.dump_stats(str(out))
    return code


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "profiled-serve":
        sys.exit(profiled_serve(Path(sys.argv[2]), sys.argv[3:]))
    from bench.__main__ import main as bench_main

    sys.exit(bench_main(["--only", "service", *sys.argv[1:]]))
