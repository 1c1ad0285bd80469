// app.js - the cq dashboard's behaviour: it polls the JSON API every second and redraws.
//
// Rule: every value that comes from Redis (job ids, args, results, errors, host names) goes
// into the document as text (textContent, or an attribute value), never as markup: an arg
// "<script>alert(1)</script>" shows as those characters and runs nothing. No innerHTML.
//
// Actions are POSTs with the header X-CQ-Action: 1, which the server requires (a cross-site
// form cannot send it), each behind the confirmation dialog.
'use strict';

const REFRESH_MS = 1000;
const PAGE = 50;
const $ = (id) => document.getElementById(id);

// ---- building the document -----------------------------------------------------------

// el('td', {className: 'num'}, 'text', child...): strings become text nodes.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'onclick') e.addEventListener('click', v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function fmt(n) {
  if (n === null || n === undefined) return '?';
  return Number(n).toLocaleString('en-US');
}

// A length of time as cqctl writes it: 250ms, 12.3s, 5m03s, 2h05m, 3d04h.
function span(s) {
  if (s < 0) s = 0;
  const v = Math.floor(s);
  if (s < 1) return Math.floor(s * 1000) + 'ms';
  if (s < 60) return s.toFixed(1) + 's';
  if (v < 3600) return Math.floor(v / 60) + 'm' + String(v % 60).padStart(2, '0') + 's';
  if (v < 86400) return Math.floor(v / 3600) + 'h' + String(Math.floor((v % 3600) / 60)).padStart(2, '0') + 'm';
  return Math.floor(v / 86400) + 'd' + String(Math.floor((v % 86400) / 3600)).padStart(2, '0') + 'h';
}

function ago(t, now) {
  if (!t) return '-';
  return t <= now ? span(now - t) + ' ago' : 'in ' + span(t - now);
}

function iso(t) {
  return t ? new Date(t * 1000).toISOString() : '-';
}

// Compact JSON of a value for a table cell (strings as they are).
function compact(v) {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// The server's clock, as its last overview said it: ages are told from Redis's times, which
// the server's clock wrote, whatever this browser's clock says.
let skew = 0;
const serverNow = () => Date.now() / 1000 + skew;

// ---- the API -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(path, options) {
  const r = await fetch(path, Object.assign({credentials: 'same-origin', cache: 'no-store'}, options));
  const type = r.headers.get('Content-Type') || '';
  const body = type.startsWith('application/json') ? await r.json() : {error: (await r.text()).trim()};
  if (!r.ok) throw new ApiError(r.status, body.error || r.statusText);
  return body;
}

const get = (path) => call(path);
const post = (path) => call(path, {method: 'POST', headers: {'X-CQ-Action': '1'}});

// ---- state ---------------------------------------------------------------------------

const state = {
  list: 'queue',   // queue, scheduled, failed, dead
  queue: null,     // with list queue
  offset: 0,
  overview: null,
  jobsKey: '',     // what the job table shows now, to redraw only on a change
  total: 0,
  job: null,       // the id in the job dialog
};

// The list and page live in the URL's fragment (#list=failed&offset=50, #list=queue:q,
// #job=ID) so that a reload or a link keeps them.
function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  const list = h.get('list') || '';
  if (list.startsWith('queue:')) {
    state.list = 'queue';
    state.queue = list.slice(6);
  } else if (['running', 'scheduled', 'failed', 'dead'].includes(list)) {
    state.list = list;
  }
  const off = parseInt(h.get('offset') || '0', 10);
  state.offset = Number.isFinite(off) && off > 0 ? off : 0;
  return h.get('job');
}

function writeHash() {
  const h = new URLSearchParams();
  h.set('list', state.list === 'queue' ? 'queue:' + (state.queue || '') : state.list);
  if (state.offset) h.set('offset', String(state.offset));
  history.replaceState(null, '', '#' + h.toString());
}

// ---- notices -------------------------------------------------------------------------

let noticeTimer = null;
function notice(text, bad) {
  const n = $('notice');
  n.textContent = text;
  n.classList.toggle('bad', !!bad);
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, bad ? 10000 : 4000);
}

function connected(ok, text) {
  const c = $('conn');
  c.textContent = ok ? 'live' : text;
  c.classList.toggle('down', !ok);
}

// ---- confirmation --------------------------------------------------------------------

// Ask, then run action() on OK. The dialog is the page's own <dialog>, not window.confirm.
// A cancel's outcome in the notice: 'stopping' (its worker stops it), 'canceling' (its
// worker is gone: it ends canceled once a live worker returns it), or 'canceled'.
function cancelText(outcome) {
  if (outcome === 'stopping') return 'stopping ';
  if (outcome === 'canceling') return 'canceling (its worker is gone) ';
  return 'canceled ';
}

function confirmThen(question, action) {
  const d = $('confirm');
  $('confirm-text').textContent = question;
  const done = (ok) => {
    $('confirm-ok').onclick = null;
    $('confirm-no').onclick = null;
    d.close();
    if (ok) action();
  };
  $('confirm-ok').onclick = () => done(true);
  $('confirm-no').onclick = () => done(false);
  d.showModal();
}

async function act(path, describe) {
  try {
    const r = await post(path);
    notice(describe(r));
  } catch (e) {
    notice(e.message, true);
  }
  state.jobsKey = '';
  await refresh();
}

// ---- overview: totals, chart, queues, workers ----------------------------------------

function renderTotals(o) {
  let waiting = 0, inflight = 0;
  for (const q of o.queues) {
    waiting += q.depth || 0;
    inflight += q.inflight || 0;
  }
  $('t-waiting').textContent = fmt(waiting);
  $('t-inflight').textContent = fmt(inflight);
  $('t-scheduled').textContent = fmt(o.scheduled);
  $('t-failed').textContent = fmt(o.failed);
  $('t-dead').textContent = fmt(o.dead);
  $('t-workers').textContent = fmt(o.workers_live);
  $('t-processed').textContent = fmt(o.jobs_processed_total);
  $('server').textContent = 'redis ' + o.server + ', prefix ' + o.prefix + ' \u00b7 cq ' + o.version;
}

function renderChart(tp) {
  const c = $('chart');
  const W = 600, H = 140, pad = 4, span5 = 300;
  c.replaceChildren();
  const pts = (tp && tp.points) || [];
  const now = pts.length ? pts[pts.length - 1][0] : serverNow();
  let peak = 0;
  for (const p of pts) if (now - p[0] <= span5) peak = Math.max(peak, p[1] + p[2]);
  const max = Math.max(1, peak);
  for (let i = 1; i < 4; i++) c.append(svg('line', {x1: 0, x2: W, y1: (H * i) / 4, y2: (H * i) / 4, class: 'grid'}));
  const x = (t) => W - ((now - t) / span5) * W;
  const y = (v) => H - pad - (v / max) * (H - 2 * pad);
  const line = (idx, cls) => {
    const d = pts.filter((p) => now - p[0] <= span5)
      .map((p) => x(p[0]).toFixed(1) + ',' + y(idx === 1 ? p[1] + p[2] : p[2]).toFixed(1));
    if (d.length > 1) c.append(svg('polyline', {points: d.join(' '), class: cls}));
  };
  line(1, 'finished');
  line(2, 'failed');
  const last = pts.length ? pts[pts.length - 1] : null;
  $('chart-max').textContent = 'peak ' + peak.toFixed(peak < 10 ? 1 : 0) + '/s' +
    (last ? ' \u00b7 now ' + (last[1] + last[2]).toFixed(1) + '/s' : '');
}

// 30 bars: the queue's jobs per minute, the current minute last.
function sparkline(per) {
  const s = svg('svg', {viewBox: '0 0 90 24', class: 'spark', role: 'img'});
  const vals = per || [];
  const max = Math.max(1, ...vals);
  vals.forEach((v, i) => {
    const h = v > 0 ? Math.max(1, (v / max) * 22) : 0;
    if (h > 0) s.append(svg('rect', {x: i * 3, y: 24 - h, width: 2.4, height: h}));
  });
  const title = svg('title');
  title.textContent = 'this minute: ' + fmt(vals[vals.length - 1] || 0) + ', peak ' + fmt(Math.max(0, ...vals)) + ' a minute';
  s.append(title);
  return s;
}

function queueRow(q) {
  const name = q.name;
  const pause = el('button', {
    type: 'button',
    dataset: {action: q.paused ? 'resume' : 'pause'},
    onclick: () => confirmThen((q.paused ? 'Resume' : 'Pause') + ' queue ' + name + '?', () =>
      act('/api/queue/' + encodeURIComponent(name) + (q.paused ? '/resume' : '/pause'),
        (r) => (r.paused ? 'paused queue ' : 'resumed queue ') + name + (r.changed ? '' : ' (it was already)'))),
  }, q.paused ? 'Resume' : 'Pause');
  const empty = el('button', {
    type: 'button', className: 'danger', dataset: {action: 'empty'},
    onclick: () => confirmThen('Empty queue ' + name + '? Its ' + fmt(q.depth) +
      ' waiting jobs are removed and canceled.', () =>
      act('/api/queue/' + encodeURIComponent(name) + '/empty', (r) => 'emptied queue ' + name + ': ' + fmt(r.removed) + ' removed')),
  }, 'Empty');
  const link = el('a', {href: '#', onclick: (ev) => { ev.preventDefault(); selectList('queue', name, true); }}, name);
  return el('tr', {dataset: {queue: name}},
    el('td', {className: 'name'}, link),
    el('td', {className: 'num depth'}, q.depth === null ? '?' : fmt(q.depth)),
    el('td', {className: 'num inflight'}, fmt(q.inflight)),
    el('td', {className: 'rate'}, sparkline(q.per_minute), el('span', {className: 'muted small'}, ' ' + fmt(q.last_minute) + ' in 2 min')),
    el('td', {className: 'state'}, el('span', {className: q.paused ? 'badge paused' : 'badge active'}, q.paused ? 'paused' : 'active')),
    el('td', {className: 'q-actions'}, pause, empty));
}

// Tables are redrawn only when what they show changed, so that a row under the pointer or
// a button being pressed is not replaced every second for nothing.
const drawn = {};
function changed(name, data) {
  const key = JSON.stringify(data);
  if (drawn[name] === key) return false;
  drawn[name] = key;
  return true;
}

function renderQueues(o) {
  if (!changed('queues', o.queues)) return;
  const body = $('queues').tBodies[0];
  body.replaceChildren(...o.queues.map(queueRow));
  $('no-queues').hidden = o.queues.length > 0;
}

function renderWorkers(o) {
  // The heartbeat age changes each time: compare it in whole seconds.
  if (!changed('workers', o.workers.map((w) => [w.id, w.host, w.pid, w.queues, w.busy, w.concurrency,
    w.processed, w.failed, w.lease, Math.round(w.heartbeat_age || 0)]))) return;
  const body = $('workers').tBodies[0];
  body.replaceChildren(...o.workers.map((w) => el('tr', {dataset: {worker: w.id}, className: w.lease ? '' : 'gone'},
    el('td', {className: 'mono'}, w.id),
    el('td', null, w.host),
    el('td', {className: 'num'}, String(w.pid)),
    el('td', null, (w.queues || '').split(',').join(', ')),
    el('td', {className: 'num'}, w.busy + '/' + w.concurrency),
    el('td', {className: 'num'}, fmt(w.processed)),
    el('td', {className: 'num'}, fmt(w.failed)),
    el('td', null, w.lease ? (w.heartbeat_age === null ? '-' : span(w.heartbeat_age) + ' ago') : 'gone'))));
  $('no-workers').hidden = o.workers.length > 0;
}

// The list selector: each queue, then the sets. Rebuilt only when the names change.
function renderListChoice(o) {
  const sel = $('list');
  const want = o.queues.map((q) => 'queue:' + q.name).concat(['running', 'scheduled', 'failed', 'dead']);
  const have = Array.from(sel.options).map((op) => op.value);
  if (want.join('\n') !== have.join('\n')) {
    sel.replaceChildren(...want.map((v) => el('option', {value: v})));
  }
  const counts = {running: o.queues.reduce((n, q) => n + (q.inflight || 0), 0),
    scheduled: o.scheduled, failed: o.failed, dead: o.dead};
  for (const q of o.queues) counts['queue:' + q.name] = q.depth;
  for (const op of sel.options) {
    const label = (op.value.startsWith('queue:') ? 'queue ' + op.value.slice(6) : op.value) + ' (' + fmt(counts[op.value]) + ')';
    if (op.textContent !== label) op.textContent = label;
  }
  if (state.list === 'queue' && !state.queue && o.queues.length) state.queue = o.queues[0].name;
  sel.value = state.list === 'queue' ? 'queue:' + state.queue : state.list;
  $('requeue-all').hidden = !(state.list === 'failed' && o.failed > 0);
}

// ---- jobs ----------------------------------------------------------------------------

const COLUMNS = {
  queue: ['#', 'id', 'function', 'enqueued', 'args'],
  running: ['started', 'id', 'function', 'queue', 'worker', 'args', ''],
  scheduled: ['due', 'id', 'function', 'queue', 'args'],
  failed: ['failed', 'id', 'function', 'queue', 'error', ''],
  dead: ['#', 'record'],
};

function jobLink(id) {
  return el('a', {href: '#', className: 'mono', onclick: (ev) => { ev.preventDefault(); showJob(id); }}, id || '?');
}

function requeueButton(id) {
  return el('button', {
    type: 'button', dataset: {action: 'requeue'},
    onclick: () => confirmThen('Requeue job ' + id + '? It goes back to its queue with its attempts at 0.', () =>
      act('/api/job/' + encodeURIComponent(id) + '/requeue', (r) => 'requeued ' + id + ' to queue ' + r.queue)),
  }, 'Requeue');
}

// A time shown as an age ("5.0s ago"), which the page keeps current (ageAll) without
// redrawing its row.
function when(t, now) {
  return el('span', {dataset: {t: String(t || 0)}}, ago(t, now));
}

function ageAll() {
  const now = serverNow();
  for (const e of document.querySelectorAll('#jobs-table [data-t]')) {
    const v = ago(Number(e.dataset.t), now);
    if (e.textContent !== v) e.textContent = v;
  }
}

function cancelButton(id) {
  return el('button', {
    type: 'button', className: 'danger', dataset: {action: 'cancel'},
    onclick: () => confirmThen('Cancel job ' + id + '? Its worker stops it.', () =>
      act('/api/job/' + encodeURIComponent(id) + '/cancel', (r) => cancelText(r.outcome) + id)),
  }, 'Cancel');
}

function jobRow(list, it, i, now, offset) {
  const cells = {
    queue: () => [String(offset + i + 1), jobLink(it.id), it.func || '?', when(it.enqueued_at, now), compact(it.args)],
    running: () => [when(it.started_at, now), jobLink(it.id), it.func || '?', it.queue || '-', it.worker || '?', compact(it.args), cancelButton(it.id)],
    scheduled: () => [when(it.due, now), jobLink(it.id), it.func || '?', it.queue || '-', compact(it.args)],
    failed: () => [when(it.failed_at, now), jobLink(it.id), it.func || '?', it.queue || '-', it.error || '(no status left)', requeueButton(it.id)],
    dead: () => [String(offset + i + 1), it.record],
  }[list]();
  const cls = COLUMNS[list];
  return el('tr', {dataset: {id: it.id || ''}},
    ...cells.map((c, k) => el('td', {className: 'c-' + (cls[k] || 'act').replace(/[^a-z]/g, '')}, c)));
}

// The request for the page of jobs the state names; the promise carries what it asked.
function fetchJobs() {
  const q = state.list === 'queue' ? '&queue=' + encodeURIComponent(state.queue || '') : '';
  const p = get('/api/jobs?list=' + state.list + q + '&offset=' + state.offset + '&limit=' + PAGE);
  return Object.assign(p, {list: state.list, queue: state.queue, offset: state.offset});
}

async function loadJobs(fetched) {
  if (state.list === 'queue' && !state.queue) {
    $('jobs-table').tBodies[0].replaceChildren();
    $('jobs-empty').textContent = 'No queue to show.';
    $('jobs-empty').hidden = false;
    return;
  }
  const page = await (fetched || fetchJobs());
  state.total = page.total;
  if (state.offset > 0 && state.offset >= page.total) { // the list shrank under this page
    state.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
    writeHash();
    return loadJobs();
  }
  const key = JSON.stringify([state.list, state.queue, page.offset, page.total, page.items]);
  const shown = page.items.length;
  $('range').textContent = shown ? fmt(page.offset + 1) + '\u2013' + fmt(page.offset + shown) + ' of ' + fmt(page.total) : '0 of ' + fmt(page.total);
  $('first').disabled = $('prev').disabled = page.offset === 0;
  $('next').disabled = $('last').disabled = page.offset + shown >= page.total;
  if (key === state.jobsKey) return ageAll(); // unchanged: leave the rows (and a hover, a selection) be
  state.jobsKey = key;
  const now = serverNow();
  $('jobs-head').replaceChildren(...COLUMNS[state.list].map((c) => el('th', null, c)));
  $('jobs-table').tBodies[0].replaceChildren(...page.items.map((it, i) => jobRow(state.list, it, i, now, page.offset)));
  $('jobs-empty').textContent = state.list === 'queue' ? 'Queue ' + state.queue + ' is empty.' : 'The ' + state.list + ' list is empty.';
  $('jobs-empty').hidden = shown > 0;
}

// Show a list from its first page; from a queue's link (scroll), bring the list into view.
function selectList(list, queue, scroll) {
  state.list = list;
  state.queue = queue || state.queue;
  state.offset = 0;
  state.jobsKey = '';
  writeHash();
  if (state.overview) renderListChoice(state.overview);
  refresh();
  if (scroll) $('jobs').scrollIntoView({behavior: 'smooth', block: 'start'});
}

function page(to) {
  const last = Math.max(0, Math.floor((state.total - 1) / PAGE) * PAGE);
  state.offset = {first: 0, prev: Math.max(0, state.offset - PAGE), next: Math.min(last, state.offset + PAGE), last: last}[to];
  writeHash();
  refresh();
}

// ---- one job -------------------------------------------------------------------------

const ENDED = ['finished', 'failed', 'canceled'];
const FIRST = ['status', 'func', 'queue', 'args', 'result', 'result_json', 'error', 'attempts', 'recovered',
  'enqueued_at', 'scheduled_for', 'started_at', 'ended_at', 'retry_at', 'duration', 'worker'];
const TIMES = ['enqueued_at', 'scheduled_for', 'started_at', 'ended_at', 'retry_at'];

async function showJob(id) {
  let j;
  try {
    j = await get('/api/job/' + encodeURIComponent(id));
  } catch (e) {
    notice(e.message, true);
    return;
  }
  state.job = id;
  const now = serverNow();
  $('job-title').textContent = 'Job ' + id;
  const dl = $('job-fields');
  dl.replaceChildren();
  const add = (k, v) => dl.append(el('dt', null, k), el('dd', {dataset: {field: k}}, v));
  const keys = FIRST.filter((k) => k in j).concat(Object.keys(j).filter((k) => !FIRST.includes(k) && !['id', 'record', 'record_from', 'record_note', 'ttl', 'cancel_requested'].includes(k)));
  for (const k of keys) {
    let v = j[k];
    if (v === null || v === undefined) continue;
    if (TIMES.includes(k)) v = iso(v) + ' (' + ago(v, now) + ')';
    else if (k === 'duration') v = span(v);
    else v = compact(v);
    add(k, v);
  }
  if (j.record) add('record', j.record + (j.record_from ? '   (from ' + j.record_from + ')' : ''));
  else if (j.record_note) add('record', '(' + j.record_note + ')');
  if (j.ttl >= 0) add('expires', 'in ' + span(j.ttl));
  if (j.cancel_requested) add('cancel', 'requested');
  $('job-requeue').hidden = j.status !== 'failed';
  $('job-cancel').hidden = ENDED.includes(j.status);
  $('job-dialog').dataset.id = id;
  if (!$('job-dialog').open) $('job-dialog').showModal();
}

function jobAction(action, question, describe) {
  const id = state.job;
  confirmThen(question.replace('%s', id), async () => {
    await act('/api/job/' + encodeURIComponent(id) + '/' + action, describe);
    if (action === 'delete') $('job-dialog').close();
    else showJob(id);
  });
}

// ---- the loop ------------------------------------------------------------------------

// One refresh at a time; one asked for meanwhile (a click) runs as soon as it ends, so that
// the page follows a click at once rather than at the next tick.
let busy = null, again = false;
function refresh() {
  if (busy) {
    again = true;
    return busy;
  }
  busy = refreshNow().finally(() => {
    busy = null;
    if (again) {
      again = false;
      refresh();
    }
  });
  return busy;
}

async function refreshNow() {
  try {
    // The page of jobs is asked for with the overview when the list is known already.
    const known = state.list !== 'queue' || !!state.queue;
    const jobs = known ? fetchJobs() : null;
    if (jobs) jobs.catch(() => {}); // reported below, once
    const o = await get('/api/overview');
    skew = o.time - Date.now() / 1000;
    state.overview = o;
    connected(true);
    renderTotals(o);
    renderChart(o.throughput);
    renderQueues(o);
    renderWorkers(o);
    renderListChoice(o);
    await loadJobs(jobs && state.list === jobs.list && state.queue === jobs.queue && state.offset === jobs.offset ? jobs : null);
  } catch (e) {
    connected(false, e.status === 401 ? 'token needed' : e.status === 503 ? 'redis down' : 'error');
    notice(e.message, true);
  }
}

function loop() {
  refresh().finally(() => setTimeout(loop, REFRESH_MS));
}

function start() {
  const id = readHash();
  $('list').addEventListener('change', (ev) => {
    const v = ev.target.value;
    if (v.startsWith('queue:')) selectList('queue', v.slice(6));
    else selectList(v);
  });
  for (const b of ['first', 'prev', 'next', 'last']) $(b).addEventListener('click', () => page(b));
  $('requeue-all').addEventListener('click', () => confirmThen(
    'Requeue all ' + fmt(state.overview ? state.overview.failed : 0) + ' failed jobs?', () =>
      act('/api/failed/requeue', (r) => 'requeued ' + fmt(r.requeued) + ' failed jobs; ' + fmt(r.refused) + ' refused')));
  $('lookup').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('lookup-id').value.trim();
    if (v) showJob(v);
  });
  $('job-close').addEventListener('click', () => $('job-dialog').close());
  $('job-requeue').addEventListener('click', () => jobAction('requeue',
    'Requeue job %s? It goes back to its queue with its attempts at 0.', (r) => 'requeued ' + r.id + ' to queue ' + r.queue));
  $('job-cancel').addEventListener('click', () => jobAction('cancel',
    'Cancel job %s?', (r) => cancelText(r.outcome) + r.id));
  $('job-delete').addEventListener('click', () => jobAction('delete',
    'Delete job %s? Its status is forgotten.', (r) => 'deleted ' + r.id));
  // A link or the address bar may change the fragment: show what it names.
  window.addEventListener('hashchange', () => {
    const job = readHash();
    state.jobsKey = '';
    if (state.overview) renderListChoice(state.overview);
    refresh();
    if (job) showJob(job);
  });
  if (id) showJob(id);
  loop();
}

document.addEventListener('DOMContentLoaded', start);
