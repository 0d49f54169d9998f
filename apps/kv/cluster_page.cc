// apps/kv/cluster_page.cc — see cluster_page.h. The page is written here
// as it is served; everything it shows is put into the document as text
// (textContent), never as markup, so nothing a member answers can run as
// script.
#include "kv/cluster_page.h"

namespace keel::kv {

namespace {

constexpr std::string_view kPage = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>keel-kv cluster</title>
<style>
  :root {
    --text: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa;
    --leader: #0969da; --leader-bg: #ddf4ff; --bad: #cf222e; --ok: #1a7f37;
  }
  body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--text);
         background: #fff; margin: 24px 32px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h1 span { color: var(--muted); font-weight: normal; }
  #summary { margin: 0 0 16px; color: var(--muted); }
  #summary strong { color: var(--text); }
  #summary strong.none { color: var(--bad); }
  .toolbar { display: flex; gap: 12px; align-items: center; margin-bottom: 12px; min-height: 30px; }
  table { border-collapse: collapse; }
  th, td { padding: 7px 14px; border-bottom: 1px solid var(--line); text-align: right;
           white-space: nowrap; font-variant-numeric: tabular-nums; }
  th { background: var(--head); font-weight: 600; font-size: 12px; color: var(--muted);
       text-transform: uppercase; letter-spacing: .04em; }
  th.text, td.text { text-align: left; }
  tr.leader td { background: var(--leader-bg); }
  tr.unreachable td { color: var(--muted); }
  .role { font-weight: 600; }
  tr.leader .role { color: var(--leader); }
  tr.unreachable .role { color: var(--bad); }
  .detail { color: var(--muted); font-size: 12px; margin-left: 6px; font-weight: normal; }
  button { font: inherit; font-size: 13px; padding: 3px 12px; border: 1px solid var(--line);
           border-radius: 6px; background: var(--head); color: var(--text); cursor: pointer; }
  button:hover:enabled { background: #eaeef2; }
  button:disabled { color: #8c959f; cursor: default; }
  .actions { display: flex; gap: 6px; justify-content: flex-end; }
  #outcome[data-outcome="ok"] { color: var(--ok); }
  #outcome[data-outcome="error"] { color: var(--bad); }
  #outcome[data-outcome="pending"] { color: var(--muted); }
  footer { margin-top: 16px; color: var(--muted); font-size: 12px; max-width: 60em; }
</style>
</head>
<body>
<h1>keel-kv <span>cluster</span></h1>
<p id="summary">Leader: <strong id="leader" data-leader-id="">looking&hellip;</strong>
  <span id="counts"></span> <span id="updated"></span></p>
<div class="toolbar">
  <button id="transfer" type="button" disabled>Transfer leadership</button>
  <span id="outcome" role="status" aria-live="polite" data-outcome=""></span>
</div>
<table>
  <thead><tr>
    <th>server</th><th class="text">HTTP address</th><th class="text">role</th><th>term</th>
    <th>commit</th><th>applied</th><th>snapshot</th><th title="entries the leader has that it has not yet matched on this member">lag</th><th></th>
  </tr></thead>
  <tbody id="members"></tbody>
</table>
<footer>Every member's <code>GET /v1/status</code>, asked once a second; a member that
does not answer within <span id="timeout"></span> ms shows as unreachable. Lag: the
leader's last index minus what it knows this member holds (its match index).
Snapshot takes one on that member; transfer hands leadership to the most
caught-up voter, or to the one chosen.</footer>
<script>
"use strict";

// How often every member is asked; how long one may take before it shows
// as unreachable (a killed member is refused at once; a paused or cut off
// one never answers). Rounds never overlap: the next begins a second
// after the last began, or as soon as it ended if it took longer.
const REFRESH_MS = 1000;
const STATUS_TIMEOUT_MS = 800;
// A snapshot may take its member up to a minute (http_api.cc).
const ACTION_TIMEOUT_MS = 70000;

const view = {
  originId: null,         // the member that served this page
  addresses: new Map(),   // member id -> HTTP address ("host:port" or null), from the configurations
  members: [],            // the newest configuration seen: [{id, suffrage}], by id
  rows: new Map(),        // member id -> its row's elements
  leader: null,           // {id, base}: the reachable leader of the highest term
  busy: false,            // an action is under way (one at a time)
  answers: new Map(),     // member id -> its answer in the last round
};

const $ = (id) => document.getElementById(id);

// Where to send a member's requests: "" (this page's own server, by
// relative URL: that works even where the configured addresses do not
// reach this browser), "http://host:port", or null if no address is known.
function baseUrl(id) {
  if (id === view.originId) return "";
  const address = view.addresses.get(id);
  if (!address) return null;
  const colon = address.lastIndexOf(":");
  let host = address.slice(0, colon);
  // A member listening on every interface names no host a browser can use:
  // try the one this page came from.
  if (host === "0.0.0.0" || host === "[::]" || host === "") host = location.hostname;
  return "http://" + host + address.slice(colon);
}

// One request, bounded: {answered, status, body (JSON or null), error}.
async function call(url, init, timeoutMs) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(url, {...init, cache: "no-store", signal: abort.signal});
    let body = null;
    try { body = JSON.parse(await res.text()); } catch (_) { /* not JSON */ }
    return {answered: true, status: res.status, body};
  } catch (_) {
    return {answered: false,
            error: abort.signal.aborted ? "no answer in " + timeoutMs + " ms" : "no connection"};
  } finally {
    clearTimeout(timer);
  }
}

function statusOf(answer) {
  return answer && answer.answered && answer.status === 200 && answer.body &&
         typeof answer.body === "object" ? answer.body : null;
}

function reason(answer) {
  if (!answer) return "not asked";
  if (!answer.answered) return answer.error;
  const b = answer.body;
  if (b && typeof b === "object" && typeof b.code === "string") {
    return answer.status + " " + b.code + (typeof b.error === "string" ? ": " + b.error : "");
  }
  return "HTTP " + answer.status;
}

async function askMembers(ids, answers) {
  const replies = await Promise.all(ids.map((id) => {
    const base = baseUrl(id);
    if (base === null) return {answered: false, error: "its HTTP address is not known"};
    return call(base + "/v1/status", {}, STATUS_TIMEOUT_MS);
  }));
  ids.forEach((id, i) => answers.set(id, replies[i]));
}

// One round: this page's server and every member known, at once; members
// first learned of in this round are asked right after.
async function pollMembers() {
  const answers = new Map();
  const known = [...view.addresses.keys()].filter((id) => id !== view.originId);
  const [origin] = await Promise.all([call("/v1/status", {}, STATUS_TIMEOUT_MS),
                                      askMembers(known, answers)]);
  const own = statusOf(origin);
  if (own && Number.isInteger(own.id)) view.originId = own.id;
  if (view.originId !== null) answers.set(view.originId, origin);
  learnMembers(answers);
  const unasked = [...view.addresses.keys()].filter((id) => !answers.has(id));
  if (unasked.length > 0) await askMembers(unasked, answers);
  return answers;
}

// The members are those of the newest configuration any member reported
// (the highest latest_index); an address it lacks may come from another's.
function learnMembers(answers) {
  let newest = null;
  const statuses = [...answers.values()].map(statusOf).filter((s) => s !== null);
  for (const s of statuses) {
    const c = s.configuration;
    if (!c || !Array.isArray(c.latest_servers)) continue;
    if (!newest || c.latest_index > newest.latest_index) newest = c;
  }
  if (!newest) return;  // nobody answered: keep asking the members known
  const addresses = new Map();
  for (const server of newest.latest_servers) {
    addresses.set(server.id, server.http_address || view.addresses.get(server.id) || null);
  }
  for (const s of statuses) {
    for (const server of (s.configuration && s.configuration.latest_servers) || []) {
      if (addresses.has(server.id) && !addresses.get(server.id) && server.http_address) {
        addresses.set(server.id, server.http_address);
      }
    }
  }
  view.addresses = addresses;
  view.members = newest.latest_servers.map((s) => ({id: s.id, suffrage: s.suffrage}))
                                      .sort((a, b) => a.id - b.id);
}

function cell(tr, className, field) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.dataset.field = field;
  tr.appendChild(td);
  return td;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

// A member's row is made once and then only updated, so that a button
// stays the same element while the table refreshes under it.
function rowFor(id) {
  let row = view.rows.get(id);
  if (row) return row;
  const tr = document.createElement("tr");
  tr.dataset.memberId = String(id);
  row = {tr};
  row.id = cell(tr, "", "id");
  row.address = cell(tr, "text", "address");
  const roleCell = cell(tr, "text", "role-cell");
  row.role = document.createElement("span");
  row.role.className = "role";
  row.role.dataset.field = "role";
  row.detail = document.createElement("span");
  row.detail.className = "detail";
  roleCell.append(row.role, row.detail);
  row.term = cell(tr, "", "term");
  row.commit = cell(tr, "", "commit");
  row.applied = cell(tr, "", "applied");
  row.snapshot = cell(tr, "", "snapshot");
  row.lag = cell(tr, "", "lag");
  const actions = document.createElement("div");
  actions.className = "actions";
  cell(tr, "", "actions").appendChild(actions);
  row.snapshotButton = button("Snapshot", () => takeSnapshot(id));
  row.snapshotButton.dataset.action = "snapshot";
  row.leadButton = button("Make leader", () => transferLeadership(id));
  row.leadButton.dataset.action = "transfer";
  actions.append(row.snapshotButton, row.leadButton);
  view.rows.set(id, row);
  return row;
}

const number = (v) => (typeof v === "number" ? String(v) : "\u2014");

function fillRow(row, member, answer, lags) {
  const s = statusOf(answer);
  const isLeader = view.leader !== null && view.leader.id === member.id;
  const role = s === null ? "unreachable" : s.state;
  row.tr.dataset.role = role;
  row.tr.className = isLeader ? "leader" : s === null ? "unreachable" : "";
  row.id.textContent = String(member.id);
  row.address.textContent = view.addresses.get(member.id) || "unknown";
  row.role.textContent = role;
  const notes = [];
  if (s === null) notes.push(reason(answer));
  if (s !== null && s.state === "leader" && !isLeader) notes.push("of an older term");
  if (isLeader && s.ready === false) notes.push("not ready yet");
  if (member.suffrage === "learner") notes.push("learner");
  if (member.id === view.originId) notes.push("served this page");
  row.detail.textContent = notes.join(", ");
  row.term.textContent = number(s && s.term);
  row.commit.textContent = number(s && s.commit_index);
  row.applied.textContent = number(s && s.applied_index);
  row.snapshot.textContent = number(s && s.snapshot_index);
  row.lag.textContent = number(lags.get(member.id));
  row.snapshotButton.disabled = view.busy || s === null;
  row.leadButton.disabled = view.busy || s === null || view.leader === null || isLeader ||
                            member.suffrage !== "voter";
}

function render(answers) {
  view.answers = answers;
  // The leader: a reachable member that says it leads, of the highest term
  // (an old leader cut off from the others may still think it leads).
  let leader = null;
  for (const [id, answer] of answers) {
    const s = statusOf(answer);
    if (s && s.state === "leader" && (leader === null || s.term > leader.status.term)) {
      leader = {id, status: s};
    }
  }
  view.leader = leader && {id: leader.id, base: baseUrl(leader.id)};
  const lags = new Map();
  if (leader) {
    lags.set(leader.id, 0);
    for (const r of leader.status.replication || []) lags.set(r.id, r.lag_entries);
  }
  let members = view.members;
  if (members.length === 0) members = [...answers.keys()].map((id) => ({id, suffrage: "voter"}));
  const tbody = $("members");
  const shown = new Set();
  members.forEach((member, i) => {
    const row = rowFor(member.id);
    fillRow(row, member, answers.get(member.id), lags);
    if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    shown.add(member.id);
  });
  for (const [id, row] of view.rows) {
    if (!shown.has(id)) {
      row.tr.remove();
      view.rows.delete(id);
    }
  }
  const leaderText = $("leader");
  leaderText.textContent = leader ? "server " + leader.id + ", term " + leader.status.term
                                  : "none reachable";
  leaderText.dataset.leaderId = leader ? String(leader.id) : "";
  leaderText.className = leader ? "" : "none";
  const answering = members.filter((m) => statusOf(answers.get(m.id)) !== null).length;
  $("counts").textContent = "\u00b7 " + answering + " of " + members.length + " members answering";
  $("updated").textContent = "\u00b7 updated " + new Date().toLocaleTimeString();
  $("transfer").disabled = view.busy || leader === null;
}

function showOutcome(state, text) {
  const outcome = $("outcome");
  outcome.dataset.outcome = state;
  outcome.textContent = text;
}

// One action at a time, its outcome shown until the next. The body, if
// any, goes as text/plain: the request stays a "simple" one that needs no
// CORS preflight (keel-kv reads the JSON whatever the content type).
async function act(label, url, body, describe) {
  view.busy = true;
  render(view.answers);
  showOutcome("pending", label + "\u2026");
  const init = {method: "POST"};
  if (body !== undefined) init.body = JSON.stringify(body);
  const answer = await call(url, init, ACTION_TIMEOUT_MS);
  const done = statusOf(answer);
  if (done) showOutcome("ok", describe(done));
  else showOutcome("error", label + " failed: " + reason(answer));
  view.busy = false;
  render(view.answers);
}

function takeSnapshot(id) {
  const base = baseUrl(id);
  if (base === null) return;
  act("Snapshot of server " + id, base + "/v1/snapshot", undefined,
      (b) => "Snapshot of server " + id + " taken: index " + b.index + ", term " + b.term +
             ", " + b.size_bytes + " bytes.");
}

// To the leader itself (a follower would answer with a redirect to it).
function transferLeadership(target) {
  if (view.leader === null || view.leader.base === null) return;
  const label = target === undefined ? "Leadership transfer"
                                     : "Leadership transfer to server " + target;
  act(label, view.leader.base + "/v1/cluster/transfer-leadership",
      target === undefined ? undefined : {id: target},
      (b) => "Leadership moved: server " + (b.leader && b.leader.id) + " leads.");
}

async function refresh() {
  const began = performance.now();
  try {
    render(await pollMembers());
  } catch (e) {
    showOutcome("error", "refresh failed: " + e);
  }
  setTimeout(refresh, Math.max(0, REFRESH_MS - (performance.now() - began)));
}

$("timeout").textContent = String(STATUS_TIMEOUT_MS);
$("transfer").addEventListener("click", () => transferLeadership(undefined));
refresh();
</script>
</body>
</html>
)page";

}  // namespace

std::string_view cluster_page_html() { return kPage; }

std::string_view cluster_page_security_policy() {
  return "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
         "connect-src http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

}  // namespace keel::kv
