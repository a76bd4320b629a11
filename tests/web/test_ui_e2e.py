"""End to end: `auditseal serve` with real Azure corpus events, driven in headless Chromium.

The log is made the way a user makes one: `auditseal init`, `auditseal append` of real
records from /work/shared/corpus (tests/conftest.py CORPUS), keys from `auditseal keys
create`; then `auditseal serve` runs as a separate process on 127.0.0.1 and more corpus
records (their times moved into the last two days, so the timeline has something to show)
arrive over HTTP. The browser pins the verifier key `init` printed, searches, opens an
event, verifies it in the page (Web Crypto), and must report FAILED when the server lies:
a proof of another entry, altered event bytes, or a key that did not sign.

Screenshots of every page go to docs/screenshots/ when AUDITSEAL_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Page, Route, expect

from auditseal.core.notekeys import NoteSigner
from auditseal.ingest.records import split_records
from tests.conftest import CORPUS, run_cli
from tests.web.browser import chromium, require_chromium

FIXTURES = CORPUS / "datadog_azure-log-forwarding-orchestration/forwarder/internal/logs/fixtures"
SEALED_FILES = [
    "activedirectory/sign_in_logs.json",
    "activedirectory/audit_logs.json",
    "aks_logs.json",
    "workflowruntime_logs.json",
]
# Recent copies: (file, minutes between records) -- uneven, so the timeline has texture.
RECENT = [
    ("activedirectory/service_principal_sign_in_logs.json", 97),
    ("activedirectory/ms_graph_activity_logs.json", 41),
    ("activedirectory/non_interactive_user_sign_in_logs.json", 173),
]
SHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
UPDATE_SHOTS = os.environ.get("AUDITSEAL_UPDATE_SCREENSHOTS") == "1"


@dataclass(frozen=True)
class Service:
    """A running `auditseal serve` and what the test knows out of band."""

    url: str
    vkey: str  # printed by `auditseal init`: the key the user pins
    auditor_key: str
    records: dict[int, bytes]  # log index -> the record bytes as read from the corpus


def _cli(*args: str | Path) -> str:
    """Run the CLI in-process (a new interpreter per command costs seconds) for its output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_cli(*args)
    assert code == 0, f"auditseal {' '.join(map(str, args))} exited {code}"
    return out.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _recent_copies(now: datetime) -> bytes:
    """Corpus records with their times moved into the last 42 hours, as an NDJSON body."""
    lines = []
    for name, step in RECENT:
        records, _ = split_records((FIXTURES / name).read_bytes())
        for i, record in enumerate(records):
            event = orjson.loads(record.data)
            moment = now - timedelta(minutes=(step * i) % (42 * 60))
            event["time"] = moment.isoformat().replace("+00:00", "Z")
            lines.append(orjson.dumps(event))
    return b"\n".join(lines) + b"\n"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`auditseal serve` on a log of real corpus records."""
    require_chromium()
    log = tmp_path_factory.mktemp("ui") / "log"
    out = _cli("init", "--log", log, "--name", "e2e.example/audit")
    vkey = re.findall(r"^e2e\.example/audit\+[0-9a-f]{8}\+\S+$", out, re.MULTILINE)[0]
    records: dict[int, bytes] = {}
    for name in SEALED_FILES:
        first = len(records)
        _cli(
            "append",
            "--log",
            log,
            "--no-progress",
            "--source",
            f"file:{Path(name).name}",
            FIXTURES / name,
        )
        good, _ = split_records((FIXTURES / name).read_bytes())
        records.update({first + i: r.data for i, r in enumerate(good)})
    keys = {
        role: re.findall(r"as_\S+", _cli("keys", "create", "--role", role, "--log", log))[0]
        for role in ("auditor", "ingest")
    }
    url = f"http://127.0.0.1:{_free_port()}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "auditseal",
            "serve",
            "--log",
            str(log),
            "--host",
            "127.0.0.1",
            "--port",
            url.rsplit(":", 1)[1],
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_healthy(url, server)
        _post(url + "/v1/events", keys["ingest"], _recent_copies(datetime.now(UTC)))
        yield Service(url, vkey, keys["auditor"], records)
    finally:
        server.terminate()
        server.wait(timeout=15)


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"auditseal serve exited: {server.stderr.read() if server.stderr else ''!r}"
            )
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("auditseal serve did not become healthy in 30 s")


def _post(url: str, key: str, body: bytes) -> None:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert orjson.loads(resp.read())["rejected"] == 0


@pytest.fixture(scope="module")
def page(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One browser tab for the whole walk-through, with the API key entered."""
    with chromium() as browser:
        tab = browser.new_page(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(service.url + "/")
        expect(tab).to_have_url(re.compile(r"/ui/"))
        tab.goto(service.url + "/ui/#/settings")
        tab.fill("#api-key", service.auditor_key)
        tab.click("#save-key")
        yield tab
        assert not errors, f"JavaScript errors in the page: {errors}"


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Screenshot: into docs/screenshots when asked to update them, else just taken."""
    target = SHOTS / f"{name}.png" if UPDATE_SHOTS else None
    png = page.screenshot(full_page=full_page, animations="disabled")
    assert png.startswith(b"\x89PNG")
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)


def pin(page: Page, vkey: str) -> None:
    page.goto(page.url.split("#")[0] + "#/settings")
    page.fill("#pinned-key", vkey)
    page.click("#save-pin")
    expect(page.locator("#pin-info")).to_contain_text("Pinned")


def test_fetching_the_key_from_the_server_warns_trust_on_first_use(
    page: Page, service: Service
) -> None:
    page.goto(page.url.split("#")[0] + "#/settings")
    page.click("#fetch-pin")
    expect(page.locator("#tofu-warning")).to_be_visible()
    expect(page.locator("#tofu-warning")).to_contain_text("Trust on first use")
    assert page.input_value("#pinned-key") == service.vkey
    shot(page, "settings")
    pin(page, service.vkey)  # the key `init` printed, compared out of band: here, equal


def test_search_lists_sealed_events_with_links(page: Page, service: Service) -> None:
    query = (
        "SigninLogs | project _LogIndex, TimeGenerated, UserPrincipalName, IPAddress"
        " | order by _LogIndex asc"
    )
    page.goto(page.url.split("#")[0] + "#/search")
    page.fill("#kql", query)
    page.click("#run")
    rows = page.locator("#results tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() == len(split_records((FIXTURES / SEALED_FILES[0]).read_bytes())[0])
    expect(rows.first.locator("a")).to_have_text("#0")
    shot(page, "search")


def test_event_shows_exact_bytes_and_verifies_in_the_browser(page: Page, service: Service) -> None:
    page.goto(page.url.split("#")[0] + "#/event/0")
    expect(page.locator("#sealed-json")).to_have_text(service.records[0].decode())
    page.click("#verify")
    result = page.locator("#verify-result")
    expect(result).to_have_attribute("data-status", "verified")
    expect(result).to_contain_text("Verified")
    expect(page.locator("ol.steps li.ok")).to_have_count(6)
    shot(page, "event-verified", full_page=True)


def _other_entrys_proof(index: int, other: int) -> Callable[[Route], None]:
    """A lying server: the proof of entry ``other``, labelled as the proof of ``index``."""

    def handle(route: Route) -> None:
        genuine = route.fetch().json()
        response = route.fetch(url=route.request.url.replace(f"index={index}", f"index={other}"))
        body = {**response.json(), "index": index, "leaf_hash": genuine["leaf_hash"]}
        route.fulfill(response=response, json=body)

    return handle


def test_proof_of_another_entry_fails(page: Page) -> None:
    page.route("**/v1/proofs/inclusion?index=3*", _other_entrys_proof(3, 4))
    try:
        page.goto(page.url.split("#")[0] + "#/event/3")
        page.click("#verify")
        expect(page.locator("#verify-result")).to_have_attribute("data-status", "failed")
        expect(page.locator("#verify-result")).to_contain_text("FAILED")
        expect(page.locator("ol.steps li.failed")).to_contain_text("Inclusion proof")
        shot(page, "event-tampered", full_page=True)
    finally:
        page.unroute("**/v1/proofs/inclusion?index=3*")


def test_altered_event_bytes_fail(page: Page) -> None:
    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        event = service_b64_replace(body["event_b64"])
        route.fulfill(response=response, json={**body, "event_b64": event})

    page.route("**/v1/entries/5", handle)
    try:
        page.goto(page.url.split("#")[0] + "#/event/5")
        page.click("#verify")
        expect(page.locator("#verify-result")).to_have_attribute("data-status", "failed")
        expect(page.locator("ol.steps li.failed").first).to_contain_text(
            "Entry holds the displayed event"
        )
    finally:
        page.unroute("**/v1/entries/5")


def service_b64_replace(event_b64: str) -> str:
    """The event with one digit changed: what a lying server might display."""
    data = base64.b64decode(event_b64)
    changed = data.replace(b"0", b"1", 1)
    assert changed != data
    return base64.b64encode(changed).decode()


def test_a_key_that_did_not_sign_fails(page: Page, service: Service) -> None:
    stranger = NoteSigner.from_seed("e2e.example/audit", b"\x07" * 32)
    pin(page, stranger.vkey)
    try:
        page.goto(page.url.split("#")[0] + "#/event/0")
        page.click("#verify")
        expect(page.locator("#verify-result")).to_have_attribute("data-status", "failed")
        expect(page.locator("ol.steps li.failed")).to_contain_text("not signed by the pinned key")
    finally:
        pin(page, service.vkey)


def test_timeline_draws_events_per_hour(page: Page) -> None:
    page.goto(page.url.split("#")[0] + "#/timeline")
    bars = page.locator("#timeline svg rect")
    expect(bars.first).to_be_visible()
    assert bars.count() >= 10
    expect(page.locator(".legend")).to_contain_text("ServicePrincipalSignInLogs")
    shot(page, "timeline")


def test_alerts_link_to_the_events_that_fired_them(page: Page) -> None:
    page.goto(page.url.split("#")[0] + "#/alerts")
    link = page.locator("tbody a").first
    expect(link).to_be_visible()
    shot(page, "alerts")
    target = link.inner_text().lstrip("#")
    link.click()
    expect(page.locator("h1")).to_have_text(f"Event #{target}")


def test_integrity_page_shows_checkpoint_history(page: Page, service: Service) -> None:
    page.goto(page.url.split("#")[0] + "#/integrity")
    expect(page.locator("h2", has_text="Checkpoint history")).to_be_visible()
    rows = page.locator("tbody tr")
    expect(rows.first).to_contain_text(service.vkey.split("+")[0])
    assert rows.count() >= len(SEALED_FILES)
    shot(page, "integrity")
