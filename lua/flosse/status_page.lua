--- flosse.status_page: the HTML of the live status page (flosse.status).
-- One self-contained document: inline style and script, no font, image or
-- script from elsewhere (the view's Content-Security-Policy forbids them).
-- It opens an EventSource on its own address, query string included, so a
-- ?token= credential goes with the stream too. Everything from the stream
-- (channel names above all, which clients choose) is put in with
-- textContent or SVG attributes, never as HTML.
return {
  html = [==[
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flosse status</title>
<style>
  :root { --fg: #1d2430; --muted: #6a7383; --line: #d9dde3; --bg: #f6f7f9; --card: #fff; --accent: #2a6fdb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 1.2em; padding: .8em 1.2em; background: var(--card);
           border-bottom: 1px solid var(--line); flex-wrap: wrap; }
  header h1 { font-size: 1.2em; margin: 0; }
  header span { color: var(--muted); }
  header b { color: var(--fg); font-weight: 600; }
  #state { margin-left: auto; padding: .1em .6em; border-radius: 1em; color: #fff; background: #999; }
  #state.live { background: #2e9d4f; }
  #state.reconnecting { background: #d08a1a; }
  #state.closed { background: #c23b3b; }
  #state.stopped { background: #5a6270; }
  main { padding: 1em 1.2em; display: grid; gap: 1em; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6em .8em; }
  section h2 { font-size: 1em; margin: 0 0 .3em; display: flex; justify-content: space-between; }
  section h2 output { font-variant-numeric: tabular-nums; color: var(--accent); }
  svg { width: 100%; height: 170px; display: block; }
  svg .axis { stroke: var(--line); }
  svg text { font-size: 10px; fill: var(--muted); }
  svg .series { fill: none; stroke: var(--accent); stroke-width: 1.5; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .2em .4em; border-bottom: 1px solid var(--line); }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  td.name { word-break: break-all; font-family: ui-monospace, monospace; }
  #empty { color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1>flosse status</h1>
  <span>version <b id="version">-</b></span>
  <span>uptime <b id="uptime">-</b></span>
  <span>workers <b id="workers">-</b></span>
  <span>reloads <b id="reloads">-</b></span>
  <span>Redis <b id="redis">-</b></span>
  <span id="state" class="connecting">connecting</span>
</header>
<main>
  <section><h2>Connections <output id="connections-now">-</output></h2><svg id="chart-connections"></svg></section>
  <section><h2>Streams <output id="streams-now">-</output></h2><svg id="chart-streams"></svg></section>
  <section><h2>Events/s <output id="events-now">-</output></h2><svg id="chart-events"></svg></section>
  <section><h2>Deliveries/s <output id="deliveries-now">-</output></h2><svg id="chart-deliveries"></svg></section>
  <section>
    <h2>Channels <output id="channels-now">-</output></h2>
    <table>
      <thead><tr><th>Channel</th><th class="n">Subscribers</th></tr></thead>
      <tbody id="channels"></tbody>
    </table>
    <p id="empty">No channel has subscribers.</p>
  </section>
</main>
<script>
"use strict";
(function () {
  var NS = "http://www.w3.org/2000/svg";
  var CHARTS = [
    { key: "connections", id: "chart-connections", out: "connections-now" },
    { key: "streams", id: "chart-streams", out: "streams-now" },
    { key: "events_per_s", id: "chart-events", out: "events-now" },
    { key: "deliveries_per_s", id: "chart-deliveries", out: "deliveries-now" }
  ];
  var interval = 1, keep = 300, points = [];

  function $(id) { return document.getElementById(id); }
  function text(id, v) { $(id).textContent = String(v); }
  function fmt(v) {
    if (typeof v !== "number") return "-";
    if (v >= 100 || v === Math.floor(v)) return String(Math.round(v));
    return v.toFixed(v >= 10 ? 1 : 2);
  }
  function duration(s) {
    s = Math.floor(s);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (s % 60) + "s";
    return s + "s";
  }
  // A round upper bound for the y axis: 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    parent.appendChild(e);
    return e;
  }

  function draw(chart) {
    var svg = $(chart.id);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var W = svg.clientWidth || 500, H = svg.clientHeight || 170;
    var L = 42, R = 8, T = 8, B = 20, w = W - L - R, h = H - T - B;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var now = points.length ? points[points.length - 1].t : Date.now() / 1000;
    var span = keep * interval, t0 = now - span;
    var max = 0, n = 0;
    points.forEach(function (p) { if (typeof p[chart.key] === "number" && p[chart.key] > max) max = p[chart.key]; });
    var ymax = niceMax(max);
    for (var i = 0; i <= 4; i++) {
      var y = T + h - h * i / 4;
      el("line", { x1: L, x2: L + w, y1: y, y2: y, "class": "axis" }, svg);
      el("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, svg).textContent = fmt(ymax * i / 4);
    }
    el("line", { x1: L, x2: L, y1: T, y2: T + h, "class": "axis" }, svg);
    for (var j = 0; j <= 4; j++) {
      var ago = span * (4 - j) / 4;
      var label = j === 4 ? "now" : "-" + (ago >= 120 ? fmt(ago / 60) + "m" : fmt(ago) + "s");
      el("text", { x: L + w * j / 4, y: H - 5, "text-anchor": j === 0 ? "start" : j === 4 ? "end" : "middle" },
        svg).textContent = label;
    }
    // One path, broken where samples are missing (no status stream was open).
    var d = "", prev = null;
    points.forEach(function (p) {
      var v = p[chart.key];
      if (typeof v !== "number" || p.t < t0) { prev = null; return; }
      var x = L + w * (p.t - t0) / span, y = T + h - h * v / ymax;
      d += (prev !== null && p.t - prev <= 3 * interval ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      prev = p.t;
      n++;
    });
    el("path", { d: d || "M0 0", "class": "series" }, svg);
    svg.setAttribute("data-points", n);
  }

  function drawAll() { CHARTS.forEach(draw); }

  function figures(s) {
    text("version", s.version);
    text("uptime", duration(s.uptime));
    text("workers", s.workers);
    text("reloads", s.reloads_ok + " ok, " + s.reloads_failed + " failed");
    text("redis", s.redis);
    text("connections-now", fmt(s.connections));
    text("streams-now", fmt(s.streams));
    if (typeof s.events_per_s === "number") text("events-now", fmt(s.events_per_s));
    if (typeof s.deliveries_per_s === "number") text("deliveries-now", fmt(s.deliveries_per_s));
    text("channels-now", s.channels + " channels, " + s.subscribers + " subscribers");
    var body = $("channels"), list = Array.isArray(s.busiest) ? s.busiest : [];
    while (body.firstChild) body.removeChild(body.firstChild);
    list.forEach(function (c) {
      var tr = document.createElement("tr");
      var name = document.createElement("td"), subs = document.createElement("td");
      name.className = "name"; subs.className = "n";
      name.textContent = c.name;
      subs.textContent = String(c.subscribers);
      tr.appendChild(name); tr.appendChild(subs);
      body.appendChild(tr);
    });
    $("empty").hidden = list.length > 0;
  }

  function state(name) { var e = $("state"); e.className = name; e.textContent = name; }

  function add(p) {
    if (points.length && p.t <= points[points.length - 1].t) return;
    points.push(p);
    if (points.length > keep) points.splice(0, points.length - keep);
  }

  var stopAfter = Number(new URLSearchParams(location.search).get("samples")) || 0;
  var source = new EventSource(location.pathname + location.search);
  source.onopen = function () { state("live"); };
  source.onerror = function () {
    state(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  };
  source.addEventListener("history", function (e) {
    var h = JSON.parse(e.data);
    interval = h.interval; keep = h.history;
    points = [];
    (Array.isArray(h.samples) ? h.samples : []).forEach(add);
    figures(h.current);
    drawAll();
    document.body.setAttribute("data-history", String(points.length));
  });
  source.addEventListener("sample", function (e) {
    var s = JSON.parse(e.data);
    add(s);
    figures(s);
    drawAll();
    var n = Number(document.body.getAttribute("data-samples") || 0) + 1;
    document.body.setAttribute("data-samples", String(n));
    // ?samples=N: stop after N samples, so that a headless browser (a test,
    // a screenshot) sees the page go idle.
    if (stopAfter > 0 && n >= stopAfter) { source.close(); state("stopped"); }
  });
  window.addEventListener("resize", drawAll);
  drawAll();
})();
</script>
</body>
</html>
]==],
}
