// Stacked bar chart of events per hour by category, as inline SVG (no chart library:
// the UI ships without dependencies). Input: [{hour: ISO string, category, count}].

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f5fbf", "#e07b00", "#17803d", "#b42318", "#7a4cc2", "#0e8a8a",
  "#c2410c", "#5b6576", "#a21caf", "#4d7c0f", "#0369a1", "#9f1239"];

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

// Axis maximum = 4 gridline steps of 1, 2 or 5 x 10^n: whole, readable numbers.
function niceMax(n) {
  const step = Math.max(1, n / 4);
  const p = 10 ** Math.floor(Math.log10(step));
  return 4 * [1, 2, 5, 10].map((m) => m * p).find((m) => m >= step);
}

export function timelineChart(rows) {
  const hours = [...new Set(rows.map((r) => r.hour))].sort();
  // The x axis is time: at least the 48 hours up to the newest bucket, gaps included,
  // so bar widths mean the same thing whether there is one busy hour or many.
  const last = Date.parse(hours[hours.length - 1]);
  const first = Math.max(Math.min(Date.parse(hours[0]), last - 47 * 3600e3), last - 24 * 31 * 3600e3);
  // (capped at 31 days of hourly bars; the API caps hours at 366 days)
  const slots = [];
  for (let t = first; t <= last; t += 3600e3) slots.push(t);
  const categories = [...new Set(rows.map((r) => r.category))].sort();
  const counts = new Map(); // hour ms -> category -> count
  for (const r of rows) {
    const t = Date.parse(r.hour);
    if (!counts.has(t)) counts.set(t, new Map());
    counts.get(t).set(r.category, (counts.get(t).get(r.category) || 0) + r.count);
  }
  const totals = slots.map((t) => [...(counts.get(t) || new Map()).values()].reduce((a, b) => a + b, 0));
  const ymax = niceMax(Math.max(...totals));
  const W = 1100, H = 340, L = 48, R = 12, T = 12, B = 46;
  const pw = W - L - R, ph = H - T - B, bw = pw / slots.length;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "events per hour by category" });
  for (let i = 0; i <= 4; i++) {
    const y = T + ph - (ph * i) / 4;
    svg.append(s("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#e5e8ec" }));
    svg.append(s("text", { x: L - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6576" }, String((ymax * i) / 4)));
  }
  const labelEvery = Math.max(1, Math.ceil(slots.length / 12));
  let lastDate = "";
  slots.forEach((t, i) => {
    let y = T + ph;
    const x = L + i * bw + Math.min(2, bw * 0.15);
    categories.forEach((c, ci) => {
      const n = counts.get(t)?.get(c) || 0;
      if (!n) return;
      const bh = (ph * n) / ymax;
      y -= bh;
      const rect = s("rect", { x, y, width: Math.max(1, bw - 2 * Math.min(2, bw * 0.15)), height: bh, fill: PALETTE[ci % PALETTE.length] });
      rect.append(s("title", {}, `${new Date(t).toISOString().slice(0, 13)}:00Z  ${c}: ${n}`));
      svg.append(rect);
    });
    if (i % labelEvery === 0) {
      const d = new Date(t).toISOString();
      svg.append(s("text", { x: L + i * bw + bw / 2, y: H - B + 16, "text-anchor": "middle", "font-size": 11, fill: "#5b6576" }, d.slice(11, 13) + ":00"));
      if (d.slice(0, 10) !== lastDate) { // the date only where it changes
        lastDate = d.slice(0, 10);
        svg.append(s("text", { x: L + i * bw + bw / 2, y: H - B + 31, "text-anchor": "middle", "font-size": 11, fill: "#1d2430" }, d.slice(0, 10)));
      }
    }
  });
  svg.append(s("line", { x1: L, x2: W - R, y1: T + ph, y2: T + ph, stroke: "#9aa3b2" }));
  const legend = document.createElement("div");
  legend.className = "legend";
  categories.forEach((c, ci) => {
    const item = document.createElement("span");
    item.style.setProperty("--c", PALETTE[ci % PALETTE.length]);
    const total = rows.filter((r) => r.category === c).reduce((a, r) => a + r.count, 0);
    item.textContent = `${c} (${total})`;
    legend.append(item);
  });
  const wrap = document.createElement("div");
  wrap.append(svg, legend);
  return wrap;
}
