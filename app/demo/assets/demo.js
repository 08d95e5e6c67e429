// The demo page: three phone frames, the data platform panel and the activity strip. The
// phones are separate web apps (phone.js); this page only hosts them, opens a switch's
// launchUrl in the target phone when a phone asks (postMessage), and reads the selected
// phone's session (sessionStorage, same origin) for me.activity.
import { gql, errorCode, machineToken } from '/ui/gql.js';
import { i18n } from '/ui/i18n.js';
import { dict, appNames, sessionKey, h } from '/demo/texts.js';

const tr = i18n(dict);
const t = tr.t;
const APPS = ['zheliban', 'suishenban', 'sufuban'];
const appName = (id) => (appNames[id] ? appNames[id][tr.lang] : id);
let citizens = [];
let selectedPhone = 'zheliban';

// --- phones -----------------------------------------------------------------------------
const phones = document.getElementById('phones');
for (const app of APPS) {
  const nameId = 'phone-name-' + app;
  phones.append(h('figure', { class: 'phone', id: 'phone-' + app, 'data-app': app },
    h('figcaption', { class: 'phone-bar' },
      h('span', { class: 'phone-name', id: nameId }, appName(app)),
      h('button', {
        type: 'button', class: 'secondary home', 'data-home': app,
        'aria-label': t('phone.home.label', { app: appName(app) }),
        onclick: () => goHome(app),
      }, t('phone.home'))),
    h('div', { class: 'screen' },
      h('iframe', {
        id: 'frame-' + app, name: 'phone-' + app, src: '/demo/phone/' + app,
        title: t('phone.frame', { app: appName(app) }),
      }))));
}

function goHome(app) {
  document.getElementById('frame-' + app).src = '/demo/phone/' + app;
}

// A phone asks: open a switch's launchUrl in the target's phone; or tells: I am the one in use.
window.addEventListener('message', (ev) => {
  if (ev.origin !== location.origin || !ev.data || typeof ev.data !== 'object') return;
  const { type, app } = ev.data;
  if (!APPS.includes(app)) return;
  if (type === 'tongban.demo.open' && typeof ev.data.url === 'string') {
    const url = new URL(ev.data.url, location.href);
    if (url.origin !== location.origin) return; // dev apps live here; nothing else is opened
    document.getElementById('frame-' + app).src = url.href;
    document.getElementById('phone-' + app).scrollIntoView({ block: 'nearest', inline: 'nearest', behavior: 'smooth' });
  } else if (type === 'tongban.demo.signedin') {
    selectPhone(app);
    if (ev.data.citizen) selectCitizen(ev.data.citizen, app);
  }
});

function selectPhone(app) {
  selectedPhone = app;
  auditPhone.value = app;
  for (const f of document.querySelectorAll('.phone')) f.classList.toggle('selected', f.dataset.app === app);
  pollAudit();
}

// --- data platform ------------------------------------------------------------------------
const pfCitizen = document.getElementById('pf-citizen');
const pfWho = document.getElementById('pf-who');
const pfResult = document.getElementById('pf-result');
const pfSend = document.getElementById('pf-send');
let dataToken = null; // { token, until }

function fillCitizens() {
  const keep = pfCitizen.value;
  pfCitizen.replaceChildren(...citizens.map((c) => h('option', { value: c.key }, c.name + ' · ' + c.key)));
  if (keep) pfCitizen.value = keep;
  fillWho();
}

function fillWho(preferApp) {
  const c = citizens.find((x) => x.key === pfCitizen.value);
  if (!c) return;
  const keep = pfWho.value;
  const opts = [];
  for (const app of APPS) {
    const a = c.accounts[app];
    if (a) opts.push(h('option', { value: 'account:' + app }, t('platform.byAccount', { app: appName(app), subject: a.subject })));
  }
  const masked = c.idNumber.slice(0, 3) + '…' + c.idNumber.slice(-4);
  opts.push(h('option', { value: 'id' }, t('platform.byId', { id: masked })));
  pfWho.replaceChildren(...opts);
  if (preferApp && c.accounts[preferApp]) pfWho.value = 'account:' + preferApp;
  else if (keep && [...pfWho.options].some((o) => o.value === keep)) pfWho.value = keep;
}

function selectCitizen(key, app) {
  if (!citizens.some((c) => c.key === key)) return;
  pfCitizen.value = key;
  fillWho(app);
}

pfCitizen.addEventListener('change', () => fillWho());

async function platformToken() {
  if (dataToken && dataToken.until > Date.now()) return dataToken.token;
  // dev mode publishes this secret (config.Dev); a real data platform keeps its own.
  const token = await machineToken('jiaxing-data', 'dev-jiaxing-data-secret');
  dataToken = { token, until: Date.now() + 4 * 60 * 1000 };
  return token;
}

function eventFor(kind, c, who) {
  const ev = { id: 'demo-' + kind + '-' + crypto.randomUUID(), occurredAt: new Date().toISOString() };
  if (who === 'id') ev.idNumber = c.idNumber;
  else {
    const app = who.slice('account:'.length);
    ev.app = app;
    ev.subject = c.accounts[app].subject;
  }
  if (kind === 'birth') Object.assign(ev, { type: 'birth.registered', attributes: { childName: '小明' } });
  if (kind === 'residence') Object.assign(ev, { type: 'residence.changed', attributes: { residence: { code: '330402' } } });
  if (kind === 'birthday') Object.assign(ev, { type: 'person.birthday' });
  return ev;
}

document.getElementById('event-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const c = citizens.find((x) => x.key === pfCitizen.value);
  if (!c) return;
  const kind = new FormData(e.target).get('event');
  pfSend.disabled = true;
  pfResult.className = 'small';
  pfResult.textContent = t('platform.sending');
  try {
    let token = await platformToken();
    const q = 'mutation($ev: [CitizenEventInput!]!) { ingestEvents(events: $ev) { accepted duplicates rejected { index code message } } }';
    const vars = { ev: [eventFor(kind, c, pfWho.value)] };
    let res = await gql(q, vars, token);
    if (errorCode(res) === 'UNAUTHENTICATED') { dataToken = null; token = await platformToken(); res = await gql(q, vars, token); }
    if (res.errors.length) throw new Error(res.errors[0].message);
    const r = res.data.ingestEvents;
    if (r.rejected.length) {
      pfResult.className = 'small bad';
      pfResult.textContent = t('platform.rejected', { code: r.rejected[0].code, message: r.rejected[0].message });
    } else {
      pfResult.className = 'small ok';
      pfResult.textContent = r.accepted ? t('platform.accepted', { n: r.accepted }) : t('platform.duplicate');
    }
    pfResult.dataset.result = r.rejected.length ? 'rejected' : 'accepted';
  } catch (err) {
    pfResult.className = 'small bad';
    pfResult.dataset.result = 'failed';
    pfResult.textContent = t('platform.failed', { message: err.message });
  } finally {
    pfSend.disabled = false;
  }
});

// --- activity strip ------------------------------------------------------------------------
const auditPhone = document.getElementById('audit-phone');
const auditList = document.getElementById('audit-list');
const auditNote = document.getElementById('audit-note');
let lastActivity = [];
let polling = false;

function fillAuditPhones() {
  auditPhone.replaceChildren(...APPS.map((a) => h('option', { value: a }, appName(a))));
  auditPhone.value = selectedPhone;
}
auditPhone.addEventListener('change', () => selectPhone(auditPhone.value));

function activityText(a) {
  const vars = { from: a.fromApp ? a.fromApp.name : '', to: a.toApp ? a.toApp.name : '' };
  let s = t('kind.' + a.kind, vars);
  if (s === 'kind.' + a.kind) s = a.kind; // a kind newer than this page
  if (a.reason) s += '（' + (t('reason.' + a.reason) === 'reason.' + a.reason ? a.reason : t('reason.' + a.reason)) + '）';
  return s;
}

function renderActivity() {
  auditList.replaceChildren(...lastActivity.map((a) => h('li', { 'data-kind': a.kind, 'data-id': a.id },
    h('time', { datetime: a.at }, new Date(a.at).toLocaleTimeString(tr.lang === 'zh' ? 'zh-CN' : 'en-GB')),
    ' ', h('span', {}, activityText(a)))));
}

async function pollAudit() {
  if (polling) return;
  polling = true;
  try {
    let s = null;
    try { s = JSON.parse(sessionStorage.getItem(sessionKey(selectedPhone)) || 'null'); } catch (_) { /* none */ }
    if (!s || !s.accessToken) {
      auditNote.textContent = lastActivity.length ? t('audit.ended') : t('audit.none');
      auditNote.dataset.state = 'none';
      return;
    }
    const res = await gql('{ me { activity(first: 20) { edges { node { id kind reason at fromApp { id name } toApp { id name } } } } } }', {}, s.accessToken);
    if (!res.data || !res.data.me) {
      auditNote.textContent = lastActivity.length ? t('audit.ended') : t('audit.none');
      auditNote.dataset.state = 'ended';
      return;
    }
    lastActivity = res.data.me.activity.edges.map((e) => e.node);
    auditNote.textContent = lastActivity.length ? '' : t('audit.empty');
    auditNote.dataset.state = 'live';
    renderActivity();
  } finally {
    polling = false;
  }
}

// --- language -------------------------------------------------------------------------------
function relabel() {
  tr.apply();
  document.getElementById('lang').textContent = t('lang.toggle');
  for (const app of APPS) {
    document.getElementById('phone-name-' + app).textContent = appName(app);
    document.getElementById('frame-' + app).title = t('phone.frame', { app: appName(app) });
    const home = document.querySelector(`[data-home="${app}"]`);
    home.textContent = t('phone.home');
    home.setAttribute('aria-label', t('phone.home.label', { app: appName(app) }));
  }
  fillAuditPhones();
  fillWho();
  renderActivity();
}
// The phones follow through the storage event (same origin, other documents).
document.getElementById('lang').addEventListener('click', () => { tr.setLang(tr.lang === 'zh' ? 'en' : 'zh'); relabel(); });

// --- start ----------------------------------------------------------------------------------
relabel();
selectPhone(selectedPhone);
fetch('/demo/citizens.json').then((r) => r.json()).then((list) => { citizens = list; fillCitizens(); });
setInterval(pollAudit, 2000);
