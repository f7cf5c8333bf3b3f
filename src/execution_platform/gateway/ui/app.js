// The dashboard: one JSON document (/ui/api/overview) rendered into plain DOM and an SVG chart.
// The key stays in sessionStorage (this tab only) and goes out as a Bearer token; nothing is fetched
// from anywhere but this gateway.
"use strict";

const KEY = "ep-key";
const COLORS = ["#3659e3", "#e36b36", "#2aa876", "#b048c8", "#d9a400", "#1c9ac9", "#c62828", "#6b7385",
                "#7a5c2e", "#00897b", "#8e24aa", "#5d4037"];
const $ = (id) => document.getElementById(id);
let timer = null;
let loads = 0;

function usd(value) {
  const v = Number(value || 0);
  return "$" + (Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(4));
}
function num(value) { return Number(value || 0).toLocaleString("en-US"); }
function ms(value) { return value === null || value === undefined ? "–" : Number(value).toFixed(1) + " ms"; }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name === "style") node.setAttribute("style", value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function table(node, headers, rows) {
  node.replaceChildren();
  const head = el("tr", {});
  headers.forEach(([label, numeric]) => head.append(el("th", numeric ? { class: "num" } : {}, label)));
  node.append(el("thead", {}, head));
  const body = el("tbody", {});
  if (!rows.length) body.append(el("tr", {}, el("td", { class: "muted", colspan: String(headers.length) }, "nothing yet")));
  rows.forEach((cells) => {
    const tr = el("tr", {});
    cells.forEach((cell, i) => tr.append(el("td", headers[i][1] ? { class: "num" } : {}, cell)));
    body.append(tr);
  });
  node.append(body);
}

function days(since, until) {
  const out = [];
  const day = new Date(since + "T00:00:00Z");
  const end = new Date(until + "T00:00:00Z");
  while (day <= end && out.length < 400) {
    out.push(day.toISOString().slice(0, 10));
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return out;
}

function chart(doc) {
  const axis = days(doc.since, doc.until);
  const totals = new Map();
  const cells = new Map();
  for (const point of doc.series) {
    const group = point.group === null ? "(none)" : point.group;
    totals.set(group, (totals.get(group) || 0) + point.cost_usd);
    cells.set(point.day + "\u0000" + group, point.cost_usd);
  }
  const groups = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const perDay = axis.map((day) => groups.reduce((sum, g) => sum + (cells.get(day + "\u0000" + g) || 0), 0));
  const top = Math.max(...perDay, 0) || 1;
  const W = 900, H = 260, left = 64, bottom = 24, width = W - left - 8, height = H - bottom - 10;
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  for (let i = 0; i <= 4; i++) {
    const y = 10 + height - (height * i) / 4;
    add("line", { x1: left, x2: W - 8, y1: y, y2: y, stroke: "#e3e6ec" });
    add("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7385" }, usd((top * i) / 4));
  }
  const slot = width / Math.max(axis.length, 1);
  axis.forEach((day, i) => {
    let y = 10 + height;
    groups.forEach((group, g) => {
      const value = cells.get(day + "\u0000" + group) || 0;
      if (!value) return;
      const h = (value / top) * height;
      y -= h;
      const rect = add("rect", { x: left + i * slot + slot * 0.15, y, width: Math.max(1, slot * 0.7), height: h,
                                 fill: COLORS[g % COLORS.length], class: "seg", "data-day": day, "data-group": group,
                                 "data-usd": value });
      const title = document.createElementNS(svgNS, "title");
      title.textContent = `${day} · ${group}: ${usd(value)}`;
      rect.append(title);
    });
    if (axis.length <= 16 || i % Math.ceil(axis.length / 16) === 0) {
      add("text", { x: left + i * slot + slot / 2, y: H - 6, "text-anchor": "middle", "font-size": 11, fill: "#6b7385" },
          day.slice(5));
    }
  });
  const total = groups.reduce((sum, g) => sum + totals.get(g), 0);
  const box = $("chart");
  box.replaceChildren(svg);
  box.dataset.totalUsd = String(total);
  box.dataset.groups = String(groups.length);
  const legend = $("legend");
  legend.replaceChildren();
  groups.forEach((group, g) => legend.append(el("li", { style: `--swatch:${COLORS[g % COLORS.length]}`,
                                                        "data-group": group, "data-usd": String(totals.get(group)) },
                                                `${group} ${usd(totals.get(group))}`)));
}

function render(doc) {
  $("scope").textContent = doc.scope === "all" ? "all spend (master key)" : `spend of key ${doc.key_id}`;
  $("group-name").textContent = doc.group;
  $("since").value = doc.since;
  $("until").value = doc.until;
  const totals = doc.totals;
  $("total-spend").textContent = usd(totals.total_usd);
  $("total-spend").dataset.usd = String(totals.total_usd);
  $("total-requests").textContent = num(totals.requests);
  $("total-tokens").textContent = `${num(totals.input_tokens)} / ${num(totals.output_tokens)}`;
  chart(doc);
  const admin = doc.scope === "all";
  $("admin-only").hidden = !admin;
  $("top-key-card").hidden = !admin;
  $("top-team-card").hidden = !admin;
  const top = (name) => (doc.top[name] || []).map((g) => [g.group === null ? "(none)" : g.group, usd(g.cost_usd), num(g.requests)]);
  if (admin) {
    table($("top-key"), [["key"], ["spend", 1], ["requests", 1]], top("key"));
    table($("top-team"), [["team"], ["spend", 1], ["requests", 1]], top("team"));
    const live = doc.live;
    const errors = Object.entries(live.errors).map(([domain, n]) => `${domain}: ${n}`).join(", ") || "none";
    table($("live"), [["measure"], ["value", 1]], [
      ["requests/s", live.rps.toFixed(2)],
      ["latency p50 / p99", `${ms(live.latency_ms.p50)} / ${ms(live.latency_ms.p99)}`],
      ["overhead p50 / p99", `${ms(live.overhead_ms.p50)} / ${ms(live.overhead_ms.p99)}`],
      ["errors by fault domain", errors],
    ]);
    const rows = Object.entries(doc.providers.providers).map(([name, p]) =>
      [name, el("span", { class: "pill " + (p.configured ? "ok" : "error") }, p.configured ? "configured" : "no key")]);
    doc.providers.breakers.forEach((b) => rows.push([b.target, el("span", { class: "pill " + b.state }, b.state)]));
    table($("providers"), [["provider / target"], ["state"]], rows);
  }
  table($("top-session"), [["session"], ["spend", 1], ["requests", 1]], top("session"));
  table($("budgets"), [["budget"], ["period"], ["spent", 1], ["limit", 1], ["used", 1]], doc.budgets.map((b) => {
    const pct = b.used_pct === null ? 0 : b.used_pct;
    const bar = el("div", { class: "bar" + (pct >= 100 ? " over" : pct >= 80 ? " warn" : ""), title: `${pct}%` },
                   el("span", { style: `width:${Math.min(100, pct)}%` }));
    return [`${b.scope} ${b.name}`, b.period, usd(b.spent_usd), usd(b.limit_usd), el("div", {}, bar, `${pct.toFixed(1)}%`)];
  }));
  table($("recent"), [["time"], ["provider / model"], ["persona"], ["status"], ["latency", 1], ["tokens in/out", 1], ["cost", 1]],
        doc.recent.map((r) => [r.ts.replace("T", " ").slice(0, 19), `${r.provider}/${r.model}`, r.persona || "",
                               el("span", { class: "pill " + r.status }, r.error_type ? `${r.status} (${r.error_type})` : r.status),
                               ms(r.latency_ms), `${num(r.input_tokens)} / ${num(r.output_tokens)}`, usd(r.cost_usd)]));
}

async function load() {
  const params = new URLSearchParams({ group: $("group").value });
  if ($("since").value) params.set("since", $("since").value);
  if ($("until").value) params.set("until", $("until").value);
  const key = sessionStorage.getItem(KEY);
  const headers = key ? { authorization: "Bearer " + key } : {};
  const status = $("status");
  let response;
  try {
    response = await fetch("/ui/api/overview?" + params, { headers });
  } catch (err) {
    status.textContent = "gateway unreachable";
    status.className = "error-box";
    return;
  }
  if (response.status === 401) {
    status.textContent = "sign in with a gateway key";
    status.className = "error-box";
    return;
  }
  const doc = await response.json();
  if (!response.ok) {
    status.textContent = (doc.error && doc.error.message) || `error ${response.status}`;
    status.className = "error-box";
    return;
  }
  render(doc);
  loads += 1;
  status.textContent = "updated " + new Date().toLocaleTimeString();
  status.className = "muted";
  status.dataset.loads = String(loads);
}

function schedule() {
  if (timer) clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.setItem(KEY, "");  // an open (loopback, no master key) gateway needs none
  $("key").value = "";
  load();
  schedule();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); location.reload(); });
$("group").addEventListener("change", load);
$("since").addEventListener("change", load);
$("until").addEventListener("change", load);
$("refresh").addEventListener("click", load);
if (sessionStorage.getItem(KEY) === null) {
  $("status").textContent = "sign in with a gateway key (empty for an open gateway)";
} else {
  load();
  schedule();
}
