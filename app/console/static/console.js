// Labelstream console: plain JavaScript, no framework, no external assets.
// Each page fills <main> from the JSON endpoints under /console/api/. Data is inserted with
// textContent (never as HTML); the only HTML inserted is the SVG the server draws (app/console/charts.py).
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const main = $("#main");

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}

function svg(markup) { const span = h("span"); span.innerHTML = markup; return span; }  // server-drawn SVG only

function msg(text, ok = false) {
  const m = $("#msg");
  m.textContent = text || "";
  m.hidden = !text;
  m.className = ok ? "ok" : "";
}

async function api(path, opts = {}) {
  const init = { credentials: "same-origin", ...opts };
  if (opts.json !== undefined) {
    init.method = init.method || "POST";
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(opts.json);
  }
  const r = await fetch(path, init);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) { location.href = "/console/login"; throw new Error("not logged in"); }
  if (!r.ok) {
    const text = (body && body.message) || `${r.status} ${r.statusText}`;
    msg(text);
    const err = new Error(text); err.status = r.status; throw err;
  }
  return body;
}

const fmt = (x) => (typeof x === "number" ? (Number.isInteger(x) ? x.toLocaleString("en") : x.toFixed(3)) : x ?? "");
const tag = (action) => action ? h("span", { class: `tag ${action}` }, action) : "";
const labels = (obj) => Object.entries(obj || {}).map(([k, v]) => `${k}=${v}`).join(", ");
function table(head, rows, attrs = {}) {
  return h("table", attrs, h("thead", {}, h("tr", {}, head.map((x) => h("th", {}, x)))), h("tbody", {}, rows));
}
function card(title, ...body) { return h("div", { class: "card" }, h("h3", {}, title), ...body); }
const cookie = (name) => decodeURIComponent((document.cookie.split("; ").find((c) => c.startsWith(name + "=")) || "=").split("=").slice(1).join("="));

// -- Overview -------------------------------------------------------------------------------
async function overview() {
  const o = await api("/console/api/overview");
  const lagRows = [];
  for (const [topic, parts] of Object.entries(o.lag)) {
    for (const [p, lag] of Object.entries(parts)) lagRows.push(h("tr", {}, h("td", {}, topic), h("td", {}, p), h("td", { class: "lag" }, fmt(lag))));
  }
  const accRows = [];
  for (const a of o.accuracy) {
    for (const [action, m] of Object.entries(a.actions)) {
      accRows.push(h("tr", { dataset: { classifier: a.classifier, version: a.version, action } },
        h("td", {}, a.classifier), h("td", {}, a.version), h("td", {}, tag(action)),
        h("td", { class: "judged" }, fmt(m.judged)), h("td", { class: "confirmed" }, fmt(m.confirmed)),
        h("td", { class: "precision" }, m.precision.toFixed(4))));
    }
  }
  const confRows = [];
  for (const a of o.accuracy) for (const [decided, row] of Object.entries(a.confusion))
    for (const [actual, n] of Object.entries(row)) confRows.push(h("tr", {}, h("td", {}, a.classifier), h("td", {}, a.version), h("td", {}, decided), h("td", {}, actual), h("td", {}, fmt(n))));
  main.replaceChildren(
    h("div", { class: "cards" },
      card("Events in / s", h("div", { class: "big", id: "rate-in" }, fmt(o.now.in)), svg(o.charts.in), h("div", { class: "muted" }, "total ", h("span", { id: "total-in" }, fmt(o.totals.in)))),
      card("Events out / s", h("div", { class: "big", id: "rate-out" }, fmt(o.now.out)), svg(o.charts.out), h("div", { class: "muted" }, "total ", h("span", { id: "total-out" }, fmt(o.totals.out)))),
      card("Dead letters", Object.keys(o.dead_letters).length ? table(["reason", "count"], Object.entries(o.dead_letters).map(([r, n]) => h("tr", {}, h("td", {}, h("a", { href: `/console/dead?reason=${encodeURIComponent(r)}` }, r)), h("td", {}, fmt(n))))) : h("div", { class: "muted" }, "none")),
      card("Agent restarts", h("div", { class: "big", id: "restarts" }, fmt(o.agent_restarts)), h("div", { class: "muted" }, `all live workers (${o.workers.filter((w) => w.live).length})`)),
      card("Taxonomies", table(["name", "version"], Object.entries(o.taxonomies).map(([n, v]) => h("tr", {}, h("td", {}, n), h("td", {}, v))))),
      card("kNN indexes", table(["class.property", "size", "version"], Object.entries(o.indexes).map(([k, s]) => h("tr", {}, h("td", {}, k), h("td", {}, fmt(s.size)), h("td", {}, s.version))))),
    ),
    h("h2", {}, "Online accuracy (from the feedback topic)"),
    table(["classifier", "version", "action", "judged", "confirmed", "precision"], accRows, { id: "accuracy" }),
    confRows.length ? h("details", {}, h("summary", {}, "Confusion counts"), table(["classifier", "version", "decided", "right", "count"], confRows)) : "",
    h("h2", {}, "Workers"),
    table(["worker", "state", "agent restarts", "records in", "results", "dead letters"], o.workers.map((w) => h("tr", { dataset: { worker: w.worker }, class: w.live ? "" : "muted" },
      h("td", {}, w.worker), h("td", { class: "state" }, w.live ? "live" : `silent ${Math.round(w.age_s)} s`),
      h("td", { class: "restarts", title: Object.entries(w.restarts_by_agent).map(([a, n]) => `${a} ${n}`).join(", ") }, fmt(w.agent_restarts)),
      h("td", {}, fmt(w.inputs)), h("td", {}, fmt(w.results)), h("td", {}, fmt(w.dead_letters)))), { id: "workers" }),
    h("h2", {}, "Consumer lag per partition"),
    table(["topic", "partition", "lag"], lagRows, { id: "lag" }),
  );
}

// -- Live results -----------------------------------------------------------------------------
// performance marks read by bench/console_pages.py: the first result row on the live page, each page's first render
const firstRow = () => { if (!performance.getEntriesByName("console:first-row").length) performance.mark("console:first-row"); };
function resultRow(s) {
  return h("tr", { class: "click", dataset: { id: s.result_id }, onclick: () => showResult(s.result_id) },
    h("td", {}, s.item_id), h("td", {}, s.classifier), h("td", {}, s.method), h("td", { class: "labels" }, labels(s.labels)),
    h("td", {}, Object.values(s.confidence || {}).map(fmt).join(", ")), h("td", {}, tag(s.action)));
}

async function showResult(id) {
  const r = await api(`/console/api/result?id=${encodeURIComponent(id)}`);
  const panel = $("#detail");
  const parts = [h("h3", {}, r.result_id), h("p", {}, labels(r.labels))];
  const knn = (r.detail || {}).knn || {};
  for (const [prop, d] of Object.entries(knn)) {
    parts.push(h("h4", {}, `kNN neighbours: ${prop}`), table(["example", "label", "distance"], (d.neighbours || []).map((n) => h("tr", {}, h("td", {}, n.id), h("td", {}, n.label), h("td", {}, fmt(n.distance))))));
  }
  const zs = (r.detail || {}).zeroshot || {};
  for (const [prop, m] of Object.entries(zs)) if (m) parts.push(h("p", {}, `${prop}: matched prompt "${m.prompt ?? ""}" of ${m.class} (${fmt(m.probability)})`));
  // Per-head scores: the top classes of each head (default), or every leaf (a classifier's "distributions": ["heads"]).
  const scored = (classes) => (Array.isArray(classes) ? classes.map((c) => `${c.class} ${fmt(c.score)}`).join(", ") : "");
  for (const [t, heads] of Object.entries((r.detail || {}).top || {})) {
    for (const [head, classes] of Object.entries(heads || {})) parts.push(h("p", { class: "muted" }, `${t} ${head}: ${scored(classes)}`));
  }
  for (const [t, classes] of Object.entries((r.detail || {}).heads || {})) parts.push(h("p", { class: "muted" }, `${t}: ${scored(classes)}`));
  for (const prop of Object.keys(r.labels || {})) {  // a verdict on any result, not only queued ones
    const label = h("input", { placeholder: "right label", size: 12 });
    const send = async (verdict) => {
      const ok = await api("/console/api/verdict", { json: { result_id: r.result_id, property: prop, verdict, label: label.value.trim() } }).catch(() => null);
      if (ok) msg(`${verdict} ${r.result_id} ${prop}`, true);
    };
    parts.push(h("form", { class: "inline verdict", onsubmit: (e) => { e.preventDefault(); send("relabel"); } }, `${prop}: `,
      h("button", { type: "button", onclick: () => send("confirm") }, "confirm"), h("button", { type: "button", class: "secondary", onclick: () => send("reject") }, "reject"),
      label, h("button", { type: "submit" }, "relabel")));
  }
  if (r.method === "media") parts.push(h("p", {}, h("a", { href: `/console/media?id=${encodeURIComponent(r.result_id)}` }, "media timeline")));
  parts.push(h("pre", {}, JSON.stringify(r, null, 2)));
  panel.replaceChildren(...parts);
}

async function live() {
  const q = new URLSearchParams(location.search);
  const form = h("form", { class: "filters", id: "filters" },
    ...["classifier", "label", "item"].map((f) => h("label", {}, f, h("input", { name: f, value: q.get(f) || "" }))),
    h("label", {}, "action", h("select", { name: "action" }, ...["", "allow", "review", "block"].map((a) => { const o = h("option", { value: a }, a || "any"); if (q.get("action") === a) o.selected = true; return o; }))),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => { e.preventDefault(); const p = new URLSearchParams(new FormData(form)); location.search = p.toString(); });
  const tbody = h("tbody", { id: "rows" });
  main.replaceChildren(form, h("div", { class: "split" },
    h("div", {}, h("p", { class: "muted", id: "count" }), h("table", { id: "results" }, h("thead", {}, h("tr", {}, ["item", "classifier", "method", "labels", "confidence", "action"].map((x) => h("th", {}, x)))), tbody)),
    h("div", { id: "detail", class: "card" }, h("p", { class: "muted" }, "Click a result for its full detail."))));
  const filters = new URLSearchParams([...q].filter(([k, v]) => ["classifier", "label", "action", "item"].includes(k) && v));
  const data = await api(`/console/api/results?${filters}`);
  tbody.replaceChildren(...data.results.map(resultRow));
  if (data.results.length) firstRow();
  $("#count").textContent = `${data.window.toLocaleString("en")} results in the recent window; new ones appear live.`;
  const es = new EventSource(`/console/api/stream?${filters}`);
  es.onmessage = (ev) => {
    const s = JSON.parse(ev.data);
    firstRow();
    const old = tbody.querySelector(`tr[data-id="${CSS.escape(s.result_id)}"]`);
    if (old) old.remove();
    tbody.prepend(resultRow(s));
    while (tbody.children.length > 200) tbody.lastChild.remove();
  };
}

// -- Review queue -----------------------------------------------------------------------------
const review = { items: [], open: 0, sel: 0, busy: new Set(), relabel: false };  // open: all open items, items: the oldest page

function renderQueue() {
  const list = $("#queue");
  if (!list) return;
  const items = review.items.filter((e) => !review.busy.has(e.id));
  review.sel = Math.min(review.sel, Math.max(0, items.length - 1));
  const open = Math.max(items.length, review.open - review.busy.size);
  $("#qcount").textContent = `${open.toLocaleString("en")} open`;
  $("#qshown").textContent = open > items.length ? ` · the oldest ${items.length} shown` : "";
  list.replaceChildren(...items.map((e, i) => h("div", { class: `item${i === review.sel ? " sel" : ""}`, dataset: { id: e.id }, onclick: () => { review.sel = i; renderQueue(); } },
    h("div", {}, tag(e.action), " ", h("b", {}, e.item_id), ` · ${e.class_name} ${fmt(e.score)} · ${e.taxonomy.name}@${e.taxonomy.version} · rule ${e.rule}`),
    h("div", { class: "muted" }, "scores: " + Object.entries(e.scores || {}).map(([c, s]) => `${c} ${fmt(s)}`).join(", ")),
    e.matched ? h("div", { class: "muted" }, "matched: " + Object.values(e.matched).filter(Boolean).map((m) => `"${m.prompt ?? m.class}"`).join(", ")) : "",
    i === review.sel && review.relabel ? relabelBox(e) : "")));
  const cur = list.querySelector(".sel");
  if (cur && cur.scrollIntoView) cur.scrollIntoView({ block: "nearest" });
}

function relabelBox(e) {
  const input = h("input", { id: "relabel", list: "classes", placeholder: "right label, Enter" });
  const dl = h("datalist", { id: "classes" }, Object.keys(e.scores || {}).map((c) => h("option", { value: c })));
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); review.relabel = false; decide(e, "relabel", input.value.trim()); }
    if (ev.key === "Escape") { review.relabel = false; renderQueue(); }
    ev.stopPropagation();
  });
  setTimeout(() => input.focus(), 0);
  return h("div", {}, input, dl);
}

async function decide(e, verdict, label) {
  if (!e) return;
  review.busy.add(e.id);
  renderQueue();
  try {
    await api("/console/api/verdict", { json: { hit_id: e.id, verdict, label } });
    review.items = review.items.filter((x) => x.id !== e.id);
    review.open = Math.max(0, review.open - 1);
    msg(`${verdict} ${e.item_id}`, true);
  } catch (err) {
    // the message is on the page (api()); the item comes back
  } finally {
    review.busy.delete(e.id);
    renderQueue();
  }
}

async function loadQueue() {
  const actions = $("#withblock") && $("#withblock").checked ? "review,block" : "review";
  const data = await api(`/console/api/review?actions=${actions}`);
  const current = review.items.filter((e) => !review.busy.has(e.id))[review.sel];
  review.items = data.queue;
  review.open = data.open;
  if (current) {
    const i = review.items.filter((e) => !review.busy.has(e.id)).findIndex((e) => e.id === current.id);
    if (i >= 0) review.sel = i;
  }
  renderQueue();
}

async function reviewPage() {
  main.replaceChildren(
    h("div", { class: "split" },
      h("div", {},
        h("form", { class: "inline" }, h("label", {}, h("span", {}, h("input", { type: "checkbox", id: "withblock", onchange: loadQueue }), " include block")), h("span", { id: "qcount", class: "muted" }), h("span", { id: "qshown", class: "muted" })),
        h("p", { class: "keys" }, h("kbd", {}, "j"), "/", h("kbd", {}, "k"), " move · ", h("kbd", {}, "c"), " confirm · ", h("kbd", {}, "x"), " reject · ", h("kbd", {}, "r"), " relabel (type, Enter) · oldest first"),
        h("div", { id: "queue", class: "queue" })),
      h("div", {}, h("h3", {}, "Recent verdicts"), h("div", { id: "verdicts" }))));
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const items = review.items.filter((e) => !review.busy.has(e.id));
    const cur = items[review.sel];
    if (ev.key === "j" || ev.key === "ArrowDown") { review.sel = Math.min(review.sel + 1, items.length - 1); renderQueue(); }
    else if (ev.key === "k" || ev.key === "ArrowUp") { review.sel = Math.max(review.sel - 1, 0); renderQueue(); }
    else if (ev.key === "c") decide(cur, "confirm");
    else if (ev.key === "x") decide(cur, "reject");
    else if (ev.key === "r" && cur) { review.relabel = true; renderQueue(); }
    else return;
    ev.preventDefault();
  });
  await loadQueue();
  await loadVerdicts();
  setInterval(() => { if (!review.busy.size && !review.relabel) loadQueue().catch(() => {}); loadVerdicts().catch(() => {}); }, 2000);
}

async function loadVerdicts() {
  const data = await api("/console/api/verdicts");
  $("#verdicts").replaceChildren(table(["item", "verdict", "label", "who", ""], data.verdicts.slice(0, 50).map((f) => h("tr", {},
    h("td", {}, f.item_id), h("td", {}, f.verdict), h("td", {}, f.label ?? f.decision.label ?? ""), h("td", {}, f.reviewer),
    h("td", {}, h("button", { class: "secondary", onclick: async () => { await api("/console/api/retract", { json: { result_id: f.result_id, property: f.property } }); msg(`retracted the verdicts on ${f.result_id} (and any example learned from them)`, true); } }, "retract"))))));
}

// -- Dead letters -------------------------------------------------------------------------------
async function dead() {
  const q = new URLSearchParams(location.search);
  const detail = h("div", { id: "detail", class: "card" }, h("p", { class: "muted" }, "Click a dead letter to inspect it."));
  const reasons = h("p", { id: "reasons" });
  const list = h("div", { id: "deadlist" });
  let topics = [];
  const inspect = (d) => {
    const family = (d.source.topic || "").split(".").pop();
    const topic = h("select", { name: "topic" }, topics.map((t) => { const o = h("option", { value: t }, t); if (t === family) o.selected = true; return o; }));
    const key = h("input", { name: "key", value: d.key || "" });
    const value = h("textarea", { name: "value", rows: 12, cols: 60 }, d.original.json ? JSON.stringify(d.original.json, null, 2) : (d.original.text || ""));
    const form = h("form", {}, h("label", {}, "topic", topic), h("label", {}, "key", key), h("label", {}, "corrected value (JSON)", value), h("button", { type: "submit" }, "Re-publish"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const r = await api("/console/api/republish", { json: { topic: topic.value, key: key.value, value: value.value, dead_letter: d.id } }).catch(() => null);
      if (r) msg(`re-published to ${r.topic} (key ${r.key || "none"})`, true);
    });
    detail.replaceChildren(h("h3", {}, d.reason), h("p", {}, d.detail), d.path ? h("p", { class: "muted" }, "at " + d.path) : "",
      h("p", { class: "muted" }, `${d.source.topic} [${d.source.partition}] @${d.source.offset}` + (d.value_truncated ? " · truncated" : "") + (d.original.binary ? " · binary" : "")), form);
  };
  const refresh = async () => {
    const data = await api(`/console/api/dead${q.get("reason") ? "?reason=" + encodeURIComponent(q.get("reason")) : ""}`);
    topics = data.topics;
    reasons.replaceChildren("Reasons: ", ...Object.entries(data.reasons).map(([r, n]) => h("a", { href: `?reason=${encodeURIComponent(r)}`, class: "tag" }, `${r} ${n}`)), " ", h("a", { href: "?" }, "all"));
    list.replaceChildren(table(["reason", "topic", "key", "detail", ""], data.dead_letters.map((d) => h("tr", { class: "click", dataset: { id: d.id }, onclick: () => inspect(d) },
      h("td", {}, d.reason), h("td", {}, d.source.topic), h("td", {}, d.key ?? ""), h("td", {}, (d.detail || "").slice(0, 120)), h("td", {}, d.republished ? "re-published" : "")))));
  };
  main.replaceChildren(reasons, h("div", { class: "split" }, list, detail));
  await refresh();
  setInterval(() => refresh().catch(() => {}), 2000);
}

// -- Classifiers and taxonomies ----------------------------------------------------------------
async function models() {
  const data = await api("/console/api/models");
  const out = [h("h2", {}, "Classifiers"), table(["name", "type", "class", "properties", "taxonomies", "settings", "feedback"], data.classifiers.map((c) => h("tr", {},
    h("td", {}, c.name), h("td", {}, c.type), h("td", {}, c.class), h("td", {}, (c.classifyProperties || []).join(", ")), h("td", {}, (c.taxonomies || []).join(", ")),
    h("td", {}, JSON.stringify(c.settings)), h("td", {}, c.feedback ? JSON.stringify(c.feedback) : ""))))];
  out.push(h("h2", {}, "Taxonomies"));
  for (const [name, t] of Object.entries(data.taxonomies)) {
    const doc = t.document || {};
    // by default the two newest versions on the topic
    const last = t.versions[t.versions.length - 1], prev = t.versions[Math.max(0, t.versions.length - 2)];
    const from = h("select", { name: "from" }, t.versions.map((v) => { const o = h("option", { value: v }, v); if (v === prev) o.selected = true; return o; }));
    const to = h("select", { name: "to" }, t.versions.map((v) => { const o = h("option", { value: v }, v); if (v === last) o.selected = true; return o; }));
    const res = h("pre", { hidden: true });
    const form = h("form", { class: "inline" }, h("label", {}, "from", from), h("label", {}, "to", to), h("button", { type: "submit" }, "Diff"));
    form.addEventListener("submit", async (e) => { e.preventDefault(); const d = await api(`/console/api/diff?name=${encodeURIComponent(name)}&from=${from.value}&to=${to.value}`); res.hidden = false; res.textContent = JSON.stringify(d, null, 2); });
    out.push(h("div", { class: "card" }, h("h3", {}, `${name} · version ${t.current ?? "?"} · versions on the topic: ${t.versions.join(", ") || "-"}`),
      table(["class", "parent", "head", "prompts"], (doc.classes || []).map((c) => h("tr", {}, h("td", {}, c.name), h("td", {}, c.parent ?? ""), h("td", {}, c.head ?? ""), h("td", {}, (c.prompts || []).join(" · "))))),
      h("p", { class: "muted" }, "policies: " + JSON.stringify(doc.policies || [])), form, res));
  }
  main.replaceChildren(...out);
}

// -- Media result --------------------------------------------------------------------------------
async function media() {
  const id = new URLSearchParams(location.search).get("id");
  const data = await api(`/console/api/media${id ? "?id=" + encodeURIComponent(id) : ""}`);
  if (!id) {
    main.replaceChildren(h("h2", {}, "Recent media results"), table(["media", "classifier", "labels"], data.recent.map((s) => h("tr", {}, h("td", {}, h("a", { href: `?id=${encodeURIComponent(s.result_id)}` }, s.item_id)), h("td", {}, s.classifier), h("td", {}, labels(s.labels))))));
    return;
  }
  const classes = [...new Set(data.frames.flatMap((f) => f.classes.map((c) => c.class)))];
  main.replaceChildren(h("h2", {}, data.result.result_id), h("div", { class: "card" }, svg(data.timeline)),
    h("h3", {}, "Clips"), table(["class", "start", "end", "score"], data.clips.map((c) => h("tr", {}, h("td", {}, c.class), h("td", {}, fmt(c.start)), h("td", {}, fmt(c.end)), h("td", {}, fmt(c.score))))),
    h("h3", {}, "Per frame"), table(["time", ...classes], data.frames.map((f) => h("tr", {}, h("td", {}, fmt(f.time)), ...classes.map((c) => h("td", {}, fmt((f.classes.find((x) => x.class === c) || {}).score)))))));
}

// -- Jobs -----------------------------------------------------------------------------------------
async function jobs() {
  const list = h("div", { id: "jobs" });
  const field = (name, label, attrs = {}) => h("label", {}, label, h("input", { name, ...attrs }));
  const form = h("form", { class: "inline", id: "jobform" }, field("class", "class"), field("classifyProperties", "classify (comma)"), field("basedOnProperties", "based on (comma)"),
    h("label", {}, "type", h("select", { name: "type" }, h("option", { value: "knn" }, "knn"), h("option", { value: "zeroshot" }, "zeroshot"))), field("k", "k", { value: "3", size: 4 }),
    h("button", { type: "submit" }, "Start job"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const split = (s) => String(s || "").split(",").map((x) => x.trim()).filter(Boolean);
    const k = Number(f.get("k"));
    const body = { class: f.get("class"), type: f.get("type"), classifyProperties: split(f.get("classifyProperties")), basedOnProperties: split(f.get("basedOnProperties")), settings: { k: Number.isInteger(k) ? k : f.get("k") } };
    const r = await api("/console/api/jobs", { json: body });
    msg(`job ${r.id} started`, true);
    refresh();
  });
  const refresh = async () => {
    const data = await api("/console/api/jobs");
    const rows = Array.isArray(data) ? data : (data.classifications || []);
    list.replaceChildren(table(["id", "class", "status", "progress", "succeeded", "failed"], rows.map((j) => {
      const m = j.meta || {}; const total = m.count || 0; const done = (m.countSucceeded || 0) + (m.countFailed || 0);
      return h("tr", {}, h("td", {}, j.id), h("td", {}, j.class), h("td", { class: "status" }, j.status, j.error ? h("div", { class: "muted" }, j.error) : ""),
        h("td", {}, h("div", { class: "bar" }, h("span", { style: `width:${total ? Math.round(100 * done / total) : (j.status === "completed" ? 100 : 0)}%` }))), h("td", {}, fmt(m.countSucceeded || 0)), h("td", {}, fmt(m.countFailed || 0)));
    })));
  };
  main.replaceChildren(form, list);
  await refresh();
  setInterval(() => refresh().catch(() => {}), 2000);
}

// -- Start -------------------------------------------------------------------------------------------
const PAGES = { overview, live, review: reviewPage, dead, models, media, jobs };
const page = document.body.dataset.page;
$("#who").textContent = cookie("labelstream_console_reviewer");
(PAGES[page] || overview)().then(() => performance.mark("console:rendered")).catch(() => {});
if (page === "overview") setInterval(() => overview().catch(() => {}), 1000);
