// steamer app's page: six screens over the server's JSON API and its live channel
// (/ws, one JSON event a message: status, scan, pair, link, history). No framework.
"use strict";

const $ = (id) => document.getElementById(id);
const SCREENS = ["nearby", "pair", "steamer", "course", "history", "profiles"];
const CHART_POINTS = 600;          // the live chart keeps the last minutes
const app = {
  screen: null, ws: null, status: null, device: null, pairing: null,
  live: { t: [], boiler: [], outlet: [] }, chart: null, t0: null, histCharts: [],
  // The course of the podlet in the steamer (GET /api/course), and what it was read for.
  course: null, courseKey: null,
  // Status-to-screen latency: ms from a status's sent_ms to the frame that shows it.
  latencies_ms: [],
};
window.steamerApp = app;

// ---- talking to the server -------------------------------------------------------------
async function api(method, path, body, headers) {
  const opts = { method, headers: headers || {} };
  if (body !== undefined && !(body instanceof ArrayBuffer)) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  } else if (body !== undefined) {
    opts.body = body;
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}

function openLive() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  app.ws = ws;
  ws.onopen = () => {
    setText("link", app.device ? `Connected to ${app.device}` : "Ready");
    if (app.screen === "nearby") ws.send(JSON.stringify({ type: "scan" }));
  };
  ws.onmessage = (m) => handle(JSON.parse(m.data));
  ws.onclose = () => {
    setText("link", "The app stopped answering: trying again…");
    setTimeout(openLive, 1000);   // the page keeps its place meanwhile
  };
}

function handle(ev) {
  if (ev.type === "status") showStatus(ev);
  else if (ev.type === "scan") showScan(ev);
  else if (ev.type === "pair") showPair(ev);
  else if (ev.type === "link") showLink(ev);
  else if (ev.type === "history") {
    if (app.screen === "history") loadHistory();
    loadCourse();     // a synced session moves the course on
  }
}

function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

// ---- screens -------------------------------------------------------------------------------
function go(screen, focus = true) {
  if (!SCREENS.includes(screen)) screen = "nearby";
  app.screen = screen;
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== screen;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.screen === screen) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (location.hash !== `#${screen}`) history.replaceState(null, "", `${location.search}#${screen}`);
  if (focus) $(`h-${screen}`).setAttribute("tabindex", "-1"), $(`h-${screen}`).focus();
  if (screen === "nearby") scan();
  if (screen === "history") loadHistory();
  if (screen === "profiles") loadProfiles();
  if (screen === "course") loadCourse();
  if (screen === "steamer" && app.chart) resizeChart();
}

window.addEventListener("hashchange", () => go(location.hash.slice(1)));

// ---- nearby steamers -------------------------------------------------------------------
function scan() {
  if (app.ws && app.ws.readyState === 1) app.ws.send(JSON.stringify({ type: "scan" }));
  else api("POST", "/api/scan").catch(() => {});
}

function signalWords(rssi) {
  if (rssi === null || rssi === undefined) return "signal unknown";
  const words = rssi >= -60 ? "strong" : rssi >= -75 ? "fair" : "weak";
  return `${words} signal (${rssi} dBm)`;
}

function showScan(ev) {
  const list = $("steamers");
  const rows = ev.steamers || [];
  setText("scan-note", ev.error ? ev.error : rows.length
    ? `${rows.length} steamer${rows.length === 1 ? "" : "s"} in range`
    : "No steamer heard yet: is it switched on and near?");
  const items = rows.map((r) => {
    const li = document.createElement("li");
    const h = document.createElement("h3");
    h.textContent = r.name || r.address;
    const p = document.createElement("p");
    const state = r.fault ? `fault (${r.fault})` : r.state || "state unknown";
    p.textContent = `${r.connected ? "connected" : r.paired ? "paired" : "not paired"} · ` +
      `${state} · ${signalWords(r.rssi)}`;
    const b = document.createElement("button");
    b.type = "button";
    if (r.connected) {
      b.textContent = "Open";
      b.onclick = () => go("steamer");
    } else if (r.paired) {
      b.textContent = `Connect to ${r.name || r.address}`;
      b.onclick = () => connect(r.address, r.name);
    } else {
      b.textContent = `Pair with ${r.name || r.address}`;
      b.onclick = () => pair(r.address, r.name);
    }
    li.append(h, p, b);
    li.dataset.address = r.address;
    return li;
  });
  // Redraw only when the list changed, so that keyboard focus stays where it was.
  const key = JSON.stringify(rows.map((r) => [r.address, r.name, r.paired, r.connected, r.state, r.fault]));
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.replaceChildren(...items);
  }
}

async function connect(address, name) {
  setText("scan-note", `Connecting to ${name || address}…`);
  try {
    await api("POST", "/api/connect", { address });
    app.device = name || address;
    go("steamer");
  } catch (e) {
    setText("scan-note", e.message);
  }
}

// ---- pairing -------------------------------------------------------------------------------
async function pair(address, name) {
  app.pairing = { address, name };
  setText("pair-name", name || address);
  setText("pair-result", "");
  setText("pair-phase", "Starting…");
  go("pair");
  try {
    await api("POST", "/api/pair", { address });
  } catch (e) {
    setText("pair-result", e.message);
  }
}

function showPair(ev) {
  if (!app.pairing || ev.address !== app.pairing.address) return;
  if (ev.left_s !== undefined) {
    // The countdown runs on between events (an exchange of keys sends none for ~10 s).
    app.pairing.deadline = Date.now() + ev.left_s * 1000;
    setText("pair-left", String(ev.left_s));
    if (!app.pairing.timer) {
      const p = app.pairing;
      p.timer = setInterval(() => {
        if (app.pairing !== p) return clearInterval(p.timer);
        setText("pair-left", String(Math.max(0, Math.round((p.deadline - Date.now()) / 1000))));
      }, 250);
    }
  }
  if (ev.phase === "paired" || ev.phase === "failed") {
    setText("pair-phase", ev.phase === "paired" ? "Paired." : "Not paired.");
    setText("pair-result", ev.text);
    const p = app.pairing;
    app.pairing = null;
    if (ev.phase === "paired") connect(p.address, p.name);
  } else {
    setText("pair-phase", ev.text);
  }
}

// ---- the steamer -----------------------------------------------------------------------
function showLink(ev) {
  if (ev.up) {
    app.device = ev.device;
    setText("link", `Connected to ${ev.device}` + (app.linkLost && app.linkLost === ev.device
      ? ` (the link dropped at ${new Date().toLocaleTimeString()} and came back)` : ""));
    app.linkLost = null;
  } else {
    if (!ev.closed) app.linkLost = ev.device;
    setText("link", ev.closed ? `Disconnected from ${ev.device}`
      : `Lost the link to ${ev.device}: reconnecting…`);
  }
}

function mmss(s) {
  if (s === null || s === undefined) return "–";
  s = Math.max(0, Math.round(s));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function showStatus(v) {
  app.status = v;
  app.device = v.device;
  $("st-none").hidden = true;
  $("st-body").hidden = false;
  setText("st-name", v.device);
  setText("st-state", v.state_text[0].toUpperCase() + v.state_text.slice(1));
  setText("st-boiler", v.boiler_c.toFixed(1));
  setText("st-outlet", v.outlet_c.toFixed(1));
  setText("st-target", v.target_c ? ` (target ${v.target_c} °C)` : "");
  setText("st-podlet", v.podlet_text[0].toUpperCase() + v.podlet_text.slice(1));
  $("st-fault").hidden = !v.fault;
  if (v.fault) {
    setText("st-fault-what", v.fault_text[0].toUpperCase() + v.fault_text.slice(1));
    setText("st-fault-todo", v.fault_todo);
  }
  const inSession = v.session_ul !== null;
  $("st-dose-box").hidden = !inSession;
  if (inSession) {
    const limit = v.limit_ul || 0;
    $("st-dose").max = Math.max(1, limit);
    $("st-dose").value = Math.min(v.session_ul, limit || v.session_ul);
    let text = `${v.session_ul} µl delivered`;
    if (limit && v.limit_exact) text += ` of ${limit} µl, ${mmss(v.dosing_left_s)} min left`;
    else if (limit) text += ` of up to ${limit} µl`;
    setText("st-dose-text", text);
  }
  const key = [v.device, v.podlet_type, v.profile, v.podlet_state].join("|");
  if (key !== app.courseKey) {
    app.courseKey = key;
    loadCourse();
  }
  app.inSession = inSession;
  updateStart();
  addPoint(v);
  if (v.sent_ms) {
    requestAnimationFrame(() => {
      app.latencies_ms.push(performance.timeOrigin + performance.now() - v.sent_ms);
    });
  }
}

function addPoint(v) {
  const t = v.sent_ms / 1000;
  if (app.t0 === null) app.t0 = t;
  const L = app.live;
  L.t.push(t - app.t0); L.boiler.push(v.boiler_c); L.outlet.push(v.outlet_c);
  if (L.t.length > CHART_POINTS) { L.t.shift(); L.boiler.shift(); L.outlet.shift(); }
  if (!window.uPlot || app.screen !== "steamer") return;
  if (!app.chart) {
    app.chart = new uPlot(chartOpts($("st-chart"), "Temperatures", [
      { label: "Boiler °C", stroke: "#a4161a", width: 2 },
      { label: "Outlet °C", stroke: "#0f4c9c", width: 2 }]), [L.t, L.boiler, L.outlet], $("st-chart"));
  } else {
    app.chart.setData([L.t, L.boiler, L.outlet]);
  }
}

function chartOpts(el, title, series, extraScales) {
  return {
    title, width: Math.max(280, el.clientWidth || 320), height: 220,
    scales: Object.assign({ x: { time: false } }, extraScales || {}),
    axes: [{ label: "time (min:s)", values: (u, ticks) => ticks.map(mmss) },
      { label: "°C" }].concat(extraScales ? [{ scale: "ul", side: 1, label: "µl", grid: { show: false } }] : []),
    series: [{ label: "time", value: (u, v) => mmss(v) }].concat(series),
  };
}

function resizeChart() {
  const el = $("st-chart");
  app.chart.setSize({ width: Math.max(280, el.clientWidth), height: 220 });
}

// Start waits for the warnings step when the podlet's course asks for it.
function updateStart() {
  const v = app.status;
  if (!v) return;
  const c = app.course;
  const mustAck = !!(c && c.needs_ack && c.podlet_type === v.podlet_type);
  $("st-start").disabled = app.inSession || v.state === "cooldown" || v.state === "fault"
    || v.podlet_state !== "accepted" || mustAck;
  $("st-stop").disabled = !app.inSession;
  $("st-start-why").hidden = !mustAck;
  setText("st-start-why", mustAck ? "Start is possible once the warnings above are acknowledged." : "");
}

async function command(path) {
  setText("st-error", "");
  try {
    await api("POST", path);
  } catch (e) {
    setText("st-error", inApp(e.message));
    if (path === "/api/session/start") loadCourse();
  }
}

// A course refusal's words point at the command line; here the Course screen answers.
const COURSE_REFUSALS = {
  not_acknowledged: "the podlet's warnings have not been acknowledged yet",
  course_spacing: "too soon after the last session of this course (Course says when the next is allowed)",
};

function inApp(message) {
  const m = /^(.* refused [^:]*): .*\((not_acknowledged|course_spacing)\)$/.exec(message);
  return m ? `${m[1]}: ${COURSE_REFUSALS[m[2]]}.` : message;
}

// ---- course --------------------------------------------------------------------------------
function day(s) {
  return new Date(s * 1000).toLocaleDateString(undefined,
    { weekday: "short", year: "numeric", month: "short", day: "numeric" });
}

function moment(s) {
  return new Date(s * 1000).toLocaleString(undefined,
    { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

async function loadCourse() {
  let c;
  try {
    c = await api("GET", "/api/course");
  } catch (e) {
    setText("co-note", e.message);
    return;
  }
  app.course = c;
  showCourse(c);
  showWarnStep(c);
  updateStart();
}

function courseNote(c) {
  if (!c.held) return "Connect to a steamer to see the course of the podlet in it.";
  if (!c.podlet_type) return "No podlet in the steamer: insert one to see its course.";
  if (!c.listed) return `The steamer has no profile for this podlet (type ${c.podlet_type}).`;
  const title = `${c.listed.name} v${c.listed.version}`;
  if (!c.known) return `The podlet runs ${title}: open its signed profile file below to see its course and warnings.`;
  if (!c.course) return `${title} is a single-session profile: it has no course.`;
  return `The course of the podlet in ${app.device || "the steamer"}.`;
}

function showCourse(c) {
  setText("co-note", courseNote(c));
  const v = c.course;
  $("co-body").hidden = !v;
  if (v) {
    setText("co-title", `${v.profile} v${v.version}`);
    setText("co-position", `Next: ${v.position}`);
    setText("co-allowed", v.next_allowed_s === null ? "now" : `from ${moment(v.next_allowed_s)}`);
    setText("co-recommended", v.next_recommended_s === null ? "nothing more planned"
      : v.done === 0 ? "now" : day(v.next_recommended_s));
    setText("co-last", v.last_s === null ? "none yet" : moment(v.last_s));
    setText("co-missed", v.missed.length ? v.missed.join("; ") : "nothing");
    setText("co-course", v.course_text);
    setText("co-pattern", v.pattern_text);
    const steps = [];
    for (let n = 1; n <= v.done; n++) steps.push([n, "done", `session ${n}${n > v.sessions ? " (maintenance)" : ""}: done`]);
    for (const p of v.plan) {
      const what = p.number <= v.sessions ? `session ${p.number} of ${v.sessions}` : `maintenance session ${p.number - v.sessions}`;
      const next = p.number === v.done + 1;
      steps.push([p.number, next ? "next" : "planned", `${what}: ${next ? "next, " : ""}${next && v.next_allowed_s !== null
        ? `allowed from ${moment(v.next_allowed_s)}, recommended ${day(p.epoch_s)}` : `planned ${day(p.epoch_s)}`}`]);
    }
    const key = JSON.stringify(steps);
    const ol = $("co-steps");
    if (ol.dataset.key !== key) {
      ol.dataset.key = key;
      ol.replaceChildren(...steps.slice(-12).map(([n, state, text]) => {
        const li = document.createElement("li");
        li.value = n; li.dataset.state = state; li.textContent = text;
        return li;
      }));
    }
    $("co-warnings").replaceChildren(...(v.warning_lines.length ? v.warning_lines : ["none"]).map((t) => {
      const li = document.createElement("li");
      li.textContent = t;
      return li;
    }));
    setText("co-ack", !v.acknowledge ? "These need no acknowledgement."
      : v.acknowledged_s !== null ? `You acknowledged them on ${moment(v.acknowledged_s)}.`
      : "To be acknowledged before the first session: on The steamer, before Start.");
    $("co-ics").href = `/api/course.ics?podlet_type=${v.podlet_type}`;
    $("co-ics").download = `${v.profile}.ics`;
  }
  const others = c.courses || [];
  $("co-others").replaceChildren(...(others.length ? [(() => {
    const h = document.createElement("h3");
    h.textContent = "Other courses known here";
    return h;
  })(), (() => {
    const ul = document.createElement("ul");
    ul.append(...others.map((o) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `/api/course.ics?podlet_type=${o.podlet_type}`;
      a.download = `${o.profile}.ics`;
      a.textContent = `its plan (.ics)`;
      a.setAttribute("aria-label", `The plan of ${o.profile} as a calendar file (.ics)`);
      li.append(`${o.profile} v${o.version}: next ${o.position}, ` +
        (o.next_allowed_s === null ? "allowed now" : `allowed from ${moment(o.next_allowed_s)}`) + " · ", a);
      return li;
    }));
    return ul;
  })()] : []));
}

function showWarnStep(c) {
  const v = c.course;
  const show = !!(v && c.needs_ack);
  $("st-warn").hidden = !show;
  // A refused start for warnings this app has no file of: say where to open it.
  $("st-warn-unknown").hidden = !(c.held && c.listed && !c.known &&
    /warnings have not been acknowledged/.test($("st-error").textContent));
  if (!show) return;
  if (/warnings have not been acknowledged/.test($("st-error").textContent)) setText("st-error", "");
  setText("st-warn-name", `${v.profile} v${v.version}`);
  const key = JSON.stringify(v.warning_lines);
  const ul = $("st-warn-list");
  if (ul.dataset.key !== key) {
    ul.dataset.key = key;
    ul.replaceChildren(...v.warning_lines.map((t) => {
      const li = document.createElement("li");
      li.textContent = t;
      return li;
    }));
  }
  $("st-warn-ack").disabled = !$("st-warn-read").checked;
}

async function acknowledge() {
  const v = app.course && app.course.course;
  if (!v || !$("st-warn-read").checked) return;
  setText("st-warn-result", "Sending the acknowledgement to the steamer…");
  try {
    const c = await api("POST", "/api/course/acknowledge",
      { podlet_type: v.podlet_type, version: v.version, read: true });
    setText("st-warn-result", "");
    setText("st-error", "");
    $("st-warn-read").checked = false;
    app.course = c;
    showCourse(c);
    showWarnStep(c);
    updateStart();
    setText("st-ack-done", `The warnings of ${v.profile} v${v.version} are acknowledged on ${app.device}: Start is possible.`);
  } catch (e) {
    setText("st-warn-result", e.message);
  }
}

async function openProfileFile(ev) {
  ev.preventDefault();
  const file = $("co-file").files[0];
  if (!file) return;
  setText("co-result", `Reading ${file.name}…`);
  try {
    const c = await api("POST", "/api/course/profile", await file.arrayBuffer(),
      { "Content-Type": "application/octet-stream", "X-Filename": file.name });
    setText("co-result", `Read ${file.name}.`);
    app.course = c;
    showCourse(c);
    showWarnStep(c);
    updateStart();
  } catch (e) {
    setText("co-result", e.message);
  }
}

// ---- history -------------------------------------------------------------------------------
function when(s) {
  if (!s.start_epoch_s) return "clock not set";
  return new Date(s.start_epoch_s * 1000).toLocaleString();
}

const ENDS = { completed: "completed", max_session: "reached its dose", stopped: "stopped",
  podlet_removed: "podlet taken out", fault: "fault", podlet_empty: "podlet used up",
  max_day: "day's limit reached", podlet_changed: "podlet changed",
  podlet_unreadable: "podlet unreadable", power_loss: "power cut", watchdog: "reset",
  reset: "reset" };

function sessionRow(s, label) {
  const tr = document.createElement("tr");
  const date = when(s);
  const cells = [label ? `${label} · ${date}` : date,
    s.profile || (s.podlet ? `podlet ${s.podlet}` : "–"),
    `${Math.round(s.dose_ul)} µl`, s.duration_ms === null ? "–" : `${mmss(s.duration_ms / 1000)} min`,
    s.end_reason ? (ENDS[s.end_reason] || s.end_reason) : "running"];
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.append(td);
  }
  const td = document.createElement("td");
  const show = document.createElement("button");
  show.type = "button"; show.className = "secondary";
  show.textContent = "Chart"; show.setAttribute("aria-label", `Chart of the session of ${date}`);
  show.onclick = () => showSession(s.id, date);
  const del = document.createElement("button");
  del.type = "button"; del.className = "secondary";
  del.textContent = "Delete"; del.setAttribute("aria-label", `Delete the session of ${date}`);
  del.disabled = !s.end_reason;
  del.onclick = async () => {
    if (!confirm(`Delete the session of ${date}?`)) return;
    try { await api("DELETE", `/api/sessions/${s.id}`); } catch (e) { setText("hist-note", e.message); }
    const fig = document.querySelector(`figure[data-session="${s.id}"]`);
    if (fig) fig.remove();
    loadHistory();
  };
  td.append(show, del);
  tr.append(td);
  tr.dataset.session = s.id;
  return tr;
}

// A course's heading row in the grouped history: what `steamer sessions --by-course` prints.
function courseHead(g) {
  const tr = document.createElement("tr");
  tr.className = "course-head";
  const th = document.createElement("th");
  th.scope = "rowgroup";
  th.colSpan = 6;
  const kind = g.podlet_type === null ? "" : ` (podlet type ${g.podlet_type})`;
  th.textContent = `Course ${g.profile || "without a profile"}${kind}: ${g.count} ` +
    `session${g.count === 1 ? "" : "s"}, ${Math.round(g.dose_ul)} µl`;
  tr.append(th);
  return tr;
}

async function loadHistory() {
  const byCourse = $("hist-by-course").checked;
  let data;
  try {
    data = await api("GET", byCourse ? "/api/sessions?by=course" : "/api/sessions");
  } catch (e) {
    setText("hist-note", e.message);
    return;
  }
  const rows = [];
  let count = 0;
  if (byCourse) {
    for (const g of data) {
      rows.push(courseHead(g));
      for (const s of g.sessions) rows.push(sessionRow(s, `${s.n} of the course`));
      count += g.sessions.length;
    }
  } else {
    for (const s of data) rows.push(sessionRow(s, ""));
    count = data.length;
  }
  setText("hist-caption", byCourse ? "Sessions by course, each course oldest first"
    : "Sessions, newest first");
  setText("hist-note", count ? `${count} session${count === 1 ? "" : "s"}` +
    (byCourse ? ` in ${data.length} course${data.length === 1 ? "" : "s"}` : "")
    : "No session yet: run one, and it shows here once the steamer has synced.");
  $("hist-table").tBodies[0].replaceChildren(...rows);
}

async function showSession(id, label) {
  const box = $("hist-charts");
  if (box.querySelector(`figure[data-session="${id}"]`)) return;
  const data = await api("GET", `/api/sessions/${id}`);
  const figs = box.querySelectorAll("figure");
  if (figs.length >= 2) figs[0].remove();      // two side by side at most
  const fig = document.createElement("figure");
  fig.dataset.session = id;
  const cap = document.createElement("figcaption");
  const csv = document.createElement("a");
  csv.href = `/api/sessions/${id}/csv`; csv.download = `session-${id}.csv`;
  csv.textContent = "Export this session as CSV";
  cap.append(`Session of ${label}: `, csv);
  const div = document.createElement("div");
  div.className = "chart";
  div.setAttribute("role", "img");
  div.setAttribute("aria-label", `Temperatures, heater and dose of the session of ${label}`);
  fig.append(cap, div);
  box.append(fig);
  const S = data.samples;
  const opts = chartOpts(div, `Session ${id}`, [
    { label: "Boiler °C", stroke: "#a4161a", width: 2 },
    { label: "Outlet °C", stroke: "#0f4c9c", width: 2 },
    { label: "Heater %", stroke: "#6a4c00", width: 1 },
    { label: "Dose µl", stroke: "#0b6e4f", width: 2, scale: "ul" }], { ul: {} });
  opts.hooks = { draw: [(u) => markPhases(u, data.phases)] };
  const u = new uPlot(opts, [S.t_s, S.boiler_c, S.outlet_c, S.heater_pct, S.dose_ul], div);
  app.histCharts = app.histCharts.filter((c) => c.div.isConnected).concat([{ u, div }]);
  const list = document.createElement("p");
  list.textContent = "Phases: " + data.phases.map((p) => `${p.phase} from ${mmss(p.t_s)}`).join(", ");
  fig.append(list);
}

// The session's phases as dashed lines with their names, over the plot.
function markPhases(u, phases) {
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = "#3d4f58"; ctx.fillStyle = "#1b262c";
  ctx.setLineDash([4, 4]); ctx.lineWidth = 1;
  ctx.font = `${Math.round(12 * devicePixelRatio)}px system-ui, sans-serif`;
  for (const p of phases) {
    const x = Math.round(u.valToPos(p.t_s, "x", true));
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.fillText(p.phase, x + 4, u.bbox.top + 14 * devicePixelRatio);
  }
  ctx.restore();
}

// ---- profiles ------------------------------------------------------------------------------
async function loadProfiles() {
  let rows;
  try {
    rows = await api("GET", "/api/profiles");
  } catch (e) {
    setText("prof-note", e.message);
    return;
  }
  setText("prof-note", rows.length ? `${rows.length} profile${rows.length === 1 ? "" : "s"} on ${app.device}`
    : `${app.device} has no profile yet`);
  $("prof-table").tBodies[0].replaceChildren(...rows.map((p) => {
    const tr = document.createElement("tr");
    for (const c of [p.podlet_type, p.name, p.version]) {
      const td = document.createElement("td");
      td.textContent = String(c);
      tr.append(td);
    }
    return tr;
  }));
}

async function pushProfile(ev) {
  ev.preventDefault();
  const file = $("prof-file").files[0];
  if (!file) return;
  setText("prof-result", `Installing ${file.name}…`);
  try {
    const r = await api("POST", "/api/profiles", await file.arrayBuffer(),
      { "Content-Type": "application/octet-stream", "X-Filename": file.name });
    setText("prof-result", `Installed ${r.installed}.`);
    loadProfiles();
  } catch (e) {
    setText("prof-result", e.message);
  }
}

// ---- start ---------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("scan-again").onclick = scan;
  $("pair-back").onclick = () => go("nearby");
  $("st-start").onclick = () => command("/api/session/start");
  $("st-stop").onclick = () => command("/api/session/stop");
  $("st-fault-ack").onclick = () => command("/api/fault/ack");
  $("prof-form").onsubmit = pushProfile;
  $("co-form").onsubmit = openProfileFile;
  $("st-warn-read").onchange = () => { $("st-warn-ack").disabled = !$("st-warn-read").checked; };
  $("hist-by-course").onchange = () => loadHistory();
  $("st-warn-ack").onclick = acknowledge;
  setInterval(() => { if (app.screen === "nearby") scan(); }, 10000);
  window.addEventListener("resize", () => {
    if (app.chart && app.screen === "steamer") resizeChart();
    for (const c of app.histCharts) c.u.setSize({ width: Math.max(280, c.div.clientWidth), height: 220 });
  });
  openLive();
  go(location.hash.slice(1) || "nearby", false);
});
