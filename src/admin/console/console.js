// The userhook web console: the admin API seen from a browser tab.
//
// The page itself carries no data: everything comes from the admin API with fetch, with the
// admin token (when the instance has one) in an Authorization header. The token is taken
// from the URL fragment (#token=..., which browsers never send to a server) or typed in, and
// kept in sessionStorage (this tab only). The live feed (GET /events) is read with fetch
// streaming, since EventSource cannot send headers; it reconnects with Last-Event-ID.
// Every value is put into the page as text (textContent), never as HTML.
"use strict";

const TOKEN_KEY = "userhook.admin-token";
const MAX_ROWS = 500;
const REFRESH_MS = 5000;
const REPLAY = 200;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let lastId = null;
let liveCount = 0;
let refreshTimer = null;
let started = false;

function takeFragmentToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem(TOKEN_KEY, token);
    // Out of the address bar and the history.
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

// GET or POST on the admin API; resolves to {status, body} (body parsed when JSON).
async function api(path, options) {
  const opts = Object.assign({ cache: "no-store", credentials: "omit" }, options || {});
  opts.headers = headers(opts.headers);
  const res = await fetch(path, opts);
  if (res.status === 401) needToken("the instance asked for its admin token");
  const type = res.headers.get("content-type") || "";
  const body = type.startsWith("application/json") ? await res.json() : await res.text();
  return { status: res.status, body: body };
}

function errorOf(r) {
  return r.body && r.body.error ? r.body.error : "HTTP " + r.status;
}

function needToken(why) {
  $("login").hidden = false;
  $("login-error").textContent = token ? "The token was refused: " + why + "." : "";
  setStatus("refused", "token needed");
}

function setStatus(state, text) {
  const s = $("status");
  s.dataset.state = state;
  s.textContent = text || state;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function userText(user) {
  if (!user) return "";
  return Object.keys(user).map((k) => k + "=" + user[k]).join(" ");
}

// ---- live feed -----------------------------------------------------------------------------

function addLive(kind, data) {
  const tr = document.createElement("tr");
  tr.className = "item " + kind + (data.outcome ? " outcome-" + data.outcome : "");
  if (kind === "detected") {
    tr.dataset.eventId = data.id || "";
    cell(tr, data.time);
    cell(tr, "detected");
    cell(tr, data.event);
    cell(tr, userText(data.user) || "(nobody named)");
    const req = data.request || {};
    const hooks = (data.webhooks || []).join(", ") || "no webhook";
    cell(tr, req.method + " " + req.path + " " + req.status + " \u2192 " + hooks);
  } else if (kind === "delivery") {
    tr.dataset.eventId = data.event_id || "";
    cell(tr, data.time);
    cell(tr, data.outcome);
    cell(tr, data.event);
    cell(tr, data.user_id ? "ID=" + data.user_id : "");
    let detail = data.webhook;
    if (data.status) detail += " HTTP " + data.status;
    if (data.attempt) detail += " attempt " + data.attempt;
    if (data.error) detail += ": " + data.error;
    cell(tr, detail);
  } else if (kind === "missed") {
    cell(tr, "");
    cell(tr, "missed");
    cell(tr, "");
    cell(tr, "");
    cell(tr, data.missed + " item(s): " + data.reason);
  } else {
    return;
  }
  const rows = $("live-rows");
  rows.insertBefore(tr, rows.firstChild);
  while (rows.childElementCount > MAX_ROWS) rows.removeChild(rows.lastChild);
  if (kind !== "missed") $("live-count").textContent = String(++liveCount);
  if (kind === "delivery") refreshSoon();
}

// One SSE block (without its blank line): dispatches it, keeps its id.
function onBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) {
      const m = /instance (\w+)/.exec(line);
      if (m) $("instance").textContent = "instance " + m[1];
      continue;
    }
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id" && value.indexOf("\0") < 0) lastId = value;
  }
  if (!data.length) return;
  try {
    addLive(event, JSON.parse(data.join("\n")));
  } catch (e) {
    // Not JSON: not something this console knows how to show.
  }
}

async function follow() {
  let wait = 500;
  for (;;) {
    let reason = "";
    try {
      const h = headers({ Accept: "text/event-stream" });
      if (lastId) h["Last-Event-ID"] = lastId;
      const url = lastId ? "/events" : "/events?replay=" + REPLAY;
      const res = await fetch(url, { headers: h, cache: "no-store", credentials: "omit" });
      if (res.status === 401) {
        needToken("the live feed asked for the admin token");
        return;
      }
      if (!res.ok) {
        const r = { status: res.status, body: await res.json().catch(() => null) };
        throw new Error(errorOf(r));
      }
      setStatus("live");
      wait = 500;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          onBlock(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
      reason = "the stream ended";
    } catch (e) {
      reason = e && e.message ? e.message : "the connection failed";
    }
    setStatus("reconnecting", "reconnecting (" + reason + ")");
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 10000);
  }
}

// ---- the other panels ----------------------------------------------------------------------

function fill(id, items, row) {
  const body = $(id + "-rows");
  body.textContent = "";
  for (const item of items) {
    const tr = document.createElement("tr");
    row(tr, item);
    body.appendChild(tr);
  }
  const count = $(id + "-count");
  if (count) count.textContent = String(items.length);
}

function unavailable(id, r) {
  $(id + "-rows") && ($(id + "-rows").textContent = "");
  $(id + "-note").textContent = "not available: " + errorOf(r);
}

async function loadDeliveries() {
  const r = await api("/deliveries");
  if (r.status !== 200) return unavailable("deliveries", r);
  const list = r.body.deliveries || [];
  $("deliveries-note").textContent = list.length ? "" : "no delivery yet";
  fill("deliveries", list.slice(0, MAX_ROWS), (tr, d) => {
    tr.className = "status-" + d.status;
    cell(tr, d.updated_at);
    cell(tr, d.webhook);
    cell(tr, d.event_type);
    cell(tr, d.user_id);
    cell(tr, d.status + (d.last_http_status ? " (HTTP " + d.last_http_status + ")" : ""));
    cell(tr, d.attempts);
    cell(tr, d.last_error || "");
  });
}

async function replay(id) {
  const path = "/deadletters/replay" + (id ? "?id=" + encodeURIComponent(id) : "");
  const r = await api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{}",
  });
  $("deadletters-note").textContent =
    r.status === 200 ? r.body.replayed + " dead letter(s) replayed" : "replay failed: " + errorOf(r);
  refreshSoon();
}

async function loadDeadLetters() {
  const r = await api("/deadletters?limit=100");
  if (r.status !== 200) return unavailable("deadletters", r);
  const list = r.body.dead_letters || [];
  $("replay-all").disabled = list.length === 0;
  if (!list.length) $("deadletters-note").textContent = "no dead letter";
  fill("deadletters", list, (tr, l) => {
    const d = l.delivery || {};
    const ev = d.event || {};
    cell(tr, l.at);
    cell(tr, d.webhook);
    cell(tr, ev.type);
    cell(tr, ev.user && ev.user.ID ? "ID=" + ev.user.ID : "");
    cell(tr, l.reason);
    const td = cell(tr, "");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Replay";
    b.className = "replay";
    b.addEventListener("click", () => replay(d.id));
    td.appendChild(b);
  });
}

async function resume(name) {
  const r = await api("/webhooks/" + encodeURIComponent(name) + "/resume", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{}",
  });
  $("webhooks-note").textContent = r.status === 200 ? name + " resumed" : "resume failed: " + errorOf(r);
  refreshSoon();
}

async function loadWebhooks() {
  const r = await api("/webhooks");
  if (r.status !== 200 || !r.body || !Array.isArray(r.body.webhooks)) return unavailable("webhooks", r);
  $("webhooks-note").textContent = r.body.webhooks.length ? "" : "no webhook configured";
  fill("webhooks", r.body.webhooks, (tr, w) => {
    cell(tr, w.name);
    cell(tr, w.state, "state-" + w.state);
    cell(tr, w.reason || "");
    cell(tr, w.consecutive_failures);
    cell(tr, w.rate || "");
    cell(tr, w.pending);
    const td = cell(tr, "");
    if (w.state === "paused") {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Resume";
      b.addEventListener("click", () => resume(w.name));
      td.appendChild(b);
    }
  });
}

async function loadLearn() {
  const r = await api("/learn");
  if (r.status !== 200 || typeof r.body !== "string") {
    $("learn-yaml").textContent = "";
    $("learn-note").textContent = "not available: " + errorOf(r);
    return;
  }
  $("learn-note").textContent = "proposed routes (confirm the commented-out ones before use)";
  $("learn-yaml").textContent = r.body;
}

async function refresh() {
  refreshTimer = null;
  for (const load of [loadDeliveries, loadDeadLetters, loadWebhooks, loadLearn]) {
    try {
      await load();
    } catch (e) {
      // The instance is restarting or unreachable: the live status says so; next round.
    }
  }
}

function refreshSoon() {
  if (refreshTimer === null) refreshTimer = setTimeout(refresh, 300);
}

function start() {
  if (started) return;
  started = true;
  $("login").hidden = true;
  $("forget").hidden = !token;
  follow();
  refresh();
  setInterval(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  takeFragmentToken();
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    // A fresh start with the new token.
    location.reload();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = "";
    location.reload();
  });
  $("replay-all").addEventListener("click", () => replay(null));
  start();
});
