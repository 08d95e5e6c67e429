// One phone: a member app's web client of Tongban. It signs in at its own (simulated) identity
// provider with the code flow and PKCE, calls /graphql with its session, subscribes to
// notificationReceived over the websocket, and switches into other apps through switchApp and
// consent; the page around it opens the launchUrl in the target app's phone.
import { gql, errorCode, subscribe, pkce } from '/ui/gql.js';
import { i18n } from '/ui/i18n.js';
import { dict, appNames, sessionKey, h } from '/demo/texts.js';

const tr = i18n(dict);
const t = tr.t;
const app = decodeURIComponent(location.pathname.split('/').pop());
const redirectUri = location.origin + '/demo/phone/' + app;
const pendingKey = 'tongban.demo.pending.' + app;
const appName = (id) => (appNames[id] ? appNames[id][tr.lang] : id);

const view = document.getElementById('view');
const tabs = document.getElementById('tabs');
const badge = document.getElementById('badge');
const banner = document.getElementById('banner');
const sheet = document.getElementById('sheet');
const backdrop = document.getElementById('sheet-backdrop');

let session = load();
let citizens = [];
let apps = [];
let me = null;
let tab = 'home';
let unsubscribe = null;
let refreshTimer = null;
let signedOutNotice = false;
let render = () => {};

function load() {
  try { return JSON.parse(sessionStorage.getItem(sessionKey(app)) || 'null'); } catch (_) { return null; }
}
function save(s) {
  session = s;
  if (s) sessionStorage.setItem(sessionKey(app), JSON.stringify(s));
  else sessionStorage.removeItem(sessionKey(app));
}
const call = (q, vars) => gql(q, vars, session && session.accessToken);

// --- sign-in (code flow with PKCE, at the app's own provider) ----------------------------------
async function beginSignIn(citizen) {
  const { verifier, challenge } = await pkce();
  const res = await gql('mutation($a: ID!, $r: String!, $c: String) { beginSignIn(app: $a, redirectUri: $r, codeChallenge: $c) { authorizationUrl state } }',
    { a: app, r: redirectUri, c: challenge });
  if (res.errors.length) throw new Error(res.errors[0].message);
  const { authorizationUrl, state } = res.data.beginSignIn;
  sessionStorage.setItem(pendingKey, JSON.stringify({ state, verifier, citizen }));
  // The dev provider answers a login_hint at once; a real one shows its login page here.
  location.assign(authorizationUrl + '&login_hint=' + encodeURIComponent(citizen));
}

async function completeSignIn(params) {
  const pending = JSON.parse(sessionStorage.getItem(pendingKey) || 'null');
  sessionStorage.removeItem(pendingKey);
  history.replaceState(null, '', location.pathname); // the code works once: keep it out of history
  if (params.get('error')) throw new Error(params.get('error') + ': ' + (params.get('error_description') || ''));
  if (!pending || pending.state !== params.get('state')) throw new Error('state does not match the sign-in begun here');
  const res = await gql(`mutation($s: String!, $c: String!, $i: String, $v: String) {
    completeSignIn(state: $s, code: $c, iss: $i, codeVerifier: $v) { accessToken refreshToken expiresAt assurance } }`,
  { s: params.get('state'), c: params.get('code'), i: params.get('iss'), v: pending.verifier });
  if (res.errors.length) throw new Error(res.errors[0].message);
  save({ ...res.data.completeSignIn, citizen: pending.citizen });
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session) return;
  const wait = Math.max(5000, new Date(session.expiresAt).getTime() - Date.now() - 60000);
  refreshTimer = setTimeout(async () => {
    const res = await gql('mutation($r: String!) { refreshSession(refreshToken: $r) { accessToken refreshToken expiresAt assurance } }', { r: session.refreshToken });
    if (res.data && res.data.refreshSession) {
      save({ ...session, ...res.data.refreshSession });
      startSubscription();
      scheduleRefresh();
    } else if (errorCode(res) === 'UNAUTHENTICATED') signedOut();
    else refreshTimer = setTimeout(scheduleRefresh, 10000);
  }, wait);
}

function signedOut() {
  if (unsubscribe) unsubscribe();
  unsubscribe = null;
  clearTimeout(refreshTimer);
  save(null);
  me = null;
  signedOutNotice = true;
  banner.classList.remove('in');
  closeSheet();
  showSignIn();
}

// --- the signed-out screen --------------------------------------------------------------------
function showSignIn(error) {
  tabs.hidden = true;
  view.removeAttribute('role');
  view.removeAttribute('aria-labelledby');
  document.getElementById('who').textContent = '';
  const mine = citizens.filter((c) => c.accounts[app]);
  const sel = h('select', { id: 'citizen' }, mine.map((c) =>
    h('option', { value: c.key }, `${c.name} · ${c.key} (L${c.accounts[app].level})`)));
  const status = h('p', { id: 'signin-status', role: 'status', class: error ? 'bad' : '' }, error ? t('signin.failed', { message: error }) : '');
  const btn = h('button', { type: 'submit', id: 'signin' }, t('signin.button'));
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    btn.disabled = true;
    status.className = '';
    status.textContent = t('signin.going');
    try { await beginSignIn(sel.value); } catch (err) {
      btn.disabled = false; status.className = 'bad'; status.textContent = t('signin.failed', { message: err.message });
    }
  } },
  h('h2', {}, t('signin.title', { app: appName(app) })),
  h('p', { class: 'muted small' }, t('signin.lead', { app: appName(app) })),
  mine.length ? [h('label', { for: 'citizen' }, t('signin.citizen')), sel, btn] : h('p', {}, t('signin.none', { app: appName(app) })),
  status);
  const notice = signedOutNotice && h('div', { class: 'card notice', id: 'signed-out', role: 'alert' },
    h('h2', {}, t('signedout.title')), h('p', {}, t('signedout.body')));
  view.replaceChildren(...[notice, form].filter(Boolean));
  document.body.dataset.state = signedOutNotice ? 'signed-out' : 'signed-in-needed';
  render = () => showSignIn(error);
}

// --- signed in --------------------------------------------------------------------------------
async function loadMe() {
  const res = await call(`{ me { id displayName maskedIdNumber unreadCount
      accounts { app { id name } subject assurance } } }`);
  if (!res.data || !res.data.me) {
    if (!res.errors.length || errorCode(res) === 'UNAUTHENTICATED') signedOut();
    return false;
  }
  me = res.data.me;
  setBadge(me.unreadCount);
  return true;
}

function setBadge(n) {
  badge.hidden = !n;
  badge.textContent = n > 99 ? '99+' : String(n);
  badge.setAttribute('aria-label', t('inbox.unread', { n }));
  badge.dataset.count = String(n);
}

async function showSignedIn() {
  if (!(await loadMe())) return;
  tabs.hidden = false;
  document.body.dataset.state = 'signed-in';
  document.getElementById('who').textContent = me.displayName || '';
  window.parent.postMessage({ type: 'tongban.demo.signedin', app, citizen: session.citizen }, location.origin);
  startSubscription();
  scheduleRefresh();
  selectTab(tab);
}

function selectTab(name, focus) {
  tab = name;
  if (name === 'inbox') banner.classList.remove('in'); // the inbox shows it now
  for (const b of tabs.querySelectorAll('[role=tab]')) {
    const on = b.dataset.tab === name;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
    if (on && focus) b.focus();
  }
  view.setAttribute('aria-labelledby', 'tab-' + name);
  view.setAttribute('role', 'tabpanel');
  ({ home: showHome, inbox: showInbox, me: showMeTab })[name]();
}
tabs.addEventListener('click', (e) => { const b = e.target.closest('[role=tab]'); if (b) selectTab(b.dataset.tab); });
tabs.addEventListener('keydown', (e) => {
  const order = ['home', 'inbox', 'me'];
  const i = order.indexOf(tab);
  const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: order.length - 1 }[e.key];
  if (next === undefined) return;
  e.preventDefault();
  selectTab(order[(next + order.length) % order.length], true);
});

// Home: the person, the linked accounts, the services of the other apps.
async function showHome() {
  const level = session.assurance;
  const person = h('section', { class: 'card person', 'aria-labelledby': 'person-name' },
    h('h2', { id: 'person-name' }, me.displayName || '—'),
    h('p', { class: 'muted' }, h('span', { id: 'masked-id' }, me.maskedIdNumber || ''), ' · ', t('person.level', { n: level })),
    h('h3', {}, t('person.accounts')),
    h('ul', { class: 'accounts', id: 'accounts' }, me.accounts.map((a) =>
      h('li', { 'data-app': a.app.id }, h('b', {}, a.app.name), ' ', h('span', { class: 'muted' }, `${a.subject} · L${a.assurance}`)))));
  const status = h('p', { id: 'switch-status', role: 'status', class: 'small' });
  const lists = h('div', { id: 'services' }, h('p', { class: 'muted' }, t('services.loading')));
  view.replaceChildren(person, status, lists);
  render = showHome;
  const others = apps.filter((a) => a.id !== app && a.canReceiveSwitch);
  const groups = await Promise.all(others.map((o) =>
    gql('query($a: ID!) { services(first: 20, filter: {app: $a}) { edges { node { id name department minAssurance } } } }', { a: o.id })
      .then((r) => ({ app: o, services: r.data ? r.data.services.edges.map((e) => e.node) : [] }))));
  if (render !== showHome) return;
  lists.replaceChildren(...groups.map((g) => h('section', { class: 'card', 'aria-labelledby': 'svc-' + g.app.id },
    h('h3', { id: 'svc-' + g.app.id }, t('services.title', { app: g.app.name })),
    h('ul', { class: 'services' }, g.services.map((s) => h('li', {},
      h('button', {
        type: 'button', class: 'service', 'data-service': s.id, 'data-target': g.app.id,
        onclick: () => startSwitch(g.app, s, status),
      }, h('span', {}, s.name), h('small', { class: 'muted' }, s.department + (s.minAssurance > level ? ' · L' + s.minAssurance : '')))))))));
}

// --- switching ----------------------------------------------------------------------------------
const switchQuery = `mutation($t: ID!, $s: ID, $lang: String) { switchApp(target: $t, serviceId: $s) {
  consentRequired consentOptional withheld consentText(lang: $lang) { scope text } launchUrl expiresAt } }`;

async function startSwitch(target, service, status) {
  status.className = 'small';
  status.textContent = t('switch.going', { app: target.name });
  let res = await call(switchQuery, { t: target.id, s: service.id, lang: tr.lang });
  if (errorCode(res) === 'ASSURANCE_TOO_LOW') {
    status.className = 'small bad';
    status.textContent = t('switch.tooLow', { n: res.errors[0].extensions.required });
    return;
  }
  if (res.errors.length) { status.className = 'small bad'; status.textContent = t('switch.failed', { message: res.errors[0].message }); return; }
  let sw = res.data.switchApp;
  if (sw.consentRequired.length) {
    const scopes = await askConsent(target, sw);
    if (!scopes) { status.textContent = ''; return; }
    const g = await call('mutation($a: ID!, $s: [String!]!) { grantConsent(app: $a, scopes: $s) { scopes } }', { a: target.id, s: scopes });
    if (g.errors.length) { status.className = 'small bad'; status.textContent = t('switch.failed', { message: g.errors[0].message }); return; }
    res = await call(switchQuery, { t: target.id, s: service.id, lang: tr.lang });
    if (res.errors.length) { status.className = 'small bad'; status.textContent = t('switch.failed', { message: res.errors[0].message }); return; }
    sw = res.data.switchApp;
  }
  if (!sw.launchUrl) { status.className = 'small bad'; status.textContent = t('switch.failed', { message: sw.consentRequired.join(', ') }); return; }
  // The launch URL opens the target app (its initiate_login_uri): here, in that app's phone.
  window.parent.postMessage({ type: 'tongban.demo.open', app: target.id, url: sw.launchUrl }, location.origin);
  status.className = 'small ok';
  status.textContent = t('switch.opened', { app: target.name });
}

// The consent sheet: the required scopes listed, the optional ones (offline_access) as unticked
// choices. Resolves to the scopes to grant, or null when the person cancels.
function askConsent(target, sw) {
  return new Promise((resolve) => {
    // The server words each scope, in the reader's language (consentText(lang)).
    const text = Object.fromEntries(sw.consentText.map((s) => [s.scope, s.text]));
    const optional = sw.consentOptional.map((s) => h('input', { type: 'checkbox', id: 'opt-' + s, value: s }));
    const opener = document.activeElement;
    const done = (scopes) => {
      closeSheet();
      if (opener && opener.isConnected) opener.focus(); // back where the person was
      resolve(scopes);
    };
    sheet.replaceChildren(...[
      h('h2', { id: 'sheet-title' }, t('consent.title', { app: target.name })),
      h('ul', { class: 'scopes', id: 'consent-required' }, sw.consentRequired.map((s) =>
        h('li', { 'data-scope': s }, h('b', {}, text[s] || s), ' ', h('small', { class: 'muted' }, `${s} · ${t('consent.required')}`)))),
      sw.consentOptional.length ? h('ul', { class: 'scopes', id: 'consent-optional' }, sw.consentOptional.map((s, i) =>
        h('li', {}, h('label', { for: 'opt-' + s }, optional[i], ' ', h('b', {}, text[s] || s), ' ', h('small', { class: 'muted' }, `${s} · ${t('consent.optional')}`))))) : null,
      sw.withheld.length ? h('p', { class: 'small warn' }, t('consent.withheld', { scopes: sw.withheld.join(', ') })) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', id: 'consent-cancel', onclick: () => done(null) }, t('consent.cancel')),
        h('button', { type: 'button', id: 'consent-allow', onclick: () =>
          done([...sw.consentRequired, ...optional.filter((o) => o.checked).map((o) => o.value)]) }, t('consent.allow'))),
    ].filter(Boolean));
    sheet.hidden = false;
    backdrop.hidden = false;
    sheet.onkeydown = (e) => {
      if (e.key === 'Escape') done(null);
      if (e.key === 'Tab') { // keep focus in the sheet while it is open
        const f = [...sheet.querySelectorAll('button, input')];
        const first = f[0]; const last = f[f.length - 1];
        if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
        else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
      }
    };
    document.getElementById('consent-allow').focus();
  });
}

function closeSheet() {
  sheet.hidden = true;
  backdrop.hidden = true;
  sheet.replaceChildren();
}

// --- inbox --------------------------------------------------------------------------------------
async function showInbox() {
  render = showInbox;
  const res = await call('{ me { unreadCount notifications(first: 20) { edges { node { id title body createdAt readAt service { name app { name } } } } } } }');
  if (!res.data || !res.data.me) { if (!res.errors.length) signedOut(); return; }
  if (render !== showInbox) return;
  setBadge(res.data.me.unreadCount);
  const items = res.data.me.notifications.edges.map((e) => e.node);
  view.replaceChildren(h('section', { class: 'card', 'aria-labelledby': 'inbox-title' },
    h('h2', { id: 'inbox-title' }, t('inbox.title')),
    items.length ? h('ul', { class: 'inbox', id: 'inbox' }, items.map((n) => {
      const d = h('details', { 'data-id': n.id, class: n.readAt ? 'read' : 'unread' },
        h('summary', {}, n.readAt ? null : h('span', { class: 'dot', 'aria-label': t('inbox.new') }), h('span', { class: 'title' }, n.title)),
        h('p', {}, n.body),
        h('p', { class: 'muted small' }, (n.service ? n.service.name + ' · ' + n.service.app.name + ' · ' : '') + new Date(n.createdAt).toLocaleString(tr.lang === 'zh' ? 'zh-CN' : 'en-GB')));
      d.addEventListener('toggle', async () => {
        if (!d.open || n.readAt) return;
        n.readAt = new Date().toISOString();
        d.className = 'read';
        const dot = d.querySelector('.dot');
        if (dot) dot.remove();
        await call('mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }', { ids: [n.id] });
        refreshBadge();
      });
      return h('li', {}, d);
    })) : h('p', { class: 'muted' }, t('inbox.empty'))));
}

async function refreshBadge() {
  const res = await call('{ me { unreadCount } }');
  if (res.data && res.data.me) setBadge(res.data.me.unreadCount);
}

let bannerTimer = null;
function showBanner(n) {
  banner.replaceChildren(h('button', { type: 'button', class: 'banner-body', 'aria-label': t('banner.label') + '：' + n.title,
    onclick: () => { banner.classList.remove('in'); selectTab('inbox', true); } },
  h('strong', {}, n.title), h('span', {}, n.body)));
  banner.dataset.id = n.id;
  banner.classList.add('in');
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => banner.classList.remove('in'), 8000);
}

function startSubscription() {
  if (unsubscribe) unsubscribe();
  unsubscribe = subscribe({
    query: 'subscription { notificationReceived { id title body } }',
    token: session.accessToken,
    onNext: (data) => {
      if (!data || !data.notificationReceived) return;
      showBanner(data.notificationReceived);
      refreshBadge();
      if (tab === 'inbox') showInbox();
    },
    onEnd: async (code) => {
      unsubscribe = null;
      if (code === 4403 || code === 4401) { signedOut(); return; }
      // Closed for another reason (a restart, the network): ask whether the session still is.
      setTimeout(async () => { if (session && (await loadMe())) startSubscription(); }, 3000);
    },
  });
}

// --- me: accounts and sessions -------------------------------------------------------------------
async function showMeTab() {
  render = showMeTab;
  const res = await call('{ me { sessions { id app { id name } assurance device current createdAt } } }');
  if (!res.data || !res.data.me) { if (!res.errors.length) signedOut(); return; }
  if (render !== showMeTab) return;
  const status = h('p', { role: 'status', class: 'small', id: 'sessions-status' });
  view.replaceChildren(h('section', { class: 'card', 'aria-labelledby': 'sessions-title' },
    h('h2', { id: 'sessions-title' }, t('sessions.title')),
    h('ul', { class: 'sessions', id: 'sessions' }, res.data.me.sessions.map((s) => h('li', { 'data-app': s.app.id, 'data-current': String(s.current) },
      h('b', {}, s.app.name), ' ', h('span', { class: 'muted' }, `L${s.assurance} · ${s.device || t('sessions.device.unknown')}`),
      s.current ? h('span', { class: 'tag' }, t('sessions.current')) : null))),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', id: 'sign-out', onclick: async () => { await call('mutation { signOut }'); signedOut(); } }, t('sessions.signout')),
      h('button', { type: 'button', class: 'danger', id: 'sign-out-everywhere', onclick: async () => {
        const r = await call('mutation { signOutEverywhere }');
        if (r.data) status.textContent = t('sessions.ended', { n: r.data.signOutEverywhere });
        signedOut(); // the websocket's 4403 would say so too, a moment later
      } }, t('sessions.everywhere'))),
    status));
}

// --- language: the page around us changed it (storage event), or nothing -------------------------
window.addEventListener('storage', (e) => {
  if (e.key !== 'tongban.lang') return;
  tr.setLang(e.newValue);
  relabel();
});
function relabel() {
  tr.apply();
  document.getElementById('app-title').textContent = appName(app);
  document.title = appName(app) + ' · 通办';
  if (me) setBadge(Number(badge.dataset.count || 0));
  render();
}

// --- start -----------------------------------------------------------------------------------------
async function start() {
  document.body.dataset.app = app;
  relabel();
  const [a, c] = await Promise.all([
    gql('{ apps { id name canSignIn canReceiveSwitch } }'),
    fetch('/demo/citizens.json').then((r) => r.json()),
  ]);
  apps = (a.data && a.data.apps) || [];
  citizens = c;
  const params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) {
    view.replaceChildren(h('p', { role: 'status' }, t('signin.completing')));
    try { await completeSignIn(params); } catch (err) { showSignIn(err.message); return; }
  }
  if (session) await showSignedIn();
  else showSignIn();
}
start();
