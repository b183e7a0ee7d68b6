/**
 * The status page served at `/`: one self-contained HTML document (no CDN, works offline). It is a
 * TypeScript string rather than a text import so the same source runs under Bun, Deno and Node.
 */
export const STATUS_PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>berth</title>
<style>
:root{--bg:#f6f7f9;--card:#fff;--ink:#1c2430;--dim:#6b7686;--line:#e3e7ec;--ok:#1f9d55;--warn:#c98a00;--bad:#d64545;--info:#3b6fd6;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
@media (prefers-color-scheme:dark){:root{--bg:#11151b;--card:#1a2029;--ink:#e6ebf1;--dim:#93a0b2;--line:#2a323e}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;align-items:center;gap:.75rem;padding:1rem 1.25rem;border-bottom:1px solid var(--line);background:var(--card);position:sticky;top:0;z-index:1}
header h1{font-size:1.15rem;margin:0;letter-spacing:.02em}
header .live{margin-left:auto;font-size:.8rem;color:var(--dim);display:flex;align-items:center;gap:.4rem}
.dot{width:.55rem;height:.55rem;border-radius:50%;background:var(--dim);display:inline-block}
.dot.on{background:var(--ok);box-shadow:0 0 0 3px color-mix(in srgb,var(--ok) 25%,transparent)}
main{max-width:980px;margin:0 auto;padding:1rem;display:grid;gap:1rem}
.banner{padding:.7rem 1rem;border-radius:10px;background:color-mix(in srgb,var(--bad) 12%,var(--card));border:1px solid color-mix(in srgb,var(--bad) 40%,transparent)}
.app{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:1rem 1.1rem;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem .75rem}
.name{font-weight:650;font-size:1.1rem}
.path{color:var(--dim);font-family:var(--mono);font-size:.82rem}
.badges{margin-left:auto;display:flex;gap:.4rem;flex-wrap:wrap}
.badge{font-size:.78rem;font-weight:600;padding:.15rem .6rem;border-radius:999px;border:1px solid currentColor}
.Synced,.Current,.Succeeded{color:var(--ok)}.OutOfSync,.InProgress,.WaitingOnDependency,.Running{color:var(--warn)}
.Drift{color:var(--warn)}
.Failed,.NotFound{color:var(--bad)}.Suspended,.Unknown,.Terminating{color:var(--dim)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .9rem;margin:.8rem 0 0;font-size:.88rem}
dt{color:var(--dim)}dd{margin:0;font-family:var(--mono);font-size:.82rem;overflow-wrap:anywhere}
.err{margin-top:.7rem;padding:.55rem .75rem;border-radius:8px;background:color-mix(in srgb,var(--bad) 10%,transparent);font-size:.86rem;overflow-wrap:anywhere}
.err b{color:var(--bad)}
.progress{margin-top:.6rem;font-size:.82rem;color:var(--info);min-height:1.1em}
details{margin-top:.8rem}summary{cursor:pointer;color:var(--dim);font-size:.88rem}
ol.timeline{list-style:none;margin:.6rem 0 0;padding:0 0 0 .9rem;border-left:2px solid var(--line)}
ol.timeline>li{position:relative;padding:.1rem 0 .8rem .6rem}
ol.timeline>li:before{content:"";position:absolute;left:-1.29rem;top:.45rem;width:.6rem;height:.6rem;border-radius:50%;background:currentColor}
.when{font-size:.78rem;color:var(--dim)}.rev{font-family:var(--mono);font-size:.8rem}
.objs{margin:.3rem 0 0;padding:0;list-style:none;font-family:var(--mono);font-size:.78rem;color:var(--ink)}
.objs li{padding:.05rem 0}.act{display:inline-block;min-width:6.5em;color:var(--dim)}
form.token{display:flex;gap:.5rem;flex-wrap:wrap;background:var(--card);padding:1rem;border-radius:12px;border:1px solid var(--line)}
form.token input{flex:1;min-width:12rem;padding:.5rem;border-radius:8px;border:1px solid var(--line);background:var(--bg);color:var(--ink)}
button{padding:.5rem .9rem;border-radius:8px;border:0;background:var(--info);color:#fff;font-weight:600}
.empty{color:var(--dim);text-align:center;padding:2rem}
h2.previews{font-size:1rem;margin:.5rem 0 0;color:var(--dim);font-weight:600}
.preview-app{margin-top:.6rem}
.clean,.changes{color:var(--ok)}.held,.deferred{color:var(--warn)}.denied,.error{color:var(--bad)}
@media (max-width:560px){main{padding:.6rem}.badges{margin-left:0;width:100%}dl{grid-template-columns:max-content 1fr}}
</style>
</head>
<body>
<header><h1>&#9875; berth</h1><span class="path" id="source"></span><span class="live"><span class="dot" id="dot"></span><span id="livetext">connecting&#8230;</span></span></header>
<main id="main"><div class="empty">Loading&#8230;</div></main>
<script>
"use strict";
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"})[c]);
const short = (rev) => rev ? rev.replace(/sha1:([0-9a-f]{10})[0-9a-f]+/, "$1") : "—";
const ago = (t) => { if (!t) return "—"; const s = Math.round((Date.now() - Date.parse(t)) / 1000); const a = Math.abs(s);
  const v = a < 60 ? a + "s" : a < 3600 ? Math.round(a / 60) + "m" : a < 86400 ? Math.round(a / 3600) + "h" : Math.round(a / 86400) + "d";
  return s >= 0 ? v + " ago" : "in " + v; };
let token = localStorage.getItem("berth-token") || "";
const headers = () => token ? { Authorization: "Bearer " + token } : {};
const progress = {};
async function api(path) {
  const r = await fetch(path, { headers: headers() });
  if (r.status === 401 || r.status === 403) { askToken(); throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}
function askToken() {
  $("#main").innerHTML = '<form class="token" id="tf"><input id="tok" type="password" autocomplete="off" placeholder="API token (read scope)"><button>Show status</button></form>';
  $("#tf").onsubmit = (e) => { e.preventDefault(); token = $("#tok").value.trim(); localStorage.setItem("berth-token", token); refresh(); listen(); };
}
async function timeline(app) {
  const { entries } = await api("/api/v1/ledger?app=" + encodeURIComponent(app) + "&limit=6");
  const full = await Promise.all(entries.map((e) => api("/api/v1/ledger/" + e.id).catch(() => e)));
  if (full.length === 0) return '<p class="when">No sync yet.</p>';
  return '<ol class="timeline">' + full.map((e) => {
    const changed = (e.objects || []).filter((o) => o.action !== "unchanged");
    const objs = changed.slice(0, 12).map((o) => '<li><span class="act">' + esc(o.action) + '</span>' + esc(o.ref.kind + "/" + (o.ref.namespace ? o.ref.namespace + "/" : "") + o.ref.name) + '</li>').join("");
    const more = changed.length > 12 ? '<li class="when">… and ' + (changed.length - 12) + ' more</li>' : "";
    return '<li class="' + esc(e.outcome) + '"><div><b class="' + esc(e.outcome) + '">' + esc(e.outcome) + '</b> <span class="rev">' + esc(short(e.revision)) + '</span> <span class="when">' + esc(ago(e.startedAt)) + ' · ' + esc(e.trigger) + (e.reason && e.reason !== "Succeeded" ? " · " + esc(e.reason) : "") + '</span></div>' +
      (e.commit ? '<div class="when">' + esc((e.commit.message || "").split("\n")[0]) + ' — ' + esc(e.commit.author) + '</div>' : "") +
      (e.outcome === "Failed" && e.message ? '<div class="err">' + esc(e.message) + '</div>' : "") +
      (changed.length ? '<ul class="objs">' + objs + more + '</ul>' : e.outcome === "Failed" ? "" : '<div class="when">no changes</div>') +
      (e.verified ? '<div class="when verified">' + esc(verifiedLine(e)) + '</div>' : "") + '</li>';
  }).join("") + '</ol>';
}
// The no-op resyncs folded into an entry, as one line: "verified 1,440× since 09:00, healthy" (local time).
function verifiedLine(e) {
  const v = e.verified, first = new Date(v.firstAt), last = new Date(v.lastAt);
  const hm = first.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const since = first.toDateString() === last.toDateString() ? hm : first.toLocaleDateString() + " " + hm;
  const tail = e.outcome !== "Succeeded" ? ", failed" : v.health === "Current" ? ", healthy" : v.health ? ", " + v.health : "";
  return (e.outcome === "Succeeded" ? "verified " : "repeated ") + v.count.toLocaleString("en-US") + "× since " + since + tail;
}
function driftBadge(a) {
  if (!a.drift || !a.drift.recent) return "";
  return '<span class="badge drift Drift" title="out-of-band changes in the last 24h">drift ' + esc(String(a.drift.recent)) + '</span>';
}
function driftLine(a) {
  if (!a.drift) return "";
  const d = a.drift;
  const text = d.recent ? d.recent + " in 24h (" + d.healed + " healed, " + d.alerted + " alerted, " + d.failed + " failed), last " + ago(d.lastAt) : "none in 24h";
  return '<dt>drift</dt><dd class="drift-line">' + esc(text) + '</dd>';
}
function card(a, tl) {
  const err = a.lastError ? '<div class="err"><b>' + esc(a.lastError.reason) + '</b> ' + esc(a.lastError.message) + '</div>' : "";
  return '<section class="app" data-app="' + esc(a.name) + '" data-sync="' + esc(a.syncStatus) + '">' +
    '<div class="top"><span class="name">' + esc(a.name) + '</span><span class="path">' + esc(a.path || ".") + '</span>' +
    '<span class="badges"><span class="badge sync ' + esc(a.syncStatus) + '">' + esc(a.syncStatus) + '</span><span class="badge ' + esc(a.healthStatus) + '">' + esc(a.healthStatus) + '</span>' + driftBadge(a) + '</span></div>' +
    '<dl><dt>applied</dt><dd>' + esc(short(a.revision.applied)) + '</dd><dt>in Git</dt><dd>' + esc(short(a.revision.seen)) + '</dd>' +
    '<dt>last attempt</dt><dd>' + esc(ago(a.lastAttemptAt)) + '</dd><dt>next</dt><dd>' + esc(a.nextAttemptAt ? ago(a.nextAttemptAt) : "—") + '</dd>' +
    driftLine(a) + (a.dependsOn.length ? '<dt>depends on</dt><dd>' + esc(a.dependsOn.join(", ")) + '</dd>' : "") + '</dl>' + err +
    '<div class="progress">' + esc(progress[a.name] || "") + '</div>' +
    '<details' + (openApps.has(a.name) ? " open" : "") + '><summary>History</summary>' + tl + '</details></section>';
}
// Previews of unmerged heads (previews: in berth.yaml): what a sync of each would do, found by dry-run.
function previewCard(p) {
  const title = (p.pr !== undefined ? "#" + p.pr + " " : "") + p.ref;
  const subject = p.commit ? (p.commit.message || "").split("\n")[0] + " — " + p.commit.author : "";
  const apps = p.apps.map((a) => {
    const changed = a.objects.filter((o) => o.action !== "unchanged");
    const objs = changed.slice(0, 12).map((o) => '<li><span class="act">' + esc(o.action) + '</span>' + esc(o.subject) + (o.note ? ' <span class="when">' + esc(o.note) + '</span>' : "") + '</li>').join("");
    const more = changed.length > 12 ? '<li class="when">… and ' + (changed.length - 12) + ' more</li>' : "";
    const why = a.blocked || (a.errors.length ? a.errors.map((e) => e.subject + ": " + e.message).join("; ") : "");
    return '<div class="preview-app" data-app="' + esc(a.app) + '"><b>' + esc(a.app) + '</b> <span class="badge ' + esc(a.outcome) + '">' + esc(a.outcome) + '</span> <span class="summary">' + esc(a.summary) + '</span>' +
      (why ? '<div class="err">' + esc(why) + '</div>' : "") + (changed.length ? '<ul class="objs">' + objs + more + '</ul>' : "") + '</div>';
  }).join("");
  return '<section class="app preview" data-ref="' + esc(p.ref) + '"><div class="top"><span class="name">' + esc(title) + '</span><span class="path">' + esc(short(p.revision)) + '</span><span class="badges"><span class="when">' + esc(ago(p.at)) + '</span></span></div>' +
    (subject ? '<div class="when">' + esc(subject) + '</div>' : "") + (p.error ? '<div class="err"><b>FetchFailed</b> ' + esc(p.error) + '</div>' : "") + apps + '</section>';
}
async function previewsSection() {
  const r = await api("/api/v1/previews").catch(() => undefined);
  if (!r || !r.enabled) return "";
  const head = '<h2 class="previews">Previews of unmerged changes</h2>' + (r.error ? '<div class="banner">Cannot list the refs to preview: ' + esc(r.error) + '</div>' : "");
  return head + (r.previews.length ? r.previews.map(previewCard).join("") : '<div class="empty">No ref to preview.</div>');
}
const openApps = new Set();
let busy = false, again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    document.querySelectorAll("details[open]").forEach((d) => openApps.add(d.closest(".app").dataset.app));
    const { apps, failingDeliveries } = await api("/api/v1/apps");
    const [tls, previews] = await Promise.all([Promise.all(apps.map((a) => timeline(a.name))), previewsSection()]);
    const git = apps[0] && apps[0].git;
    let banner = git && !git.reachable ? '<div class="banner">Source unreachable since ' + esc(git.unreachableSince) + ': ' + esc(git.error) + ' — the last good revision stays applied.</div>' : "";
    for (const f of failingDeliveries || [])
      banner += '<div class="banner delivery">Deliveries to ' + esc(f.receiver) + ' failing since ' + esc(f.since) + ' (' + f.pending + ' waiting, ' + f.attempts + ' attempts): ' + esc(f.lastError) + ' — retried with backoff; syncs go on.</div>';
    $("#main").innerHTML = banner + (apps.length ? apps.map((a, i) => card(a, tls[i])).join("") : '<div class="empty">No apps configured.</div>') + previews;
  } catch (e) { if (String(e.message) !== "unauthorized") console.error(e); }
  finally { busy = false; if (again) { again = false; refresh(); } }
}
let timer;
const soon = () => { clearTimeout(timer); timer = setTimeout(refresh, 150); };
async function listen() {
  for (;;) {
    try {
      const r = await fetch("/api/v1/events", { headers: headers() });
      if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
      $("#dot").className = "dot on"; $("#livetext").textContent = "live";
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch (e) {}
    $("#dot").className = "dot"; $("#livetext").textContent = "reconnecting…";
    await new Promise((r) => setTimeout(r, 2000));
  }
}
function onEvent(e) {
  if (!e.app) return;
  if (e.type === "started") progress[e.app] = "syncing " + short(e.revision) + "…";
  else if (e.type === "stage") progress[e.app] = e.stage + "…";
  else if (e.type === "waiting") progress[e.app] = "waiting for " + e.pending.length + " object(s) to become healthy";
  else if (e.type === "finished") { progress[e.app] = ""; soon(); return; }
  const el = document.querySelector('.app[data-app="' + CSS.escape(e.app) + '"] .progress');
  if (el) el.textContent = progress[e.app];
}
refresh(); listen(); setInterval(refresh, 30000);
</script>
</body>
</html>
`;
