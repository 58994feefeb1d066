/**
 * The live operator page (GET /admin): one self-contained HTML document, no framework, no third-party
 * script, nothing fetched but the live view (GET /api/v2/admin/coupons/{couponId}/live). The admin token is
 * typed into the page, kept in the tab's sessionStorage and sent as an Authorization header: never in a
 * URL, a cookie or a log. The coupon id is in the URL's fragment, so a view can be bookmarked or shared.
 *
 * The Content-Security-Policy allows exactly this page's own script and style (by hash) and requests to
 * its own origin.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: dark; --bg: #0f1115; --panel: #171a21; --line: #262b36; --text: #e6e8ee; --dim: #8b93a7;
  --accepted: #3ecf8e; --already: #5b9cff; --soldout: #f5a524; --notopen: #9aa4b8; --ended: #6b7385;
  --ratelimited: #b57bff; --notfound: #64748b; --unavailable: #ff5d5d; --issued: #5b9cff; --sold: #3ecf8e; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: center; gap: 12px; padding: 14px 24px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 16px; margin: 0; font-weight: 600; }
header .grow { flex: 1; }
.dot { width: 9px; height: 9px; border-radius: 50%; background: var(--dim); display: inline-block; }
.dot.live { background: var(--accepted); box-shadow: 0 0 8px var(--accepted); }
.dot.down { background: var(--unavailable); }
main { padding: 20px 24px 40px; max-width: 1280px; margin: 0 auto; }
form.watch { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; }
label { display: grid; gap: 4px; color: var(--dim); font-size: 12px; }
input { background: var(--panel); border: 1px solid var(--line); color: var(--text); border-radius: 6px; padding: 8px 10px; font: inherit; min-width: 220px; }
button { background: #2b63d9; color: white; border: 0; border-radius: 6px; padding: 9px 16px; font: inherit; cursor: pointer; }
button.secondary { background: transparent; border: 1px solid var(--line); color: var(--dim); }
.message { margin: 12px 0; padding: 10px 14px; border-radius: 6px; background: #2a1d1d; border: 1px solid #5a2a2a; }
.message.info { background: #1b2230; border-color: #2c3a55; }
.hidden { display: none !important; }
.title { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; margin: 18px 0 12px; }
.title h2 { margin: 0; font-size: 22px; }
.pill { padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; letter-spacing: .04em; background: var(--line); }
.pill.OPEN { background: #163d2c; color: var(--accepted); } .pill.SOLD_OUT { background: #3d2e12; color: var(--soldout); }
.pill.FINISHED { background: #16284a; color: var(--already); } .pill.SCHEDULED, .pill.ENDED { color: var(--notopen); }
.when { color: var(--dim); }
.progress { position: relative; height: 14px; background: var(--panel); border: 1px solid var(--line); border-radius: 7px; overflow: hidden; margin: 6px 0 4px; }
.progress .sold { position: absolute; inset: 0 auto 0 0; background: var(--sold); opacity: .35; }
.progress .issued { position: absolute; inset: 0 auto 0 0; background: var(--issued); }
.legend { color: var(--dim); font-size: 12px; display: flex; gap: 16px; flex-wrap: wrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(135px, 1fr)); gap: 10px; margin: 16px 0; }
.tile { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.tile .label { color: var(--dim); font-size: 12px; }
.tile .value { font-size: 26px; font-weight: 600; font-variant-numeric: tabular-nums; margin-top: 2px; }
.tile .sub { color: var(--dim); font-size: 12px; font-variant-numeric: tabular-nums; }
.tile.alert { border-color: var(--unavailable); } .tile.alert .value { color: var(--unavailable); }
h3 { font-size: 13px; color: var(--dim); font-weight: 600; margin: 22px 0 8px; text-transform: uppercase; letter-spacing: .06em; }
.rates .tile .value { font-size: 22px; }
.chart { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
.chart svg { width: 100%; height: 220px; display: block; }
.charts { display: grid; grid-template-columns: 2fr 1fr; gap: 10px; }
@media (max-width: 900px) { .charts { grid-template-columns: 1fr; } }
footer { color: var(--dim); font-size: 12px; margin-top: 18px; }
`;

const SCRIPT = `
(() => {
  'use strict';
  const OUTCOMES = [
    ['ACCEPTED', 'Accepted', 'accepted'], ['ALREADY_ACCEPTED', 'Already accepted', 'already'],
    ['SOLD_OUT', 'Sold out', 'soldout'], ['NOT_OPEN', 'Not open', 'notopen'], ['ENDED', 'Ended', 'ended'],
    ['RATE_LIMITED', 'Rate limited', 'ratelimited'], ['COUPON_NOT_FOUND', 'Not found', 'notfound'],
    ['UNAVAILABLE', 'Failed (503/500)', 'unavailable'],
  ];
  const WINDOW_MS = 5 * 60 * 1000;
  const POLL_MS = 500;
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat('en-US');
  const state = { token: sessionStorage.getItem('fcfs-admin-token') || '', couponId: '', history: [], last: null, timer: 0, seq: 0, lastOkAt: 0 };

  function color(name) { return getComputedStyle(document.documentElement).getPropertyValue('--' + name).trim(); }
  function setMetric(name, value, text) {
    const el = document.querySelector('[data-metric="' + name + '"]');
    if (!el) return;
    el.dataset.value = String(value);
    el.textContent = text !== undefined ? text : number.format(value);
  }
  function duration(ms) {
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
    return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
  }
  function show(el, visible) { el.classList.toggle('hidden', !visible); }
  function message(text, info) {
    const el = $('message');
    el.textContent = text || '';
    el.classList.toggle('info', !!info);
    show(el, !!text);
  }
  function connection(kind) {
    $('dot').className = 'dot ' + kind;
    $('connection').textContent = kind === 'live' ? 'live' : kind === 'down' ? 'reconnecting' : 'idle';
  }

  function buildTiles() {
    const rates = $('rates');
    for (const [key, label, css] of OUTCOMES) {
      const tile = document.createElement('div');
      tile.className = 'tile';
      tile.innerHTML = '<div class="label"><span class="swatch"></span></div><div class="value">0</div><div class="sub"></div>';
      tile.querySelector('.swatch').setAttribute('data-color', css);
      tile.querySelector('.label').append(label + ' /s');
      tile.querySelector('.value').setAttribute('data-metric', 'rate-' + key);
      tile.querySelector('.sub').setAttribute('data-metric', 'total-' + key);
      rates.append(tile);
    }
    for (const el of document.querySelectorAll('[data-color]')) el.style.background = color(el.getAttribute('data-color'));
  }

  function fromHash() {
    const match = /coupon=([^&]+)/.exec(location.hash);
    return match ? decodeURIComponent(match[1]) : '';
  }

  function start(couponId) {
    state.couponId = couponId;
    state.history = [];
    state.last = null;
    state.seq += 1;
    history.replaceState(null, '', '#coupon=' + encodeURIComponent(couponId));
    $('coupon-input').value = couponId;
    show($('view'), false);
    message('Loading ' + couponId + '...', true);
    clearTimeout(state.timer);
    poll(state.seq);
  }

  async function poll(seq) {
    if (seq !== state.seq) return;
    const startedAt = Date.now();
    try {
      const response = await fetch('api/v2/admin/coupons/' + encodeURIComponent(state.couponId) + '/live', {
        headers: { authorization: 'Bearer ' + state.token }, cache: 'no-store',
      });
      if (seq !== state.seq) return;
      const body = await response.json().catch(() => ({}));
      if (response.status === 401 || response.status === 403) {
        signOut(body.message || 'The admin token was refused.');
        return;
      }
      if (response.status === 404) {
        show($('view'), false);
        message(body.message || 'There is no such coupon.');
        connection('idle');
        return;
      }
      if (!response.ok) throw new Error(body.message || ('HTTP ' + response.status));
      state.lastOkAt = Date.now();
      connection('live');
      message('');
      render(body);
    } catch (error) {
      connection('down');
      message('Cannot read the live view (' + (error && error.message ? error.message : error) + '); retrying. The numbers below are from ' + (state.lastOkAt ? new Date(state.lastOkAt).toLocaleTimeString() : 'no reading yet') + '.');
    }
    if (seq === state.seq) state.timer = setTimeout(() => poll(seq), Math.max(0, POLL_MS - (Date.now() - startedAt)));
  }

  function render(view) {
    const at = Date.parse(view.readAt);
    const previous = state.last;
    const sold = view.totalQuantity - view.remaining;
    if (!previous || at > previous.at) {
      state.history.push({ at, decisions: view.decisions, sold, issued: view.issued, queued: view.queued + view.inflight });
      while (state.history.length > 2 && state.history[0].at < at - WINDOW_MS) state.history.shift();
      state.last = { at, view };
    }
    show($('view'), true);
    $('name').textContent = view.name;
    $('coupon-id').textContent = view.couponId;
    const pill = $('status');
    pill.textContent = view.status.replace('_', ' ');
    pill.className = 'pill ' + view.status;
    pill.dataset.value = view.status;
    $('when').textContent = 'opens ' + new Date(view.startsAt).toLocaleString() + (view.endsAt ? ' · ends ' + new Date(view.endsAt).toLocaleString() : ' · until sold out');
    $('bar-sold').style.width = (100 * sold / Math.max(1, view.totalQuantity)) + '%';
    $('bar-issued').style.width = (100 * view.issued / Math.max(1, view.totalQuantity)) + '%';
    setMetric('sold', sold, number.format(sold) + ' of ' + number.format(view.totalQuantity) + ' sold');
    setMetric('remaining', view.remaining);
    setMetric('queued', view.queued);
    setMetric('inflight', view.inflight);
    setMetric('issued', view.issued);
    setMetric('deadLettered', view.deadLettered);
    $('tile-dead').classList.toggle('alert', view.deadLettered > 0);
    setMetric('oldestQueued', view.oldestQueuedMs, view.queued > 0 ? duration(view.oldestQueuedMs) : '—');
    const lag = view.persistLag;
    setMetric('persistLag', lag ? lag.p99Ms : 0, lag ? duration(lag.p99Ms) : '—');
    $('lag-sub').textContent = lag ? 'p50 ' + duration(lag.p50Ms) + ' · max ' + duration(lag.maxMs) + ' · ' + new Date(lag.at).toLocaleTimeString() : 'no batch written yet';
    setMetric('throttled', view.drain.throttled);
    $('tile-throttled').classList.toggle('alert', view.drain.throttled > 0);
    setMetric('withoutRedis', view.answeredWithoutRedis);
    const rates = ratesNow();
    for (const [key] of OUTCOMES) {
      setMetric('rate-' + key, rates[key], number.format(Math.round(rates[key])));
      setMetric('total-' + key, view.decisions[key], number.format(view.decisions[key]) + ' in all');
    }
    $('footer').textContent = 'Read at ' + new Date(at).toLocaleTimeString() + ' (Redis time), shared by everyone watching for 1 s. ' +
      view.containers.recent + ' of ' + view.containers.reported + ' containers reported in the last 10 s; their answers reach this page within about a second. ' +
      'Drains: ' + number.format(view.drain.redelivered) + ' redelivered, ' + number.format(view.drain.rejected) + ' rejected by the ledger cap, ' + number.format(view.drain.stale) + ' stale. ' +
      view.shards + (view.shards === 1 ? ' shard.' : ' shards.') + (view.shardsWithoutState > 0 ? ' ' + view.shardsWithoutState + ' without state in Redis (being restored): their counts are missing.' : '');
    drawDecisions();
    drawProgress(view.totalQuantity);
  }

  /** Decisions per second by outcome, between the two latest distinct readings at least a second apart. */
  function ratesNow() {
    const rates = {};
    for (const [key] of OUTCOMES) rates[key] = 0;
    const h = state.history;
    if (h.length < 2) return rates;
    const newest = h[h.length - 1];
    let older = h[h.length - 2];
    for (let i = h.length - 2; i >= 0 && newest.at - h[i].at < 1000; i--) older = h[Math.max(0, i - 1)];
    const seconds = (newest.at - older.at) / 1000;
    if (seconds <= 0) return rates;
    for (const [key] of OUTCOMES) rates[key] = Math.max(0, (newest.decisions[key] - older.decisions[key]) / seconds);
    return rates;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svgEl(name, attributes) {
    const el = document.createElementNS(SVG, name);
    for (const key in attributes) el.setAttribute(key, attributes[key]);
    return el;
  }
  function axes(svg, width, height, maxY, label) {
    for (let i = 0; i <= 4; i++) {
      const y = height - 20 - (height - 30) * i / 4;
      svg.append(svgEl('line', { x1: 40, x2: width, y1: y, y2: y, stroke: color('line') }));
      const text = svgEl('text', { x: 36, y: y + 4, 'text-anchor': 'end', fill: color('dim'), 'font-size': 10 });
      text.textContent = number.format(Math.round(maxY * i / 4));
      svg.append(text);
    }
    const caption = svgEl('text', { x: width, y: height - 4, 'text-anchor': 'end', fill: color('dim'), 'font-size': 10 });
    caption.textContent = label;
    svg.append(caption);
  }
  /** The charts span what the page has seen, from one minute up to the last five. */
  function span() {
    const h = state.history;
    return h.length < 2 ? 60000 : Math.min(WINDOW_MS, Math.max(60000, h[h.length - 1].at - h[0].at));
  }
  function scaleX(at, now, width) { return 40 + (width - 40) * (1 - (now - at) / span()); }

  function drawDecisions() {
    const svg = $('chart-decisions');
    const width = svg.clientWidth || 800, height = 220;
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.replaceChildren();
    const h = state.history;
    const points = [];
    for (let i = 1; i < h.length; i++) {
      const seconds = (h[i].at - h[i - 1].at) / 1000;
      if (seconds <= 0) continue;
      const rates = OUTCOMES.map(([key]) => Math.max(0, (h[i].decisions[key] - h[i - 1].decisions[key]) / seconds));
      points.push({ at: h[i].at, rates });
    }
    const maxY = Math.max(1, ...points.map((p) => p.rates.reduce((a, b) => a + b, 0)));
    axes(svg, width, height, maxY, 'decisions per second, last ' + Math.round(span() / 60000) + ' min');
    if (points.length === 0) return;
    const now = h[h.length - 1].at;
    const y = (v) => height - 20 - (height - 30) * v / maxY;
    let base = points.map(() => 0);
    OUTCOMES.forEach(([, , css], k) => {
      const top = points.map((p, i) => base[i] + p.rates[k]);
      if (top.every((v, i) => v === base[i])) return;
      let d = '';
      points.forEach((p, i) => { d += (i ? 'L' : 'M') + scaleX(p.at, now, width).toFixed(1) + ',' + y(top[i]).toFixed(1); });
      for (let i = points.length - 1; i >= 0; i--) d += 'L' + scaleX(points[i].at, now, width).toFixed(1) + ',' + y(base[i]).toFixed(1);
      svg.append(svgEl('path', { d: d + 'Z', fill: color(css), 'fill-opacity': 0.75, stroke: 'none' }));
      base = top;
    });
  }

  function drawProgress(total) {
    const svg = $('chart-progress');
    const width = svg.clientWidth || 400, height = 220;
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.replaceChildren();
    axes(svg, width, height, total, 'sold and persisted');
    const h = state.history;
    if (h.length === 0) return;
    const now = h[h.length - 1].at;
    const y = (v) => height - 20 - (height - 30) * v / Math.max(1, total);
    for (const [field, css] of [['sold', 'sold'], ['issued', 'issued']]) {
      const d = h.map((p, i) => (i ? 'L' : 'M') + scaleX(p.at, now, width).toFixed(1) + ',' + y(p[field]).toFixed(1)).join('');
      svg.append(svgEl('path', { d, fill: 'none', stroke: color(css), 'stroke-width': 2 }));
    }
  }

  function signOut(reason) {
    state.seq += 1;
    clearTimeout(state.timer);
    state.token = '';
    sessionStorage.removeItem('fcfs-admin-token');
    show($('view'), false);
    show($('token-label'), true);
    show($('sign-out'), false);
    connection('idle');
    message(reason || '');
  }

  function init() {
    buildTiles();
    show($('token-label'), !state.token);
    show($('sign-out'), !!state.token);
    $('watch').addEventListener('submit', (event) => {
      event.preventDefault();
      const token = $('token-input').value.trim();
      if (token) {
        state.token = token;
        sessionStorage.setItem('fcfs-admin-token', token);
        $('token-input').value = '';
        show($('token-label'), false);
        show($('sign-out'), true);
      }
      const couponId = $('coupon-input').value.trim();
      if (!state.token) return message('Enter the admin token.');
      if (!couponId) return message('Enter a coupon id.');
      start(couponId);
    });
    $('sign-out').addEventListener('click', () => signOut('Signed out.'));
    window.addEventListener('hashchange', () => { const id = fromHash(); if (id && id !== state.couponId && state.token) start(id); });
    const initial = fromHash();
    if (initial) $('coupon-input').value = initial;
    if (initial && state.token) start(initial);
    else message('Enter the admin token and a coupon id to watch it live.', true);
  }
  init();
})();
`;

const BODY = `
<header>
  <h1>fcfs-coupons · live</h1>
  <span class="dot" id="dot"></span><span id="connection" class="when">idle</span>
  <span class="grow"></span>
  <button type="button" class="secondary hidden" id="sign-out">Sign out</button>
</header>
<main>
  <form class="watch" id="watch" autocomplete="off">
    <label id="token-label">Admin token<input id="token-input" type="password" autocomplete="off" spellcheck="false"></label>
    <label>Coupon id<input id="coupon-input" type="text" spellcheck="false" placeholder="e.g. drop-2026-12-01"></label>
    <button type="submit">Watch</button>
  </form>
  <div id="message" class="message hidden" role="status"></div>
  <section id="view" class="hidden">
    <div class="title"><h2 id="name"></h2><span class="pill" id="status" data-testid="status"></span><span class="when" id="coupon-id"></span><span class="when" id="when"></span></div>
    <div class="progress"><div class="sold" id="bar-sold"></div><div class="issued" id="bar-issued"></div></div>
    <div class="legend"><span data-metric="sold"></span><span><span class="swatch" data-color="sold"></span>sold (accepted)</span><span><span class="swatch" data-color="issued"></span>persisted in the ledger</span></div>
    <div class="grid">
      <div class="tile"><div class="label">Remaining</div><div class="value" data-metric="remaining">0</div><div class="sub">units for sale</div></div>
      <div class="tile"><div class="label">Queued</div><div class="value" data-metric="queued">0</div><div class="sub">waiting for the drain</div></div>
      <div class="tile"><div class="label">In flight</div><div class="value" data-metric="inflight">0</div><div class="sub">being written</div></div>
      <div class="tile"><div class="label">Issued</div><div class="value" data-metric="issued">0</div><div class="sub">persisted in the ledger</div></div>
      <div class="tile" id="tile-dead"><div class="label">Dead letters</div><div class="value" data-metric="deadLettered">0</div><div class="sub">refused too often; requeue</div></div>
      <div class="tile"><div class="label">Persist lag p99</div><div class="value" data-metric="persistLag">—</div><div class="sub" id="lag-sub"></div></div>
      <div class="tile"><div class="label">Oldest queued</div><div class="value" data-metric="oldestQueued">—</div><div class="sub">waiting since</div></div>
      <div class="tile" id="tile-throttled"><div class="label">Ledger throttles</div><div class="value" data-metric="throttled">0</div><div class="sub">batches slowed down</div></div>
    </div>
    <h3>Decisions per second, by answer</h3>
    <div class="grid rates" id="rates"></div>
    <div class="legend"><span>Answered without Redis: <span data-metric="withoutRedis">0</span></span></div>
    <div class="charts">
      <div class="chart"><svg id="chart-decisions" role="img" aria-label="decisions per second"></svg></div>
      <div class="chart"><svg id="chart-progress" role="img" aria-label="sold and persisted"></svg></div>
    </div>
    <footer id="footer"></footer>
  </section>
</main>
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const OPERATOR_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>fcfs-coupons · live</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;

export const OPERATOR_PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};
