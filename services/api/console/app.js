// The Inventory console: a page per view, over the public API only
// (/api/v1/...). No framework; uPlot (vendored) draws the sparklines.
"use strict";

const STATES = ["pending", "active", "scheduled", "completed", "failed", "dead", "cancelled"];
const PRIORITIES = ["high", "normal", "low"];
const HISTORY = 90; // samples kept for sparklines

// ---- helpers -------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const fmt = new Intl.NumberFormat("en");
function num(n) { return n === null || n === undefined ? "–" : fmt.format(n); }
function secs(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
function bytes(b) {
  if (b === null || b === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function when(t) { return t ? new Date(t).toLocaleString() : "–"; }
function state(s) { return h("span", { class: `state ${s}`, "data-state": s }, s); }

class ApiError extends Error {}

// The API token, if the API asks for one: kept in session storage (this tab
// only, gone when it closes) and sent as a bearer token with every request.
const TOKEN_KEY = "inventory.token";
function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign({}, opts.headers || {});
  if (token()) opts.headers["Authorization"] = `Bearer ${token()}`;
  const resp = await fetch(path, opts);
  let body = null;
  try { body = await resp.json(); } catch (_) { /* not json */ }
  if (!resp.ok) {
    const msg = body && body.error ? `${body.error.code}: ${body.error.message}` : `${resp.status} ${resp.statusText}`;
    throw new ApiError(msg);
  }
  return body;
}

function table(headers, rows, empty) {
  if (!rows.length) return h("div", { class: "empty" }, empty || "nothing here");
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { class: x.num ? "num" : "" }, x.label || x)))),
    h("tbody", {}, rows));
}

function kv(obj, skip) {
  const rows = Object.entries(obj)
    .filter(([k]) => !(skip || []).includes(k))
    .map(([k, v]) => h("tr", { "data-field": k }, h("th", {}, k),
      h("td", {}, typeof v === "object" && v !== null ? h("code", {}, JSON.stringify(v)) : String(v ?? "–"))));
  return h("table", {}, h("tbody", {}, rows));
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// The pipeline's state, polled while a page that shows it is open, with a
// short history for the sparklines.
const live = {
  stats: null,
  series: new Map(), // name -> [[t...], [v...]]
  record(name, v) {
    if (v === null || v === undefined) return;
    let s = this.series.get(name);
    if (!s) { s = [[], []]; this.series.set(name, s); }
    s[0].push(Date.now() / 1000); s[1].push(v);
    if (s[0].length > HISTORY) { s[0].shift(); s[1].shift(); }
  },
  async refresh() {
    const stats = await api("/api/v1/stats");
    this.stats = stats;
    for (const p of stats.projections || []) {
      this.record(`lag-messages:${p.projection}`, p.lag_messages);
      this.record(`lag-seconds:${p.projection}`, p.lag_seconds);
    }
    for (const s of stats.streams || []) this.record(`messages:${s.stream}`, s.messages);
    document.getElementById("status").textContent =
      stats.sampled_at ? `sampled ${new Date(stats.sampled_at).toLocaleTimeString()}` : "";
    return stats;
  },
};

let kindsCache = null;
async function kinds() {
  if (!kindsCache) kindsCache = (await api("/api/v1/kinds")).items;
  return kindsCache;
}
async function kindOf(source, plural) {
  return (await kinds()).find((k) => k.source === source && k.plural === plural);
}

function spark(name) {
  const el = h("div", { class: "spark", "data-spark": name });
  const data = live.series.get(name);
  if (!data || data[0].length < 2) return el;
  requestAnimationFrame(() => {
    const width = el.clientWidth || 200;
    new uPlot({
      width, height: 40, legend: { show: false }, cursor: { show: false },
      scales: { x: { time: true } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: "#2457c5", fill: "rgba(36,87,197,.1)", width: 1.5 }],
    }, data, el);
  });
  return el;
}

function card(label, value, stat, opts) {
  return h("div", { class: `card ${(opts && opts.tone) || ""}` },
    h("div", { class: "label" }, label),
    h("div", { class: "value", "data-stat": stat, "data-value": opts && opts.raw !== undefined ? opts.raw : "" }, value),
    opts && opts.spark ? spark(opts.spark) : null);
}

// ---- pages ----------------------------------------------------------------

async function overview(root) {
  const stats = await live.refresh();
  const events = (stats.streams || []).find((s) => s.stream.endsWith("_EVENTS"));
  const cards = [];
  if (events) {
    cards.push(card("Events in the stream", num(events.messages), "stream-messages", { raw: events.messages, spark: `messages:${events.stream}` }));
    cards.push(card("Last event sequence", num(events.last_seq), "stream-last-seq", { raw: events.last_seq }));
    cards.push(card("Stream size", bytes(events.bytes), "stream-bytes", { raw: events.bytes }));
  }
  for (const p of stats.projections || []) {
    const name = p.projection;
    cards.push(card(`Projection ${name}: checkpoint`, num(p.checkpoint), `checkpoint:${name}`, { raw: p.checkpoint }));
    cards.push(card(`Projection ${name}: lag (events)`, num(p.lag_messages), `lag-messages:${name}`,
      { raw: p.lag_messages, spark: `lag-messages:${name}`, tone: p.lag_messages ? "bad" : "ok" }));
    cards.push(card(`Projection ${name}: lag (age)`, secs(p.lag_seconds), `lag-seconds:${name}`,
      { raw: p.lag_seconds, spark: `lag-seconds:${name}`, tone: p.lag_seconds > 60 ? "bad" : "" }));
    cards.push(card(`Projection ${name}: dead letters`, num(p.dead_letters), `dead-letters:${name}`,
      { raw: p.dead_letters, tone: p.dead_letters ? "bad" : "" }));
  }
  const byState = {};
  for (const t of stats.tasks || []) byState[t.state] = (byState[t.state] || 0) + t.count;
  for (const s of ["pending", "active", "failed", "dead"]) {
    cards.push(card(`Tasks ${s}`, num(byState[s] || 0), `tasks:${s}`, { raw: byState[s] || 0, tone: (s === "dead" || s === "failed") && byState[s] ? "bad" : "" }));
  }
  const consumers = (stats.streams || []).flatMap((s) => s.consumers.map((c) =>
    h("tr", { "data-consumer": `${s.stream}/${c.name}` },
      h("td", {}, s.stream), h("td", {}, c.name),
      h("td", { class: "num", "data-col": "pending" }, num(c.pending)),
      h("td", { class: "num", "data-col": "ack_pending" }, num(c.ack_pending)),
      h("td", { class: "num", "data-col": "redelivered" }, num(c.redelivered)))));
  const failing = (stats.failing_scans || []).map((f) =>
    h("tr", { "data-failing-scan": f.scan_id },
      h("td", {}, `${f.source} ${f.kind}`), h("td", {}, f.account_id), h("td", {}, f.region || "–"),
      h("td", {}, when(f.finished_at)), h("td", { class: "error" }, f.error || "")));
  root.replaceChildren(
    h("h1", {}, "Pipeline"),
    h("div", { class: "cards" }, cards),
    h("h2", {}, "Streams"),
    table(["Stream", { label: "Messages", num: 1 }, { label: "Bytes", num: 1 }, { label: "First", num: 1 }, { label: "Last", num: 1 }, { label: "Ephemeral readers", num: 1 }],
      (stats.streams || []).map((s) => h("tr", { "data-stream": s.stream }, h("td", {}, s.stream),
        h("td", { class: "num" }, num(s.messages)), h("td", { class: "num" }, bytes(s.bytes)),
        h("td", { class: "num" }, num(s.first_seq)), h("td", { class: "num" }, num(s.last_seq)),
        h("td", { class: "num" }, num(s.ephemeral_consumers))))),
    h("h2", {}, "Durable consumers"),
    table(["Stream", "Consumer", { label: "Pending", num: 1 }, { label: "Ack pending", num: 1 }, { label: "Redelivered", num: 1 }], consumers, "no consumers"),
    h("h2", {}, "Failing scans"),
    h("div", { "data-count": "failing-scans", "data-value": failing.length },
      table(["Kind", "Account", "Region", "Failed at", "Error"], failing, "no scope's last scan failed")),
  );
}

async function tasks(root, params) {
  const stats = await live.refresh();
  const counts = {};
  for (const t of stats.tasks || []) counts[`${t.state}:${t.priority}`] = t.count;
  const filter = { state: params.get("state") || "", source: params.get("source") || "", kind: params.get("kind") || "" };
  const list = await api(`/api/v1/tasks${query({ ...filter, limit: 100 })}`);
  const set = (k) => (e) => {
    const next = new URLSearchParams({ ...filter, [k]: e.target.value });
    for (const [key, v] of [...next]) if (!v) next.delete(key);
    location.hash = `#/tasks${next.toString() ? "?" + next : ""}`;
  };
  root.replaceChildren(
    h("h1", {}, "Tasks"),
    h("h2", {}, "By state and priority"),
    table(["State", ...PRIORITIES.map((p) => ({ label: p, num: 1 })), { label: "all", num: 1 }],
      STATES.map((s) => h("tr", {}, h("td", {}, state(s)),
        PRIORITIES.map((p) => h("td", { class: "num", "data-task-count": `${s}:${p}` }, num(counts[`${s}:${p}`] || 0))),
        h("td", { class: "num", "data-task-count": s }, num(PRIORITIES.reduce((a, p) => a + (counts[`${s}:${p}`] || 0), 0)))))),
    h("h2", {}, "Tasks"),
    h("div", { class: "filters" },
      h("label", {}, "state", h("select", { onchange: set("state"), "data-filter": "state" },
        h("option", { value: "" }, "any"), STATES.map((s) => h("option", { value: s, selected: s === filter.state }, s)))),
      h("label", {}, "source", h("input", { value: filter.source, placeholder: "aws", onchange: set("source") })),
      h("label", {}, "kind", h("input", { value: filter.kind, placeholder: "vpcs", onchange: set("kind") }))),
    table(["Task", "Source", "Kind", "Priority", "State", "Attempts", "Created", "Progress"],
      list.items.map((t) => h("tr", { "data-task": t.id },
        h("td", {}, h("a", { href: `#/tasks/${encodeURIComponent(t.id)}` }, t.id)),
        h("td", {}, t.source), h("td", {}, t.kind), h("td", {}, t.priority), h("td", {}, state(t.state)),
        h("td", { class: "num" }, t.attempts), h("td", {}, when(t.created_at)),
        h("td", {}, progress(t.progress)))), "no tasks"),
  );
}

function progress(p) {
  if (!p || !p.scopes_total) return h("span", { class: "muted" }, "–");
  const pct = Math.round((100 * (p.scopes_done || 0)) / p.scopes_total);
  return h("div", { title: `${p.scopes_done}/${p.scopes_total} scopes, ${p.resources_seen || 0} resources` },
    h("div", { class: "progress" }, h("div", { style: `width:${pct}%` })),
    h("span", { class: "muted" }, `${p.scopes_done || 0}/${p.scopes_total} scopes, ${num(p.resources_seen || 0)} resources`));
}

async function task(root, params, id) {
  const t = await api(`/api/v1/tasks/${encodeURIComponent(id)}`);
  const message = h("div", { class: "muted", "data-message": "" });
  const act = (verb, method) => async (e) => {
    e.target.disabled = true;
    try {
      await api(`/api/v1/tasks/${encodeURIComponent(id)}${verb ? "/" + verb : ""}`, { method });
      message.textContent = `${verb || "delete"}: done`;
      if (!verb) { location.hash = "#/tasks"; return; }
      await task(root, params, id);
    } catch (err) {
      message.textContent = err.message;
      message.className = "error";
      e.target.disabled = false;
    }
  };
  const finished = ["completed", "failed", "dead", "cancelled"].includes(t.state);
  root.replaceChildren(
    h("h1", {}, `Task ${t.id} `, state(t.state)),
    h("div", { class: "filters" },
      h("button", { class: "danger", "data-action": "cancel", disabled: finished, onclick: act("cancel", "POST") }, "Cancel"),
      h("button", { "data-action": "retry", disabled: !finished, onclick: act("retry", "POST") }, "Retry"),
      h("button", { class: "secondary", "data-action": "delete", disabled: t.state === "active", onclick: act("", "DELETE") }, "Delete"),
      message),
    h("h2", {}, "Progress"), progress(t.progress),
    h("h2", {}, "Task"), kv(t, ["failures", "progress"]),
    t.failures && t.failures.length ? [h("h2", {}, "Failed scopes"), table(Object.keys(t.failures[0]),
      t.failures.map((f) => h("tr", {}, Object.values(f).map((v) => h("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v))))))] : null,
  );
}

async function schedules(root) {
  const list = await api("/api/v1/schedules");
  root.replaceChildren(
    h("h1", {}, "Schedules"),
    table(["Name", "Request", "Cadence", "Priority"],
      list.items.map((s) => h("tr", { "data-schedule": s.name },
        h("td", {}, s.name), h("td", {}, h("code", {}, JSON.stringify(s.request))),
        h("td", {}, s.every ? `every ${s.every}` : s.cron ? `cron ${s.cron}` : "–"),
        h("td", {}, s.priority || "normal"))), "no schedules"),
  );
}

async function inventory(root, params) {
  const stats = await live.refresh();
  const all = await kinds();
  const f = { source: params.get("source") || "", account_id: params.get("account_id") || "", region: params.get("region") || "" };
  const rows = (stats.resources || []).filter((r) =>
    (!f.source || r.source === f.source) && (!f.account_id || r.account_id === f.account_id) && (!f.region || r.region === f.region));
  const sum = (key) => {
    const m = new Map();
    for (const r of rows) m.set(key(r), (m.get(key(r)) || 0) + r.live);
    return [...m.entries()].sort((a, b) => b[1] - a[1]);
  };
  const options = (key) => [...new Set((stats.resources || []).map(key))].sort();
  const set = (k) => (e) => {
    const next = new URLSearchParams({ ...f, [k]: e.target.value });
    for (const [key, v] of [...next]) if (!v) next.delete(key);
    location.hash = `#/inventory${next.toString() ? "?" + next : ""}`;
  };
  const select = (k, values) => h("label", {}, k, h("select", { onchange: set(k), "data-filter": k },
    h("option", { value: "" }, "any"), values.map((v) => h("option", { value: v, selected: v === f[k] }, v || "(none)"))));
  const plural = (source, kind) => (all.find((k) => k.source === source && k.kind === kind) || {}).plural;
  const total = rows.reduce((a, r) => a + r.live, 0);
  root.replaceChildren(
    h("h1", {}, "Inventory"),
    h("div", { class: "filters" }, select("source", options((r) => r.source)), select("account_id", options((r) => r.account_id)), select("region", options((r) => r.region))),
    h("div", { class: "cards" }, card("Live resources", num(total), "resources-total", { raw: total })),
    h("h2", {}, "By kind"),
    table(["Kind", { label: "Live", num: 1 }],
      sum((r) => `${r.source}/${r.kind}`).map(([k, n]) => {
        const [source, kind] = k.split("/");
        const p = plural(source, kind);
        return h("tr", { "data-kind": k },
          h("td", {}, p ? h("a", { href: `#/inventory/${source}/${p}${query({ account_id: f.account_id, region: f.region })}` }, `${source} ${kind}`) : k),
          h("td", { class: "num", "data-live": n }, num(n)));
      }), "no resources yet"),
    h("div", { class: "grid2" },
      h("div", {}, h("h2", {}, "By account"), table(["Account", { label: "Live", num: 1 }],
        sum((r) => r.account_id).map(([a, n]) => h("tr", { "data-account": a }, h("td", {}, a), h("td", { class: "num" }, num(n)))))),
      h("div", {}, h("h2", {}, "By region"), table(["Region", { label: "Live", num: 1 }],
        sum((r) => r.region).map(([a, n]) => h("tr", { "data-region": a }, h("td", {}, a || "(account-wide)"), h("td", { class: "num" }, num(n))))))),
  );
}

async function resources(root, params, source, plural) {
  const kind = await kindOf(source, plural);
  if (!kind) throw new ApiError(`no kind ${source} ${plural}`);
  const filters = {};
  for (const [k, v] of params) if (k !== "cursor") filters[k] = v;
  const page = await api(`/api/v1/${source}/${plural}${query({ ...filters, limit: 100, cursor: params.get("cursor") })}`);
  const cols = [kind.id_column, "account_id", ...(kind.regional ? ["region"] : []), ...kind.columns.filter((c) => c !== kind.id_column).slice(0, 5)];
  const free = h("input", { placeholder: "column=value", "data-filter": "free" });
  const apply = () => {
    const next = new URLSearchParams(filters);
    const [k, v] = free.value.split("=");
    if (k && v !== undefined) next.set(k.trim(), v.trim());
    location.hash = `#/inventory/${source}/${plural}?${next}`;
  };
  const clear = () => { location.hash = `#/inventory/${source}/${plural}`; };
  root.replaceChildren(
    h("h1", {}, `${source} ${plural}`),
    h("div", { class: "filters" },
      Object.entries(filters).map(([k, v]) => h("code", {}, `${k}=${v}`)),
      free, h("button", { onclick: apply }, "Filter"), h("button", { class: "secondary", onclick: clear }, "Clear"),
      h("span", { class: "muted" }, `columns: ${["account_id", "region", ...kind.columns].join(", ")}`)),
    h("div", { "data-count": "resources", "data-value": page.items.length },
      table(cols, page.items.map((r) => h("tr", { "data-resource": r[kind.id_column] },
        cols.map((c, i) => h("td", {}, i === 0
          ? h("a", { href: `#/resource/${source}/${plural}/${encodeURIComponent(r[c])}${query({ account_id: r.account_id, region: kind.regional ? r.region : "" })}` }, r[c])
          : typeof r[c] === "object" && r[c] !== null ? JSON.stringify(r[c]) : String(r[c] ?? "–"))))), "no resources match")),
    page.next ? h("p", {}, h("a", { href: `#/inventory/${source}/${plural}?${new URLSearchParams({ ...filters, cursor: page.next })}` }, "next page →")) : null,
  );
}

async function resource(root, params, source, plural, id) {
  const kind = await kindOf(source, plural);
  const scope = { account_id: params.get("account_id") || "", region: params.get("region") || "" };
  const base = `/api/v1/${source}/${plural}/${encodeURIComponent(id)}`;
  const item = await api(`${base}${query({ ...scope, include_deleted: "true" })}`);
  const history = await api(`${base}/history${query({ ...scope, limit: 50 })}`);
  const diffBox = h("div", { "data-diff": "" });
  const showDiff = async (from, to) => {
    try {
      const d = await api(`${base}/diff${query({ ...scope, from, to })}`);
      diffBox.replaceChildren(h("h2", {}, `Changes ${from ?? "∅"} → ${to}`),
        table(["Path", "Old", "New"], d.changes.map((c) => h("tr", {},
          h("td", {}, h("code", {}, c.path)), h("td", {}, h("code", {}, JSON.stringify(c.old))), h("td", {}, h("code", {}, JSON.stringify(c.new))))), "no change"));
    } catch (err) { diffBox.replaceChildren(h("p", { class: "error" }, err.message)); }
  };
  const versions = history.items;
  const links = h("div", {});
  const { raw, ...fields } = item;
  root.replaceChildren(
    h("h1", {}, `${source} ${kind ? kind.kind : plural} ${id}`),
    h("div", { class: "grid2" },
      h("div", {}, h("h2", {}, "Fields"), kv(fields)),
      h("div", {}, h("h2", {}, "Raw payload"), h("pre", { "data-raw": "" }, JSON.stringify(raw, null, 2)))),
    h("h2", {}, "Links"), links,
    h("h2", {}, "History"),
    h("div", { "data-count": "versions", "data-value": versions.length },
      table(["Seq", "Change", "Valid from", "Valid to", ""], versions.map((v, i) => h("tr", { "data-version": v.seq },
        h("td", { class: "num" }, v.seq), h("td", {}, state(v.change)), h("td", {}, when(v.valid_from)), h("td", {}, when(v.valid_to)),
        h("td", {}, h("button", { class: "secondary", onclick: () => showDiff(versions[i + 1] ? versions[i + 1].seq : undefined, v.seq) }, "diff")))), "no versions")),
    diffBox,
  );
  for (const l of (kind && kind.links) || []) {
    try {
      const nested = await api(`${base}/${l.plural}${query({ ...scope, limit: 20 })}`);
      const other = await kindOf(l.source, l.plural);
      links.append(h("div", { "data-link": l.plural }, h("strong", {}, `${l.plural}: `),
        nested.items.length ? nested.items.map((n, i) => [i ? ", " : "", h("a", { href: `#/resource/${l.source}/${l.plural}/${encodeURIComponent(n[other.id_column])}` }, n[other.id_column])])
          : h("span", { class: "muted" }, "none")));
    } catch (err) {
      links.append(h("div", { class: "muted" }, `${l.plural}: ${err.message}`));
    }
  }
}

async function changes(root, params) {
  const f = { source: params.get("source") || "", kind: params.get("kind") || "", change: params.get("change") || "" };
  // From the start given, else the last hour; then live.
  let since = params.get("since") || new Date(Date.now() - 3600e3).toISOString();
  const body = h("tbody", {});
  const counter = h("span", { class: "muted", "data-count": "changes", "data-value": 0 }, "0 changes");
  let n = 0;
  const set = (k) => (e) => {
    const next = new URLSearchParams({ ...f, [k]: e.target.value, since: params.get("since") || "" });
    for (const [key, v] of [...next]) if (!v) next.delete(key);
    location.hash = `#/changes${next.toString() ? "?" + next : ""}`;
  };
  root.replaceChildren(
    h("h1", {}, "Changes ", counter),
    h("div", { class: "filters" },
      h("label", {}, "source", h("input", { value: f.source, onchange: set("source") })),
      h("label", {}, "kind", h("input", { value: f.kind, onchange: set("kind") })),
      h("label", {}, "change", h("select", { onchange: set("change") }, h("option", { value: "" }, "any"),
        ["created", "updated", "deleted"].map((c) => h("option", { value: c, selected: c === f.change }, c))))),
    h("table", {}, h("thead", {}, h("tr", {}, ["Seq", "Change", "Kind", "Id", "Account", "Region", "At"].map((x) => h("th", {}, x)))), body),
  );
  const poll = async () => {
    for (;;) {
      const page = await api(`/api/v1/changes${query({ ...f, since, limit: 500 })}`);
      for (const c of page.items) {
        const plural = ((await kinds()).find((k) => k.source === c.source && k.kind === c.kind) || {}).plural;
        body.prepend(h("tr", { "data-change": c.seq },
          h("td", { class: "num" }, c.seq), h("td", {}, state(c.change)), h("td", {}, `${c.source} ${c.kind}`),
          h("td", {}, plural ? h("a", { href: `#/resource/${c.source}/${plural}/${encodeURIComponent(c.id)}${query({ account_id: c.account_id, region: c.region || "" })}` }, c.id) : c.id),
          h("td", {}, c.account_id), h("td", {}, c.region || "–"), h("td", {}, when(c.at))));
        n++;
      }
      counter.textContent = `${num(n)} changes`;
      counter.setAttribute("data-value", n);
      since = page.next;
      if (page.items.length < 500) return;
    }
  };
  await poll();
  return poll;
}

// ---- router ---------------------------------------------------------------

const routes = [
  [/^\/overview$/, overview, 2000],
  [/^\/tasks$/, tasks, 3000],
  [/^\/tasks\/([^/]+)$/, task, 2000],
  [/^\/schedules$/, schedules, 0],
  [/^\/inventory$/, inventory, 5000],
  [/^\/inventory\/([^/]+)\/([^/]+)$/, resources, 0],
  [/^\/resource\/([^/]+)\/([^/]+)\/([^/]+)$/, resource, 0],
  [/^\/changes$/, changes, 2000],
];

let timer = null;
let generation = 0;

async function render() {
  clearTimeout(timer);
  const mine = ++generation;
  const hash = location.hash.replace(/^#/, "") || "/overview";
  const [path, qs] = hash.split("?");
  const params = new URLSearchParams(qs || "");
  const root = document.getElementById("page");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", path.startsWith(`/${a.dataset.nav}`));
  const match = routes.map(([re, page, every]) => [path.match(re), page, every]).find(([m]) => m);
  if (!match) { root.replaceChildren(h("p", { class: "error" }, `no page ${path}`)); return; }
  const [m, page, every] = match;
  const args = m.slice(1).map(decodeURIComponent);
  const run = async () => {
    try {
      const again = await page(root, params, ...args);
      root.dataset.loaded = path;
      return again;
    } catch (err) {
      root.replaceChildren(h("p", { class: "error", "data-error": "" }, err.message));
      return null;
    }
  };
  const again = await run();
  if (!every) return;
  const tick = async () => {
    if (mine !== generation) return;
    try {
      if (typeof again === "function") await again(); else await run();
    } catch (err) {
      document.getElementById("status").textContent = `refresh failed: ${err.message}`;
    }
    if (mine === generation) timer = setTimeout(tick, every);
  };
  timer = setTimeout(tick, every);
}

window.addEventListener("hashchange", render);
document.getElementById("token").value = token();
document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const value = document.getElementById("token").value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  render();
});
render();
