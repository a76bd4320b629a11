"""The benchmark workload and report format shared by every benchmark.

Records are Azure Activity Log events in the diagnostic-export shape, built from the
real record in the corpus (otel-collector-contrib
``pkg/translator/azurelogs/testdata/administrative/valid_1.json``, copied unmodified into
/work/shared/corpus) with ids, times, callers, operations and the optional parts
(authorization, token claims, request body) varied deterministically per index, so
that sizes follow a log-normal spread of 1-5 KB with a ~1.9 KB median, as in real
Activity Log exports. Every benchmark returns :class:`Result` rows for the summary.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import statistics
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from auditseal.storage import clear_immutable

CORPUS_RECORD = Path(
    "/work/shared/corpus/otel_collector_contrib/pkg/translator/azurelogs/testdata/"
    "administrative/valid_1.json"
)
MIN_BYTES, MEDIAN_BYTES, MAX_BYTES = 1000, 1900, 5000
_SIGMA = 0.45  # log-normal spread: ~90 % of records fall between 1.0 and 3.8 KB

_OPERATIONS = (
    ("MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/WRITE", "microsoft.insights/diagnosticSettings"),
    ("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE", "Microsoft.Compute/virtualMachines"),
    ("MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE", "Microsoft.Authorization/roleAssignments"),
    ("MICROSOFT.KEYVAULT/VAULTS/DELETE", "Microsoft.KeyVault/vaults"),
    ("MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", "Microsoft.Storage/storageAccounts"),
    ("MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/WRITE", "Microsoft.Network/networkSecurityGroups"),
)
_RESULTS = (("Start", "Started."), ("Success", "Succeeded."), ("Failure", "Forbidden."))
_PEOPLE = ("John Doe", "Ana Silva", "Wei Zhang", "Fatima Khan", "Olu Adeyemi", "Eva Novak")
_LOCATIONS = ("France South", "West Europe", "East US", "Japan East")


@dataclass(frozen=True)
class Profile:
    """How big each benchmark runs; ``--quick``, default and ``--full`` pick one."""

    name: str
    append_events: int  # records through the CLI path and the writer alone
    pymerkle_events: int  # the same records into pymerkle's InmemoryTree
    latency_seconds: float  # how long the steady append stream of the latency bench runs
    verify_events: int  # records in the log that verify_log reads back
    proof_size: int  # tree size of the proof benchmark
    pymerkle_proof_size: int  # the peer's tree size for proofs (it holds every node)
    proof_samples: int  # random indexes per proof measurement
    memory_events: int  # small events appended while RSS is sampled


PROFILES = {
    "quick": Profile("quick", 20_000, 20_000, 2.0, 10_000, 100_000, 20_000, 300, 200_000),
    "default": Profile("default", 100_000, 100_000, 4.0, 50_000, 1_000_000, 100_000, 1000,
                       1_000_000),
    "full": Profile("full", 500_000, 200_000, 8.0, 200_000, 10_000_000, 200_000, 1000,
                    10_000_000),
}


@dataclass(frozen=True)
class Result:
    """One row of the summary: our figure beside a peer or a physical limit."""

    metric: str
    ours: float
    peer: float
    unit: str
    goal: str
    met: bool | None  # None: a context row with no goal of its own
    peer_name: str = ""

    @property
    def ratio(self) -> float:
        """Our figure over the peer's (or the limit's)."""
        return self.ours / self.peer if self.peer else math.inf


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print a Markdown table (pastes straight into docs/benchmarks.md)."""
    text = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(header)]
    print(f"\n### {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in text:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def summary_rows(results: Iterable[Result]) -> list[tuple[str, str, str, str, str, str]]:
    """Rows for the summary table: metric | auditseal | peer/limit | ratio | goal | met?"""
    return [
        (
            r.metric,
            f"{_number(r.ours)} {r.unit}",
            f"{_number(r.peer)} {r.unit} ({r.peer_name})",
            f"{r.ratio:.2f}x",
            r.goal,
            "-" if r.met is None else "met" if r.met else "NOT met",
        )
        for r in results
    ]


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder on the disk under test, removed afterwards.

    ``init_log`` seals its first checkpoint with the default config, which sets the
    immutable attribute where the process may (root on ext4); clear it before deleting.
    """
    root = Path(tempfile.mkdtemp(prefix=f"auditseal-bench-{prefix}-",
                                 dir=os.environ.get("AUDITSEAL_BENCH_DIR")))
    try:
        yield root
    finally:
        clear_immutable(root)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def one_core() -> Iterator[int]:
    """Pin this process (all its threads) to one CPU for the block; yields the CPU."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


# -- records ---------------------------------------------------------------------------------


def _template() -> dict[str, Any]:
    if not CORPUS_RECORD.is_file():
        raise SystemExit(f"the benchmark records are built from {CORPUS_RECORD}; it is missing")
    document = json.loads(CORPUS_RECORD.read_text())
    record: dict[str, Any] = document["records"][0]
    return record


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RecordBuilder:
    """Deterministic Activity Log records of realistic size; record ``i`` is fixed by seed."""

    def __init__(self, seed: int = 20260101) -> None:
        """Load the corpus record once."""
        self._seed = seed
        self._template = _template()
        self._claims: list[tuple[str, Any]] = list(self._template["identity"]["claims"].items())
        self._body: str = self._template["properties"]["requestbody"]

    def record(self, i: int) -> bytes:
        """Record ``i`` as compact JSON (one line, no newline)."""
        rng = random.Random(self._seed * 1_000_003 + i)
        target = round(min(MAX_BYTES, max(MIN_BYTES, rng.lognormvariate(
            math.log(MEDIAN_BYTES), _SIGMA))))
        rec = copy.deepcopy(self._template)
        operation, provider = _OPERATIONS[rng.randrange(len(_OPERATIONS))]
        result, signature = _RESULTS[rng.randrange(len(_RESULTS))]
        person = _PEOPLE[rng.randrange(len(_PEOPLE))]
        subscription = _uuid(rng)
        seconds = i * 0.137
        rec["time"] = (f"2026-03-{1 + int(seconds // 86400) % 28:02d}T"
                       f"{int(seconds // 3600) % 24:02d}:{int(seconds // 60) % 60:02d}:"
                       f"{seconds % 60:010.7f}Z")
        rec["RoleLocation"] = _LOCATIONS[rng.randrange(len(_LOCATIONS))]
        rec["operationName"] = operation
        rec["resultType"], rec["resultSignature"] = result, signature
        rec["durationMs"] = str(rng.randrange(0, 5000))
        rec["callerIpAddress"] = f"203.0.{rng.randrange(113, 120)}.{rng.randrange(1, 255)}"
        rec["correlationId"] = _uuid(rng)
        rec["resourceId"] = (f"/SUBSCRIPTIONS/{subscription.upper()}/RESOURCEGROUPS/RG-{i % 97}"
                             f"/PROVIDERS/{operation.rsplit('/', 1)[0]}/RES-{i}")
        props = rec["properties"]
        props["entity"] = rec["resourceId"].lower()
        props["message"] = operation.lower()
        props["hierarchy"] = f"{_uuid(rng)}/{subscription}"
        identity = rec["identity"]
        identity["authorization"]["scope"] = props["entity"]
        identity["authorization"]["action"] = f"{provider}/write"
        claims = dict(self._claims)
        claims["name"] = person
        claims["ipaddr"] = rec["callerIpAddress"]
        claims["uti"] = f"{rng.getrandbits(96):024x}"
        del props["requestbody"]
        identity["claims"] = {}
        size = len(orjson.dumps(rec))
        if size > target:  # small events carry no authorization evidence
            del identity["authorization"]["evidence"]
            size = len(orjson.dumps(rec))
        for key, value in claims.items():  # token claims in order while they fit
            extra = len(orjson.dumps({key: value})) - 1
            if size + extra > target:
                break
            identity["claims"][key] = value
            size += extra
        room = target - size - len(',"requestbody":""')
        if room > 0:  # the request body fills the rest; its quotes are escaped twice
            body = (self._body * (1 + room // len(self._body)))[: int(room / 1.08)]
            props["requestbody"] = body
        return orjson.dumps(rec)

    def records(self, count: int, start: int = 0) -> list[bytes]:
        """Records ``start .. start+count-1``."""
        return [self.record(i) for i in range(start, start + count)]


def build_records(count: int, *, distinct: int = 20_000, seed: int = 20260101) -> list[bytes]:
    """``count`` records; past ``distinct`` the sizes repeat but every record stays unique.

    Building a record costs ~40 us, so large runs reuse ``distinct`` built records and
    make each copy unique by rewriting its correlation id's tail with the index.
    """
    builder = RecordBuilder(seed)
    base = builder.records(min(count, distinct))
    if count <= len(base):
        return base
    out = list(base)
    for i in range(len(base), count):
        rec = base[i % len(base)]
        marker = rec.index(b'"correlationId":"') + len('"correlationId":"') + 24
        out.append(rec[:marker] + f"{i:012x}".encode() + rec[marker + 12 :])
    return out


def jsonl(records: Iterable[bytes]) -> bytes:
    """JSON lines: one record per line."""
    return b"".join(r + b"\n" for r in records)


def size_stats(records: Sequence[bytes]) -> tuple[int, int, int, int]:
    """(min, median, max, total) record bytes."""
    sizes = [len(r) for r in records]
    return min(sizes), int(statistics.median(sizes)), max(sizes), sum(sizes)


def small_event(i: int) -> bytes:
    """A ~100-byte event for the memory benchmark (there size does not matter, count does)."""
    return b'{"time":"2026-03-01T00:00:00Z","operationName":"READ","n":%d,"pad":"%08x"}' % (
        i, i * 2654435761 & 0xFFFFFFFF)
