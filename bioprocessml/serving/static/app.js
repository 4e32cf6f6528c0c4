// The plant page: reads /ui/api/overview and draws it (plain SVG, no library, no CDN).
"use strict";

const NS = "http://www.w3.org/2000/svg";
const W = 760, H = 330, M = { left: 52, right: 20, top: 34, bottom: 38 };
let state = null;
let selected = null;

function el(tag, attrs = {}, text = null) {
  const node = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function fmt(x, digits = 2) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function ticks(lo, hi, n = 5) {
  const span = hi - lo || 1, step = Math.pow(10, Math.floor(Math.log10(span / n)));
  const nice = [1, 2, 5, 10].map(m => m * step).find(s => span / s <= n) || step * 10;
  const out = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-9; v += nice) out.push(v);
  return out;
}

function drawChart(batch, unit) {
  const svg = document.getElementById("chart");
  svg.replaceChildren();
  svg.removeAttribute("data-ready");
  if (!batch) { svg.appendChild(el("svg:text", { x: 40, y: 60, class: "tick" }, "no answers yet")); return; }
  const pts = batch.titer_now, assays = batch.assays, hv = batch.harvest;
  const xs = pts.map(p => p.time_h).concat(assays.map(a => a[0])).concat(hv ? [hv.time_h] : []);
  const ys = pts.flatMap(p => [p.lower, p.upper]).concat(assays.map(a => a[1]))
    .concat(hv ? [hv.lower, hv.upper] : []);
  const x0 = 0, x1 = Math.max(1, ...xs) * 1.08, y0 = 0, y1 = Math.max(1e-6, ...ys) * 1.1;
  const X = t => M.left + (t - x0) / (x1 - x0) * (W - M.left - M.right);
  const Y = v => H - M.bottom - (v - y0) / (y1 - y0) * (H - M.top - M.bottom);
  for (const v of ticks(y0, y1)) {
    svg.appendChild(el("svg:line", { x1: M.left, x2: W - M.right, y1: Y(v), y2: Y(v), class: "grid" }));
    svg.appendChild(el("svg:text", { x: M.left - 6, y: Y(v) + 4, "text-anchor": "end", class: "tick" }, fmt(v, 1)));
  }
  for (const t of ticks(x0, x1)) {
    svg.appendChild(el("svg:text", { x: X(t), y: H - M.bottom + 16, "text-anchor": "middle", class: "tick" }, fmt(t, 0)));
  }
  svg.appendChild(el("svg:line", { x1: M.left, x2: W - M.right, y1: Y(0), y2: Y(0), class: "axis" }));
  svg.appendChild(el("svg:line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "axis" }));
  svg.appendChild(el("svg:text", { x: W / 2, y: H - 4, "text-anchor": "middle", class: "tick" }, "batch time [h]"));
  svg.appendChild(el("svg:text", { x: 8, y: M.top - 10, class: "tick" }, `titer [${unit}]`));
  if (pts.length) {
    const upper = pts.map(p => `${X(p.time_h)},${Y(p.upper)}`);
    const lower = pts.slice().reverse().map(p => `${X(p.time_h)},${Y(p.lower)}`);
    svg.appendChild(el("svg:path", { d: `M${upper.join("L")}L${lower.join("L")}Z`, class: "band" }));
    svg.appendChild(el("svg:polyline", { points: pts.map(p => `${X(p.time_h)},${Y(p.mean)}`).join(" "), class: "mean" }));
  }
  for (const [t, y] of assays) {
    const dot = el("svg:circle", { cx: X(t), cy: Y(y), r: 4.5, class: "assay" });
    dot.appendChild(el("svg:title", {}, `lab assay at ${fmt(t, 1)} h: ${fmt(y)} ${unit}`));
    svg.appendChild(dot);
  }
  if (hv) {
    const hx = W - M.right - 6;
    svg.appendChild(el("svg:line", { x1: hx, x2: hx, y1: Y(hv.lower), y2: Y(hv.upper), class: "harvest" }));
    const dot = el("svg:circle", { cx: hx, cy: Y(hv.mean), r: 5, class: "harvest-dot" });
    dot.appendChild(el("svg:title", {}, `harvest forecast (at ${fmt(hv.time_h, 1)} h): ${fmt(hv.mean)} ${unit}`));
    svg.appendChild(dot);
  }
  const legend = [["mean", "titer now (served answers)"], ["band", "95 % interval"], ["assay", "lab assays"], ["harvest-dot", "harvest forecast"]];
  legend.forEach(([cls, label], i) => {
    const x = M.left + 60 + i * 165;
    if (cls === "mean") svg.appendChild(el("svg:line", { x1: x, x2: x + 12, y1: 8, y2: 8, class: "mean" }));
    else svg.appendChild(el("svg:rect", { x, y: 4, width: 12, height: 8, class: cls }));
    svg.appendChild(el("svg:text", { x: x + 16, y: 12, class: "tick" }, label));
  });
  svg.setAttribute("data-ready", "true");
  svg.setAttribute("data-batch", batch.batch_id);
}

function drawFacts(batch, unit) {
  const box = document.getElementById("batch-facts");
  box.replaceChildren();
  if (!batch) return;
  const last = batch.titer_now[batch.titer_now.length - 1];
  const dl = el("dl");
  const facts = [
    ["batch", `${batch.batch_id} (${batch.status})`],
    ["titer now", last ? `${fmt(last.mean)} ${unit} [${fmt(last.lower)}, ${fmt(last.upper)}] at ${fmt(last.time_h, 1)} h` : "–"],
    ["harvest forecast", batch.harvest ? `${fmt(batch.harvest.mean)} ${unit} [${fmt(batch.harvest.lower)}, ${fmt(batch.harvest.upper)}]` : "–"],
    ["lab assays", `${batch.assays.length}` + (batch.coverage === null ? "" : `, ${fmt(100 * batch.coverage, 0)} % inside the band`)],
    ["model versions", batch.versions.join(", ") || "–"],
  ];
  for (const [k, v] of facts) { dl.appendChild(el("dt", {}, k)); dl.appendChild(el("dd", {}, v)); }
  box.appendChild(dl);
}

function drawModels(models) {
  const table = document.getElementById("models");
  table.replaceChildren(el("tr", {}, null));
  table.firstChild.append(el("th", {}, "task"), el("th", {}, "champion"), el("th", {}, "challenger"), el("th", {}, "stage"));
  for (const [task, m] of Object.entries(models)) {
    const row = el("tr", { "data-task": task });
    const stage = el("span", { class: `stage ${m.stage}` }, m.stage);
    row.append(el("td", {}, task), el("td", {}, m.champion ? `v${m.champion}` : (m.reason || "none")),
      el("td", {}, m.challenger ? `v${m.challenger}` : "–"), el("td"));
    row.lastChild.appendChild(stage);
    table.appendChild(row);
  }
}

function drawWhy(why, unit) {
  const box = document.getElementById("why");
  box.replaceChildren();
  if (!why) { box.appendChild(el("p", { class: "muted" }, "no request answered yet")); return; }
  for (const [field, label] of [["titer_now", "titer now"], ["titer_at_harvest", "harvest forecast"]]) {
    const t = why[field];
    if (!t) continue;
    box.appendChild(el("p", {}, `${label} of ${why.batch_id} at ${fmt(why.time_h, 1)} h (v${t.version}, ${t.route}): ` +
      (t.error ? t.error : `${fmt(t.prediction)} ${unit} = ${fmt(t.base_value)} (average batch) + the shares below`)));
    const table = el("table", { class: "bars", "data-field": field });
    const biggest = Math.max(1e-9, ...t.top.map(a => Math.abs(a.contribution)));
    for (const a of t.top) {
      const row = el("tr", { class: "attribution" });
      const bar = el("div", { class: `bar ${a.contribution >= 0 ? "pos" : "neg"}`, style: `width:${Math.round(120 * Math.abs(a.contribution) / biggest)}px` });
      row.append(el("td", {}, `${a.column} [${a.unit}]`), el("td", { class: "muted" }, a.feature),
        el("td", { class: "val" }, `${a.contribution >= 0 ? "+" : ""}${fmt(a.contribution, 3)}`), el("td"));
      row.lastChild.appendChild(bar);
      table.appendChild(row);
    }
    box.appendChild(table);
  }
}

function drawList(id, items, render) {
  const list = document.getElementById(id);
  list.replaceChildren();
  if (!items.length) { list.appendChild(el("li", { class: "muted" }, "none")); return; }
  for (const item of items) list.appendChild(render(item));
}

function eventItem(tag, cls, title, at, reasons) {
  const li = el("li");
  li.append(el("span", { class: `tag ${cls}` }, tag), document.createTextNode(` ${title} `), el("span", { class: "when" }, when(at)));
  if (reasons && reasons.length) li.appendChild(el("div", { class: "muted" }, reasons.join("; ")));
  return li;
}

function drawBatches() {
  const tabs = document.getElementById("batches");
  tabs.replaceChildren();
  for (const b of state.batches) {
    const button = el("button", { class: `${b.status}${b.batch_id === selected ? " on" : ""}` }, `${b.batch_id}${b.status === "running" ? " ●" : ""}`);
    button.onclick = () => { selected = b.batch_id; render(); };
    tabs.appendChild(button);
  }
}

function render() {
  const unit = state.target.unit;
  if (!state.batches.some(b => b.batch_id === selected)) selected = state.batches.length ? state.batches[0].batch_id : null;
  const batch = state.batches.find(b => b.batch_id === selected) || null;
  drawBatches();
  drawChart(batch, unit);
  drawFacts(batch, unit);
  drawModels(state.models);
  drawWhy(state.explanation, unit);
  drawList("alarms", state.alarms, a => eventItem(a.kind, "alarm", a.batch_id, a.at, a.reasons));
  drawList("quarantines", state.quarantines, q => eventItem("quarantined", "quarantined", q.file, q.at, q.reasons));
  drawList("rollouts", state.rollouts, r => eventItem(r.stage, r.stage, `${r.task} v${r.challenger_version}`, r.at, [r.reason]));
  const nav = document.getElementById("links");
  nav.replaceChildren(...Object.entries(state.links).map(([name, url]) => el("a", { href: url, target: "_blank" }, name)));
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function refresh() {
  try {
    const response = await fetch("/ui/api/overview");
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    state = await response.json();
    render();
  } catch (err) {
    document.getElementById("updated").textContent = `update failed: ${err.message}`;
  }
}

refresh();
setInterval(refresh, 10000);
