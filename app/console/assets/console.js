// The service owner's rule editor. It talks to /graphql with a machine token of scope `rules`,
// as a department's own tool would; the token stays in this page (memory and the tab's
// sessionStorage) and goes nowhere but /graphql (and, in dev mode, the dev owners' client
// credentials go to /oauth2/token for it).

import { gql, errorCode, machineToken } from '/ui/gql.js';
import { i18n } from '/ui/i18n.js';
import { dict } from './texts.js';
import { BUILTIN, SAMPLES, DEFAULT_SAMPLES, PREVIEW, ESTIMATE, AUTHORING, RULES, RULE, CREATE, UPDATE, CHANGE } from './queries.js';

const L = i18n(dict);
const t = L.t;
const $ = (id) => document.getElementById(id);

const CATEGORIES = ['教育', '就业', '社保', '医疗', '养老', '居住', '婚育', '出行', '民政', '税务', '公积金'];
// The pause in typing after which the condition is checked: short enough that the underline
// follows the keystroke within 150 ms (a check takes ~25 ms), long enough not to check every
// key. Checks without an estimate are not counted against rate_limits.preview.
const DEBOUNCE_MS = 100;
const TOKEN_KEY = 'tongban.console.token';
const CLIENT_KEY = 'tongban.console.devClient';

const state = {
  dev: false, owners: [], token: '', devClient: '', authoring: null, rules: [], rule: null,
  problems: [], matches: [], sampleErrors: {}, previewError: '', samplesCustom: false,
  estimate: null, seq: 0, lastKey: '', timer: 0, retryTimer: 0, typedAt: 0, archiveArmed: false, poll: 0,
};
// What the browser test reads: the latest check's timings (ms, performance.now()).
window.consoleTiming = null;

// ---- talking to the API ----

async function api(query, variables) {
  let res = await gql(query, variables, state.token);
  if (errorCode(res) === 'UNAUTHENTICATED' && state.devClient) {
    // A dev owner's token lives 15 minutes: take a new one, once.
    try {
      await devSignIn(state.devClient, false);
      res = await gql(query, variables, state.token);
    } catch (_) { /* the first answer stands */ }
  }
  if (errorCode(res) === 'UNAUTHENTICATED' && state.authoring) {
    // A pasted token expired (they live 15 minutes): ask for a new one, keeping the work.
    $('signin').hidden = false;
    $('signin-error').textContent = t('errUNAUTHENTICATED');
  }
  return res;
}

/** The API's error in words: the code's sentence, with the server's message. */
function errorText(res) {
  const e = (res.errors && res.errors[0]) || {};
  const ext = e.extensions || {};
  const code = ext.code || '';
  const msg = e.message || '';
  if (!code) return t('errOther', { msg });
  const key = 'err' + code;
  if (!dict.zh[key]) return t('errOther', { msg: code + ': ' + msg });
  return t(key, { msg, n: ext.retryAfter ?? '?', id: ext.requestId ?? '?' });
}

// ---- signing in ----

async function devSignIn(client, announce = true) {
  const owner = state.owners.find((o) => o.client === client);
  state.token = await machineToken(client, owner.secret);
  state.devClient = client;
  sessionStorage.setItem(CLIENT_KEY, client);
  sessionStorage.setItem(TOKEN_KEY, state.token);
  if (announce) await start();
}

async function start() {
  $('signin-error').textContent = '';
  const res = await api(AUTHORING, {});
  if (!res.data || !res.data.ruleAuthoring) {
    $('signin-error').textContent = errorText(res);
    state.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    return;
  }
  const again = !!state.authoring && state.authoring.client === res.data.ruleAuthoring.client;
  state.authoring = res.data.ruleAuthoring;
  const a = state.authoring;
  if (again) { // a new token for the same owner: keep what is on the page
    $('signin').hidden = true;
    state.lastKey = '';
    schedule();
    await loadRules();
    return;
  }
  $('who').dataset.client = a.client;
  renderWho();
  $('signin').hidden = true;
  $('workspace').hidden = false;
  $('signout').hidden = false;
  const sel = $('service');
  sel.replaceChildren();
  for (const s of a.services) {
    const o = document.createElement('option');
    o.value = s.id;
    o.textContent = `${s.name}（${s.department} · ${s.app.name}）`;
    sel.append(o);
  }
  if (!a.services.length) $('action-error').textContent = t('noServices');
  newRule();
  await loadRules();
}

function signOut() {
  state.token = ''; state.devClient = ''; state.authoring = null; state.rule = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(CLIENT_KEY);
  clearInterval(state.poll);
  $('workspace').hidden = true;
  $('signin').hidden = false;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('token').value = '';
}

function renderWho() {
  const a = state.authoring;
  if (a) $('who').textContent = t('signedInAs', { client: a.client, deps: a.departments.join('、') });
}

// ---- the rule form ----

function service() {
  const id = $('service').value;
  return (state.authoring && state.authoring.services.find((s) => s.id === id)) || null;
}

function newRule() {
  state.rule = null;
  state.estimate = null;
  state.samplesCustom = false;
  const s = service();
  $('name').value = '';
  $('triggers').value = 'residence.changed';
  $('backfill').checked = true;
  $('editor').value = s && s.department === '浙江省卫生健康委员会'
    ? 'has(event.type) && event.type == "birth.registered"'
    : 'person.age >= 60 &&\n  person.hukou.city == "嘉兴"';
  $('title').value = '{{name}}，您可办理{{service}}';
  $('body').value = '点击即可办理{{service}}，无需提交材料。';
  onServiceChange();
  renderRuleState();
  schedule();
}

function loadRule(rule) {
  state.rule = rule;
  state.estimate = null;
  $('service').value = rule.service.id;
  $('name').value = rule.name;
  $('triggers').value = rule.triggers.join(', ');
  $('backfill').checked = rule.backfill;
  $('editor').value = rule.condition;
  $('title').value = rule.title;
  $('body').value = rule.body;
  onServiceChange(rule.category);
  renderRuleState();
  renderRules();
  schedule();
}

function onServiceChange(category) {
  const s = service();
  const cat = $('category');
  if (!cat.options.length) {
    for (const c of CATEGORIES) {
      const o = document.createElement('option');
      o.value = o.textContent = c;
      cat.append(o);
    }
  }
  if (category) cat.value = category;
  else if (s) cat.value = s.category;
  // A new rule's name follows the service until the owner writes one.
  if (!state.rule && s && (!$('name').value || $('name').value === state.defaultName)) {
    state.defaultName = s.name + '提醒';
    $('name').value = state.defaultName;
  }
  if (!state.samplesCustom) {
    const samples = (s && SAMPLES[s.department]) || DEFAULT_SAMPLES;
    $('samples-json').value = '[\n' + samples.map((x) => '  ' + JSON.stringify(x)).join(',\n') + '\n]';
  }
  renderFacts();
  renderMessage();
  updateEditor();
}

function ruleInput(forPreview) {
  const s = service();
  const orDefault = (v, d) => (forPreview && !v.trim() ? d : v);
  return {
    name: orDefault($('name').value, '预览'),
    serviceId: s ? s.id : '',
    condition: $('editor').value,
    triggers: $('triggers').value.split(/[,，\s]+/).filter(Boolean),
    backfill: $('backfill').checked,
    title: orDefault($('title').value, '预览'),
    body: orDefault($('body').value, '预览'),
    category: $('category').value || (s ? s.category : ''),
  };
}

function renderRuleState() {
  const r = state.rule;
  $('rule-state').textContent = r ? t('ruleState', { status: t('status' + r.status), version: r.version }) : t('newRuleState');
  $('rule-stats').textContent = r ? t('stats', {
    matched: countText(r.stats.people.matched), notified: countText(r.stats.people.notified),
    delivered: countText(r.stats.people.delivered), deferred: countText(r.stats.people.deferred),
    failed: countText(r.stats.people.failed),
  }) + ' · ' + backfillText(r) : '';
  $('save').textContent = t(r ? 'update' : 'create');
  const st = r ? r.status : '';
  $('publish').disabled = !(st === 'DRAFT' || st === 'PAUSED');
  $('pause').disabled = st !== 'PUBLISHED';
  $('archive').disabled = !st || st === 'ARCHIVED';
  $('save').disabled = st === 'ARCHIVED';
  state.archiveArmed = false;
  $('archive').textContent = t('archive');
}

function countText(c) {
  if (!c) return t('none');
  return c.count !== null && c.count !== undefined ? String(c.count) : t('fewerThan', { k: c.fewerThan });
}

function backfillText(r) {
  if (!r.backfill) return t('noBackfill');
  const n = r.stats.backfillScanned;
  if (r.stats.backfillDone) return t('backfillDone', { n });
  return r.status === 'DRAFT' ? t('scanned', { n }) : t('backfillRunning', { n });
}

// ---- facts ----

function renderFacts() {
  const body = $('facts').tBodies[0];
  body.replaceChildren();
  const s = service();
  const rows = BUILTIN.map(([name, type, meaning]) => ({ name, type, meaning: meaning[L.lang] }));
  if (state.authoring && s) {
    for (const f of state.authoring.facts) {
      if (!f.readers.includes(s.department)) continue;
      rows.push({ name: 'person.facts.' + f.name, type: f.type, meaning: f.description, sensitive: f.sensitive });
    }
  }
  for (const r of rows) {
    const tr = document.createElement('tr');
    const name = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'linkish';
    b.textContent = r.name;
    b.setAttribute('aria-label', t('insertFact', { name: r.name }));
    b.addEventListener('click', () => insertAtCaret(r.name));
    name.append(b);
    const type = document.createElement('td');
    type.textContent = r.type;
    const meaning = document.createElement('td');
    meaning.textContent = r.meaning + (r.sensitive ? '（' + t('sensitive') + '）' : '');
    tr.append(name, type, meaning);
    body.append(tr);
  }
}

function insertAtCaret(text) {
  const ed = $('editor');
  const { selectionStart: a, selectionEnd: b, value } = ed;
  ed.value = value.slice(0, a) + text + value.slice(b);
  ed.focus();
  ed.selectionStart = ed.selectionEnd = a + text.length;
  onEditorInput();
}

// ---- the editor: line numbers, underlines, caret position ----

function onEditorInput() {
  updateEditor();
  schedule();
}

function updateEditor() {
  const text = $('editor').value;
  const lines = text.split('\n');
  $('gutter').textContent = lines.map((_, i) => i + 1).join('\n') + '\n ';
  renderOverlay();
  updateCaret();
}

/** The characters a problem at col underlines: the word or operator that starts there. */
function span(chars, col) {
  const start = col - 1;
  if (start >= chars.length) return [chars.length, chars.length + 1];
  if (chars[start] === '"' || chars[start] === "'") { // a string literal: to its closing quote
    let end = start + 1;
    while (end < chars.length && chars[end] !== chars[start]) end++;
    return [start, Math.min(end + 1, chars.length)];
  }
  const word = /[\p{L}\p{N}_.]/u;
  const isWord = word.test(chars[start]);
  let end = start + 1;
  while (end < chars.length && chars[end] !== ' ' && word.test(chars[end]) === isWord && (isWord || chars[end] !== '"')) end++;
  return [start, end];
}

function renderOverlay() {
  const text = $('editor').value;
  const lines = text.split('\n');
  const byLine = new Map();
  state.problems.forEach((p, i) => {
    if (!p.line) return;
    if (!byLine.has(p.line)) byLine.set(p.line, []);
    byLine.get(p.line).push({ ...p, index: i });
  });
  const frag = document.createDocumentFragment();
  lines.forEach((line, li) => {
    const chars = Array.from(line); // code points: the columns the compiler counts
    const marks = (byLine.get(li + 1) || []).map((p) => ({ p, range: span(chars, p.column || 1) }))
      .sort((x, y) => x.range[0] - y.range[0]);
    let at = 0;
    for (const { p, range } of marks) {
      const [s, e] = [Math.max(range[0], at), range[1]];
      if (s >= e) continue;
      frag.append(chars.slice(at, s).join(''));
      const m = document.createElement('span');
      m.className = 'squiggle';
      m.id = 'squiggle-' + p.index;
      m.dataset.line = String(p.line);
      m.dataset.column = String(p.column);
      m.textContent = s >= chars.length ? ' ' : chars.slice(s, Math.min(e, chars.length)).join('');
      frag.append(m);
      at = Math.min(e, chars.length);
    }
    frag.append(chars.slice(at).join(''));
    if (li < lines.length - 1) frag.append('\n');
  });
  frag.append('\n ');
  $('overlay').replaceChildren(frag);
  syncScroll();
}

function syncScroll() {
  const ed = $('editor');
  $('overlay').scrollTop = ed.scrollTop;
  $('overlay').scrollLeft = ed.scrollLeft;
  $('gutter').scrollTop = ed.scrollTop;
}

function caretLineCol() {
  const ed = $('editor');
  const before = ed.value.slice(0, ed.selectionStart).split('\n');
  return { line: before.length, col: Array.from(before[before.length - 1]).length + 1 };
}

function updateCaret() {
  const { line, col } = caretLineCol();
  $('cursor-pos').textContent = t('lineCol', { line, col });
}

function goTo(line, col) {
  const ed = $('editor');
  const lines = ed.value.split('\n');
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  const chars = Array.from(lines[line - 1] || '');
  offset += chars.slice(0, col - 1).join('').length;
  ed.focus();
  ed.selectionStart = ed.selectionEnd = offset;
  updateCaret();
}

// ---- checking as you type ----

function schedule() {
  state.typedAt = performance.now();
  clearTimeout(state.timer);
  state.timer = setTimeout(check, DEBOUNCE_MS);
  renderMessage();
}

function parseSamples() {
  const raw = $('samples-json').value.trim();
  if (!raw) return { samples: [] };
  try {
    const v = JSON.parse(raw);
    if (!Array.isArray(v)) return { error: 'not an array' };
    return { samples: v };
  } catch (e) {
    return { error: e.message };
  }
}

async function check() {
  if (!state.token) return;
  const input = ruleInput(true);
  if (!input.serviceId) { $('check-state').textContent = t('needService'); return; }
  const parsed = parseSamples();
  state.previewError = parsed.error ? t('samplesBad', { msg: parsed.error }) : '';
  const samples = parsed.samples || [];
  const key = JSON.stringify([input, samples]);
  if (key === state.lastKey) return; // nothing the server would answer differently
  const seq = ++state.seq;
  const typedAt = state.typedAt;
  const sentAt = performance.now();
  $('check-state').textContent = t('checking');
  const res = await api(PREVIEW, { in: input, s: samples });
  if (seq !== state.seq) return; // a later check is on its way
  const answeredAt = performance.now();
  clearTimeout(state.retryTimer);
  if (!res.data || !res.data.previewPushRule) {
    state.lastKey = '';
    const code = errorCode(res);
    const ext = (res.errors[0] && res.errors[0].extensions) || {};
    if (code === 'RATE_LIMITED' && ext.retryAfter) {
      $('check-state').textContent = t('previewLimited', { n: ext.retryAfter });
      state.retryTimer = setTimeout(check, ext.retryAfter * 1000);
      return;
    }
    const field = ext.field || '';
    if (field.startsWith('samples')) state.previewError = t('sampleError', { msg: res.errors[0].message });
    else state.previewError = errorText(res);
    state.problems = [];
    state.matches = [];
  } else {
    state.lastKey = key;
    const p = res.data.previewPushRule;
    state.problems = [];
    state.sampleErrors = {};
    for (const pr of p.problems) {
      const m = /^sample (\d+): (.*)$/s.exec(pr.message);
      if (m) state.sampleErrors[Number(m[1])] = m[2];
      else state.problems.push(pr);
    }
    state.valid = p.valid;
    state.matches = p.matches;
  }
  renderProblems();
  renderOverlay();
  renderSamples(samples);
  requestAnimationFrame(() => {
    const renderedAt = performance.now();
    window.consoleTiming = {
      condition: input.condition, typedAt, sentAt, answeredAt, renderedAt,
      roundTrip: renderedAt - sentAt, keystrokeToUnderline: renderedAt - typedAt,
      problems: state.problems.length,
    };
    $('check-state').textContent = t('checked', { ms: Math.round(renderedAt - sentAt) });
    document.dispatchEvent(new CustomEvent('consolechecked', { detail: window.consoleTiming }));
  });
}

let problemsShown = '';

function renderProblems(force = false) {
  // Redrawn only when they change: the list is a live region, and a screen reader should hear
  // each new finding once, not every check's.
  const sig = JSON.stringify([state.previewError, state.problems, !!state.valid, L.lang]);
  if (sig === problemsShown && !force) return;
  problemsShown = sig;
  const ul = $('problems');
  ul.replaceChildren();
  if (state.previewError) {
    const li = document.createElement('li');
    li.textContent = state.previewError;
    ul.append(li);
  }
  if (!state.problems.length && !state.previewError && state.valid) {
    const li = document.createElement('li');
    li.className = 'ok';
    li.textContent = t('noProblems');
    ul.append(li);
  }
  state.problems.forEach((p, i) => {
    const li = document.createElement('li');
    li.dataset.index = String(i);
    if (p.line) {
      li.dataset.line = String(p.line);
      li.dataset.column = String(p.column);
      const b = document.createElement('button');
      b.type = 'button';
      const pos = document.createElement('span');
      pos.className = 'pos';
      pos.textContent = t('at', { line: p.line, col: p.column });
      b.append(pos, '：' + p.message);
      b.addEventListener('click', () => goTo(p.line, p.column));
      li.append(b);
    } else {
      li.textContent = p.message;
    }
    ul.append(li);
  });
}

function renderSamples(samples) {
  const ol = $('sample-results');
  ol.replaceChildren();
  if (!samples.length) {
    const li = document.createElement('li');
    li.textContent = t('noSamples');
    ol.append(li);
    return;
  }
  samples.forEach((s, i) => {
    const li = document.createElement('li');
    const hit = !!state.matches[i];
    li.dataset.match = String(hit);
    const verdict = document.createElement('span');
    verdict.className = hit ? 'match' : 'nomatch';
    verdict.textContent = (hit ? '✓ ' : '✗ ') + t(hit ? 'match' : 'noMatch');
    const what = document.createElement('code');
    what.textContent = ' ' + JSON.stringify(s);
    li.append(verdict, what);
    if (state.sampleErrors[i]) {
      const e = document.createElement('div');
      e.className = 'muted small';
      e.textContent = state.sampleErrors[i];
      li.append(e);
    }
    ol.append(li);
  });
}

// ---- the audience estimate: only on request ----

async function estimate() {
  const input = ruleInput(true);
  if (!input.serviceId) return;
  $('estimate').textContent = t('estimating');
  $('estimate-btn').disabled = true;
  const res = await api(ESTIMATE, { in: input });
  $('estimate-btn').disabled = false;
  if (!res.data || !res.data.previewPushRule) {
    state.estimate = { error: errorText(res) };
  } else {
    state.estimate = res.data.previewPushRule;
  }
  renderEstimate();
}

function renderEstimate() {
  const e = state.estimate;
  const out = $('estimate');
  out.className = '';
  if (!e) { out.textContent = ''; return; }
  if (e.error) { out.textContent = e.error; out.className = 'bad'; return; }
  const a = e.audience;
  if (!e.valid || !a) { out.textContent = t('notEstimated'); return; }
  out.dataset.status = a.status;
  const vars = { count: a.count, k: a.fewerThan, eps: a.epsilon, left: Number(a.budgetRemaining.toFixed(3)) };
  out.textContent = t({ ESTIMATED: 'estimated', FEWER_THAN_THRESHOLD: 'fewer', PRIVACY_BUDGET_EXHAUSTED: 'exhausted' }[a.status], vars);
}

// ---- the message as a person would read it ----

function renderMessage() {
  const s = service();
  const fill = (v) => v.replaceAll('{{name}}', $('sample-name').value.trim() || '您').replaceAll('{{service}}', s ? s.name : '');
  $('rendered-title').textContent = fill($('title').value);
  $('rendered-body').textContent = fill($('body').value);
}

// ---- create, publish, pause, archive ----

async function save(ev) {
  ev.preventDefault();
  clearResult();
  const input = ruleInput(false);
  const res = state.rule
    ? await api(UPDATE, { id: state.rule.id, in: input })
    : await api(CREATE, { in: input });
  const rule = res.data && (res.data.createPushRule || res.data.updatePushRule);
  if (!rule) return showError(res);
  const wasNew = !state.rule;
  state.rule = rule;
  $('action-result').textContent = wasNew ? t('created', { id: rule.id }) : t('updated', { version: rule.version });
  renderRuleState();
  await loadRules();
}

async function change(op, done) {
  if (!state.rule) return;
  clearResult();
  const res = await api(CHANGE(op), { id: state.rule.id });
  const rule = res.data && res.data[op];
  if (!rule) return showError(res);
  state.rule = rule;
  $('action-result').textContent = t(done);
  renderRuleState();
  await loadRules();
  if (op === 'publishPushRule' && rule.backfill) watchBackfill(rule.id);
}

function watchBackfill(id) {
  clearInterval(state.poll);
  const box = $('backfill-box');
  const bar = $('backfill-progress');
  box.hidden = false;
  bar.removeAttribute('value'); // indeterminate: the number of profiles is not known ahead
  const show = (r) => {
    const n = r.stats.backfillScanned;
    $('backfill-text').textContent = r.stats.backfillDone ? t('backfillDone', { n }) : t('backfillRunning', { n });
    box.dataset.done = String(r.stats.backfillDone);
    box.dataset.scanned = String(n);
    if (r.stats.backfillDone) { bar.max = 1; bar.value = 1; }
  };
  const started = Date.now();
  const tick = async () => {
    const res = await api(RULE, { id });
    const r = res.data && res.data.pushRule;
    if (!r) { clearInterval(state.poll); return showError(res); }
    show(r);
    if (state.rule && state.rule.id === id) { state.rule = r; renderRuleState(); }
    if (r.stats.backfillDone || Date.now() - started > 10 * 60 * 1000) {
      clearInterval(state.poll);
      await loadRules();
    }
  };
  state.poll = setInterval(tick, 500);
  tick();
}

function clearResult() {
  $('action-result').textContent = '';
  $('action-error').textContent = '';
}

function showError(res) {
  $('action-error').textContent = errorText(res);
  const ext = (res.errors && res.errors[0] && res.errors[0].extensions) || {};
  if (Array.isArray(ext.problems)) {
    state.problems = ext.problems;
    renderProblems();
    renderOverlay();
  }
}

// ---- the rules list ----

async function loadRules() {
  const res = await api(RULES, {});
  if (!res.data) return showError(res);
  state.rules = res.data.pushRules.edges.map((e) => e.node);
  renderRules();
}

function renderRules() {
  const body = $('rules').tBodies[0];
  body.replaceChildren();
  for (const r of state.rules) {
    const tr = document.createElement('tr');
    tr.dataset.id = r.id;
    if (state.rule && state.rule.id === r.id) tr.setAttribute('aria-current', 'true');
    const name = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = r.name;
    b.addEventListener('click', async () => {
      const res = await api(RULE, { id: r.id });
      if (res.data && res.data.pushRule) loadRule(res.data.pushRule);
      else showError(res);
    });
    name.append(b);
    const status = document.createElement('td');
    const tag = document.createElement('span');
    tag.className = 'status ' + r.status;
    tag.textContent = t('status' + r.status) + ' v' + r.version;
    status.append(tag);
    const matched = document.createElement('td');
    matched.textContent = countText(r.stats.people.matched);
    const notified = document.createElement('td');
    notified.textContent = countText(r.stats.people.notified);
    const bf = document.createElement('td');
    bf.textContent = r.backfill ? (r.stats.backfillDone ? '✓ ' : '') + r.stats.backfillScanned : t('none');
    tr.append(name, status, matched, notified, bf);
    body.append(tr);
  }
}

// ---- wiring ----

function rerender() {
  renderWho();
  renderRuleState();
  renderFacts();
  renderProblems();
  renderSamples(parseSamples().samples || []);
  renderEstimate();
  renderRules();
  updateCaret();
  $('lang').textContent = L.lang === 'zh' ? 'English' : '中文';
  $('lang').lang = L.lang === 'zh' ? 'en' : 'zh-CN';
}

async function init() {
  L.apply();
  rerender();
  $('lang').addEventListener('click', () => L.setLang(L.lang === 'zh' ? 'en' : 'zh'));
  document.addEventListener('langchange', rerender);
  $('signout').addEventListener('click', signOut);
  $('token-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    state.token = $('token').value.trim();
    state.devClient = '';
    sessionStorage.setItem(TOKEN_KEY, state.token);
    await start();
  });
  const ed = $('editor');
  ed.addEventListener('input', onEditorInput);
  ed.addEventListener('scroll', syncScroll);
  for (const ev of ['keyup', 'click', 'select', 'focus']) ed.addEventListener(ev, updateCaret);
  $('samples-json').addEventListener('input', () => { state.samplesCustom = true; schedule(); });
  for (const id of ['name', 'triggers', 'backfill', 'category', 'title', 'body']) $(id).addEventListener('input', schedule);
  $('service').addEventListener('change', () => { onServiceChange(); schedule(); });
  $('sample-name').addEventListener('input', renderMessage);
  $('estimate-btn').addEventListener('click', estimate);
  $('rule-form').addEventListener('submit', save);
  $('publish').addEventListener('click', () => change('publishPushRule', 'published'));
  $('pause').addEventListener('click', () => change('pausePushRule', 'paused'));
  $('archive').addEventListener('click', () => {
    if (!state.archiveArmed) {
      state.archiveArmed = true;
      $('archive').textContent = t('archiveConfirm');
      return;
    }
    change('archivePushRule', 'archived');
  });
  $('new-rule').addEventListener('click', () => { newRule(); renderRules(); $('editor').focus(); });

  try {
    const mode = await (await fetch('mode.json')).json();
    state.dev = !!mode.dev;
    state.owners = (state.dev && mode.owners) || [];
  } catch (_) { state.dev = false; }
  for (const o of state.owners) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.client = o.client;
    b.textContent = `${o.department} · ${o.client}`;
    b.addEventListener('click', async () => {
      $('signin-error').textContent = '';
      try {
        await devSignIn(o.client);
      } catch (e) {
        $('signin-error').textContent = t('errOther', { msg: e.message });
      }
    });
    $('dev-owners').append(b);
  }
  $('dev-owners').hidden = !state.dev;
  const saved = sessionStorage.getItem(TOKEN_KEY);
  const savedClient = state.dev ? sessionStorage.getItem(CLIENT_KEY) : '';
  if (saved) {
    state.token = saved;
    state.devClient = savedClient || '';
    await start();
  }
  document.body.dataset.ready = 'true';
}

init();
