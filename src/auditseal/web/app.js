// auditseal web UI: a hash-routed single page over the HTTP API of docs/api.md.
// Event data is attacker-controlled (anyone who can ingest writes it), so every value
// goes into the page through textContent (the h() helper), never through innerHTML.

import * as V from "./verify.js";
import { timelineChart } from "./chart.js";

const API_KEY = "auditseal.apiKey";      // sessionStorage: gone when the tab closes
const PINNED_KEY = "auditseal.pinnedKey"; // localStorage: a pin must outlive the session
const main = document.getElementById("main");

// ---- small DOM and API helpers ----------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = {};
  const key = sessionStorage.getItem(API_KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!resp.ok) {
    let code = "http_" + resp.status, message = resp.statusText;
    try { ({ code, message } = (await resp.json()).error); } catch { /* not our error body */ }
    if (resp.status === 401) message += " (set an API key in Settings)";
    if (resp.status === 403) message += " (this API key's role may not do this)";
    throw new ApiError(resp.status, code, message);
  }
  return raw ? new Uint8Array(await resp.arrayBuffer()) : resp.json();
}

function errorBox(err) {
  return h("div", { class: "error", role: "alert" }, err instanceof Error ? err.message : String(err));
}

function render(...nodes) { main.replaceChildren(...nodes.flat().filter((n) => n !== "" && n != null)); }

function table(columns, rows, cell = (col, row) => fmt(row[col])) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => {
      const v = cell(c, r);
      return h("td", { title: typeof v === "string" ? v : undefined }, v);
    }))))));
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function eventLink(index) { return h("a", { href: `#/event/${index}` }, `#${index}`); }

function kv(obj) {
  return h("dl", { class: "kv" }, Object.entries(obj).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v instanceof Node ? v : fmt(v))]));
}

function updateStatus() {
  const key = !!sessionStorage.getItem(API_KEY), pin = !!localStorage.getItem(PINNED_KEY);
  document.getElementById("status").replaceChildren(
    h("span", { class: "pill " + (key ? "on" : "off") }, key ? "API key set" : "no API key"),
    h("span", { class: "pill " + (pin ? "on" : "off") }, pin ? "verifier key pinned" : "no key pinned"));
}

// ---- Search -------------------------------------------------------------------------------

const DEFAULT_QUERY = "AuditEvents\n| project TimeGenerated, Category, OperationName, Caller, Result, _LogIndex\n| order by _LogIndex desc\n| take 100";
const EXAMPLES = {
  "Recent events": DEFAULT_QUERY,
  "Events by category": "AuditEvents | summarize Events = count() by Category | order by Events desc",
  "Failed sign-ins": "SigninLogs | where ResultType != \"0\" | project TimeGenerated, UserPrincipalName, IPAddress, ResultType, _LogIndex",
};

async function searchPage(params) {
  const query = params.get("q") || DEFAULT_QUERY;
  const box = h("textarea", { id: "kql", spellcheck: "false", rows: 5 }, query);
  const results = h("div", { id: "results" });
  const run = () => {
    const next = "#/search?q=" + encodeURIComponent(box.value);
    if (location.hash === next) route(); else location.hash = next; // same query: run again
  };
  box.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(); });
  render(h("h1", {}, "Search"),
    h("div", { class: "panel" }, box,
      h("div", { class: "row", style: "margin-top:10px" },
        h("button", { id: "run", onclick: run }, "Run query"),
        h("span", { class: "muted" }, "KQL over the sealed events · Ctrl+Enter runs · examples:"),
        Object.entries(EXAMPLES).map(([name, q]) => h("button", { class: "chip", onclick: () => { box.value = q; } }, name)))),
    results);
  results.append(h("p", { class: "muted" }, "Running…"));
  try {
    const res = await api("/v1/search", { method: "POST", body: { query, language: "kql", max_rows: 500 } });
    // The log index leads: it is the link to the sealed event and its proof.
    const cols = res.columns.filter((c) => c !== "_Event").sort((a, b) => (b === "_LogIndex") - (a === "_LogIndex"));
    results.replaceChildren(
      h("p", { class: "muted" }, `${res.rows.length} row(s)${res.truncated ? " (truncated)" : ""}`),
      table(cols, res.rows, (c, row) => (c === "_LogIndex" && row[c] !== null ? eventLink(row[c]) : fmt(row[c]))));
  } catch (err) {
    results.replaceChildren(errorBox(err));
  }
}

// ---- Event detail and verification ----------------------------------------------------------

async function eventPage(index) {
  render(h("h1", {}, `Event #${index}`), h("p", { class: "muted" }, "Loading…"));
  let ev;
  try { ev = await api(`/v1/entries/${index}`); } catch (err) { render(h("h1", {}, `Event #${index}`), errorBox(err)); return; }
  const sealed = V.b64ToBytes(ev.event_b64, "event_b64");
  const exact = new TextDecoder().decode(sealed);
  let pretty = exact;
  try { pretty = JSON.stringify(JSON.parse(exact), null, 2); } catch { /* show as sealed */ }
  const pre = h("pre", { class: "sealed", id: "sealed-json" }, exact);
  const toggle = h("button", { class: "chip", onclick: () => {
    const showExact = pre.dataset.pretty === "1";
    pre.textContent = showExact ? exact : pretty;
    pre.dataset.pretty = showExact ? "0" : "1";
    toggle.textContent = showExact ? "Pretty-print" : "Show exact bytes";
  } }, "Pretty-print");
  const out = h("div", { id: "verify-out" });
  render(
    h("h1", {}, `Event #${index}`),
    h("div", { class: "two" },
      h("div", { class: "panel" }, h("h2", { style: "margin-top:0" }, "Sealed entry"),
        kv({ "log index": ev.index, "leaf hash": ev.leaf_hash, received: ev.received, source: ev.source, kind: ev.kind, "event bytes": sealed.length })),
      h("div", { class: "panel" }, h("h2", { style: "margin-top:0" }, "Verify in this browser"),
        h("p", { class: "muted" }, "Fetches the inclusion proof and the signed checkpoint and checks them here, with Web Crypto, against the verifier key you pinned. The server is not trusted."),
        h("button", { id: "verify", onclick: () => verifyHere(index, ev, sealed, out) }, "Verify"), out)),
    h("div", { class: "panel" }, h("div", { class: "row" }, h("h2", { style: "margin:0" }, "Event JSON exactly as sealed"), toggle), pre));
}

// Where the full entry (header line + event) comes from: the entries endpoint if it ever
// returns it, else the tlog-tiles bundle, the bytes any tlog client would hash.
async function fetchEntry(index, ev, treeSize) {
  if (ev.entry_b64) return V.b64ToBytes(ev.entry_b64, "entry_b64");
  const paths = [V.bundlePathFor(index, treeSize)];
  const full = V.bundlePathFor(index, (BigInt(index) / 256n + 1n) * 256n);
  if (!paths.includes(full)) paths.push(full); // a partial bundle may be replaced by the full one
  let lastError;
  for (const path of paths) {
    try {
      const entries = V.decodeBundle(await api(`/log/${path}`, { raw: true }));
      const entry = entries[Number(BigInt(index) % 256n)];
      if (entry) return entry;
    } catch (err) { lastError = err; }
  }
  throw lastError || new Error("entry not found in its bundle");
}

async function verifyHere(index, ev, sealed, out) {
  out.replaceChildren(h("p", { class: "muted" }, "Verifying…"));
  let result;
  try {
    const proof = await api(`/v1/proofs/inclusion?index=${index}`);
    if (Number(proof.index) !== index) throw new V.VerifyError(`the server sent a proof for entry ${proof.index}, not ${index}`);
    const entry = await fetchEntry(index, ev, proof.tree_size);
    result = await V.verifyEvent({
      pinnedKey: localStorage.getItem(PINNED_KEY), index, entry, eventBytes: sealed,
      claimedLeafHash: proof.leaf_hash, treeSize: proof.tree_size, proof: proof.proof, checkpoint: proof.checkpoint,
    });
  } catch (err) {
    result = { ok: false, steps: [{ title: "Fetch the proof and the entry", status: "failed", detail: err.message }] };
  }
  const icon = { ok: "✓", failed: "✗", skipped: "–" };
  out.replaceChildren(
    h("div", { class: "verdict " + (result.ok ? "ok" : "failed"), id: "verify-result", "data-status": result.ok ? "verified" : "failed" },
      result.ok ? `✓ Verified: entry #${index} is in the log, signed by your pinned key` : `✗ Verification FAILED for entry #${index}`),
    h("ol", { class: "steps" }, result.steps.map((s) =>
      h("li", { class: s.status }, h("span", { class: "icon" }, icon[s.status]), h("span", {}, s.title), h("span", { class: "detail" }, s.detail)))));
}

// ---- Timeline, alerts, integrity -------------------------------------------------------------

async function timelinePage(params) {
  const hours = Number(params.get("hours")) || 48;
  const picker = h("div", { class: "row" }, [24, 48, 168].map((n) =>
    h("button", { class: "chip" + (n === hours ? " active" : ""), onclick: () => { location.hash = `#/timeline?hours=${n}`; } },
      n < 100 ? `${n} h` : `${n / 24} days`)));
  const head = h("div", { class: "row", style: "justify-content:space-between" }, h("h1", {}, "Timeline"), picker);
  render(head, h("p", { class: "muted" }, "Loading…"));
  try {
    const rows = await api(`/v1/stats/timeline?hours=${hours}`);
    render(head, h("div", { class: "panel chart", id: "timeline" },
      h("h2", { style: "margin-top:0" }, `Events per hour by category, last ${hours} hours (UTC, event time)`),
      rows.length ? timelineChart(rows) : h("p", { class: "muted" }, `No events in the last ${hours} hours.`)));
  } catch (err) { render(head, errorBox(err)); }
}

async function alertsPage() {
  render(h("h1", {}, "Alerts"), h("p", { class: "muted" }, "Loading…"));
  try {
    const alerts = await api("/v1/alerts?limit=100");
    const cols = ["time", "severity", "title", "group", "events"];
    render(h("h1", {}, "Alerts"), h("p", { class: "muted" }, `${alerts.length} alert(s), newest first. Each links to the sealed events that fired it.`),
      table(cols, alerts, (c, a) => {
        const sev = a.severity || a.level || "";
        if (c === "severity") return h("span", { class: `badge sev-${sev}` }, sev);
        if (c === "title") return h("span", { title: a.rule_id }, a.title);
        if (c === "group") return Object.entries(a.group || {}).map(([k, v]) => `${k}=${v}`).join(" ");
        if (c === "events") return h("span", { class: "row" }, (a.log_indexes || a.indexes || []).slice(0, 12).map(eventLink));
        return fmt(a[c]);
      }));
  } catch (err) { render(h("h1", {}, "Alerts"), errorBox(err)); }
}

async function integrityPage() {
  render(h("h1", {}, "Integrity"), h("p", { class: "muted" }, "Loading…"));
  try {
    const [st, history] = await Promise.all([api("/v1/integrity"), api("/v1/checkpoints?limit=50")]);
    const section = (title, value) => h("div", { class: "panel" }, h("h2", { style: "margin-top:0" }, title),
      value === null || value === undefined ? h("p", { class: "muted" }, "none yet")
        : typeof value === "object" ? kv(value) : h("p", {}, String(value)));
    const extra = Object.fromEntries(Object.entries(st).filter(([k]) =>
      !["checkpoint", "last_verification", "last_probe", "storage", "publish_error"].includes(k)));
    render(h("h1", {}, "Integrity"),
      st.publish_error ? h("div", { class: "error" }, "Publishing checkpoints fails: " + st.publish_error) : "",
      h("div", { class: "two" },
        section("Latest checkpoint", st.checkpoint),
        section("Storage", st.storage),
        section("Last full verification", st.last_verification),
        section("Last WORM probe", st.last_probe),
        Object.entries(extra).map(([k, v]) => section(k.replace(/_/g, " "), v))),
      h("h2", {}, "Checkpoint history"),
      table(["size", "root_hash", "signed by"], history, (c, cp) => {
        if (c !== "signed by") return fmt(cp[c]);
        try { return V.parseNote(cp.note).signatures.map((s) => `${s.name}+${V.formatKeyId(s.keyId)}`).join(", "); } catch (e) { return e.message; }
      }));
  } catch (err) { render(h("h1", {}, "Integrity"), errorBox(err)); }
}

// ---- Settings -----------------------------------------------------------------------------

function settingsPage() {
  const keyInput = h("input", { type: "password", id: "api-key", placeholder: "as_…", autocomplete: "off", value: sessionStorage.getItem(API_KEY) || "" });
  const pinInput = h("input", { type: "text", id: "pinned-key", placeholder: "origin+1234abcd+AQ…", value: localStorage.getItem(PINNED_KEY) || "" });
  const pinInfo = h("div", { id: "pin-info" });
  const tofu = h("div", { class: "warning", id: "tofu-warning", hidden: true },
    h("strong", {}, "Trust on first use. "),
    "This key came from the server you want to check. A compromised server would hand you its own key and its proofs would then 'verify'. Compare it with the key printed by ",
    h("code", {}, "auditseal init"), " or given to you by the log's operator before you rely on it.");
  async function showPin() {
    if (!pinInput.value.trim()) { pinInfo.replaceChildren(); return; }
    try {
      const k = await V.parseVerifierKey(pinInput.value);
      pinInfo.replaceChildren(h("p", { class: "muted" }, `Ed25519 key "${k.name}", key ID ${V.formatKeyId(k.keyId)} (matches the key).`));
    } catch (err) { pinInfo.replaceChildren(errorBox(err)); }
  }
  async function savePin() {
    const value = pinInput.value.trim();
    if (!value) { localStorage.removeItem(PINNED_KEY); updateStatus(); return showPin(); }
    try { await V.parseVerifierKey(value); } catch (err) { pinInfo.replaceChildren(errorBox(err)); return; }
    localStorage.setItem(PINNED_KEY, value);
    updateStatus();
    pinInfo.replaceChildren(h("p", { class: "muted" }, "Pinned."));
  }
  async function fetchPin() {
    try {
      const res = await api("/v1/verifier-key");
      pinInput.value = res.verifier_key || res.vkey || res.key || "";
      tofu.hidden = false;
      await showPin();
    } catch (err) { pinInfo.replaceChildren(errorBox(err)); }
  }
  render(h("h1", {}, "Settings"),
    h("div", { class: "panel" }, h("h2", { style: "margin-top:0" }, "API key"),
      h("p", { class: "muted" }, "Sent as Authorization: Bearer. Kept in this tab's sessionStorage only. Verification needs the auditor role."),
      keyInput, h("div", { class: "row", style: "margin-top:10px" },
        h("button", { id: "save-key", onclick: () => { sessionStorage.setItem(API_KEY, keyInput.value.trim()); updateStatus(); } }, "Save key"),
        h("button", { class: "secondary", onclick: () => { sessionStorage.removeItem(API_KEY); keyInput.value = ""; updateStatus(); } }, "Forget"))),
    h("div", { class: "panel" }, h("h2", { style: "margin-top:0" }, "Pinned verifier key"),
      h("p", { class: "muted" }, "Verification in the browser trusts only this key. Paste the verifier key the log operator gave you."),
      pinInput, h("div", { class: "row", style: "margin-top:10px" },
        h("button", { id: "save-pin", onclick: savePin }, "Pin this key"),
        h("button", { class: "secondary", id: "fetch-pin", onclick: fetchPin }, "Fetch from server…")),
      tofu, pinInfo));
  pinInput.addEventListener("input", () => { tofu.hidden = true; showPin(); });
  showPin();
}

// ---- router -------------------------------------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/search").split("/").filter(Boolean);
  const page = parts[0] || "search";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  updateStatus();
  if (page === "event" && /^\d+$/.test(parts[1] || "")) return eventPage(Number(parts[1]));
  return ({ timeline: timelinePage, alerts: alertsPage, integrity: integrityPage, settings: settingsPage }[page] || searchPage)(params);
}

window.addEventListener("hashchange", route);
route();
