// The vocals dashboard: a single page over the public admin API (`/v1`, bearer token). No framework, no build
// step. Every string that comes from the API is put in the page with textContent (never innerHTML).
'use strict';

const TOKEN_KEY = 'vocals.token';
const LINK_NEW = '__link__'; // #account-select: link another account
const MANUAL = '__manual__'; // #account-select: a number on no linked account
const NO_AGENT = 'No agent (inactive)';

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const enc = encodeURIComponent;

/** Builds an element: `el('td', {className: 'x', dataset: {k: 'v'}, attrs: {'aria-label': '…'}}, 'text', child)`. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { attrs, dataset, on, ...rest } = props;
  Object.assign(node, rest);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) node.setAttribute(k, v);
  Object.assign(node.dataset, dataset || {});
  for (const [k, v] of Object.entries(on || {})) node.addEventListener(k, v);
  for (const c of children.flat()) if (c != null) node.append(c instanceof Node ? c : String(c));
  return node;
}

// ---------------------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null; // the request field the error is about (the API's `error.field`)
  }
}

/** Server clock minus ours (ms), from the Date header, so call durations are right when the clocks differ. */
let clockSkew = 0;

/** One request to the admin API. Resolves with the JSON body (null for 204); rejects with an ApiError. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'vocals did not answer: check that it is running and reachable.');
  }
  const date = Date.parse(res.headers.get('Date') || '');
  if (!Number.isNaN(date)) {
    const skew = date - Date.now();
    clockSkew = Math.abs(skew) > 3000 ? skew : 0; // the header has 1 s resolution: ignore small differences
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.ok) return data;
  const e = (data && data.error) || {};
  const message = e.message || `HTTP ${res.status} ${res.statusText}`;
  const err = new ApiError(res.status, e.code || `http_${res.status}`, message, e.field);
  if (res.status === 401) signOut(`Sign in again: ${err.message}.`);
  throw err;
}

/** A 401 has already sent the user back to the sign-in form: callers drop it. */
const isAuthError = (e) => e instanceof ApiError && e.status === 401;

// ---------------------------------------------------------------------------------------------------------
// Small UI helpers: notices, busy buttons, field errors, dialogs, table rows

/** A page-level message in #notice (role=status); `kind` is 'ok' or 'error'; `source` tags who set it. */
function notify(message, kind = 'ok', source = '') {
  const n = $('#notice');
  n.dataset.source = source;
  if (n.textContent === message && n.dataset.kind === (message ? kind : '')) return;
  n.dataset.kind = message ? kind : '';
  n.textContent = message;
}

/** Reports a failed page-level request in #notice (401s are already handled). */
function noticeError(e) {
  if (!isAuthError(e)) notify(e.message, 'error');
}

/** Runs `fn` with `button` disabled, so a request is never sent twice; gives the focus back afterwards. */
async function withBusy(button, fn) {
  if (button.disabled) return undefined;
  const hadFocus = document.activeElement === button;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    // Disabling a focused button drops its focus: give it back if nothing else took it.
    if (hadFocus && button.isConnected && !button.closest('[hidden]') &&
        (document.activeElement === document.body || document.activeElement === null)) {
      button.focus();
    }
  }
}

const isShown = (node) => node && !node.closest('[hidden]') && !node.disabled;

/** Shows `message` under the field `id` (its `<p id="ID-error">`) and marks the field invalid. */
function setFieldError(id, message) {
  const input = document.getElementById(id);
  const p = document.getElementById(`${id}-error`);
  p.textContent = message;
  input.setAttribute('aria-invalid', 'true');
  const described = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
  if (!described.includes(p.id)) input.setAttribute('aria-describedby', [...described, p.id].join(' '));
}

function clearErrors(root) {
  for (const p of $$('.field-error, .form-error, .form-status', root)) p.textContent = '';
  for (const input of $$('[aria-invalid]', root)) input.removeAttribute('aria-invalid');
}

function formError(form, message) {
  $('.form-error', form).textContent = message;
}

/** The form fields each API field is entered in (the first on screen is the one). */
const FIELD_INPUTS = {
  phone_number: ['manual-number', 'account-number'],
  agent_id: ['number-agent', 'change-agent-select'],
  name: ['agent-name'],
  kind: ['agent-kind'],
  stream_url: ['agent-stream-url'],
  system_prompt: ['agent-system-prompt'],
  providers: ['agent-providers'],
  settings: ['agent-settings'],
  signing_secret: ['agent-signing-secret'],
};

/** A field's label as the user reads it ("Stream URL"), without its "(optional)" note. */
function labelOf(id) {
  const label = document.querySelector(`label[for="${id}"]`);
  if (!label) return null;
  const copy = label.cloneNode(true);
  for (const o of $$('.optional', copy)) o.remove();
  return copy.textContent.trim();
}

/** The API's message in the form's words: its leading field name (`stream_url must…`) becomes the label. */
function inFormWords(message, field, id) {
  const label = labelOf(id);
  if (!label || !field) return message;
  return message.replace(new RegExp(`^${field}\\b:?`), label).replace(new RegExp(`\\b${field}\\b`, 'g'), label);
}

/**
 * Shows an API error next to the field it is about, in the form's words: the API's `field` first, then `rules`
 * ([regex on the message, field id], first match wins, only if that field is on screen); anything else goes to
 * the form's `.form-error`.
 */
function showApiError(form, err, rules = []) {
  if (isAuthError(err)) return;
  const id = err.field && (FIELD_INPUTS[err.field] || []).find((i) => isShown(document.getElementById(i)) &&
    form.contains(document.getElementById(i)));
  if (id) {
    setFieldError(id, inFormWords(err.message, err.field, id));
    document.getElementById(id).focus();
    return;
  }
  for (const [re, id] of rules) {
    const input = document.getElementById(id);
    if (re.test(err.message) && isShown(input)) {
      const field = Object.keys(FIELD_INPUTS).find((f) => FIELD_INPUTS[f].includes(id));
      setFieldError(id, inFormWords(err.message, field, id));
      input.focus();
      return;
    }
  }
  formError(form, err.message);
}

/** Opens a modal dialog; `returnFocus()` says where the focus goes when it closes. */
function openDialog(dialog, returnFocus) {
  clearErrors(dialog);
  dialog.returnFocus = returnFocus;
  dialog.showModal();
  focusFirst(dialog);
}

/** The first visible field of a dialog, else its Cancel button. */
function focusFirst(dialog) {
  const field = $$('input, select, textarea', dialog).find(isShown);
  (field || $('.cancel', dialog) || $('button', dialog)).focus();
}

/** Where to go back to: the opener, or (re-rendered) the element `selector` finds, or `fallback`. */
function backTo(opener, selector, fallback) {
  return () => (opener && opener.isConnected ? opener : null) ||
    (selector && document.querySelector(selector)) || document.querySelector(fallback);
}

let closingForSignOut = false;
for (const dialog of $$('dialog')) {
  dialog.addEventListener('close', () => {
    const target = !closingForSignOut && dialog.returnFocus && dialog.returnFocus();
    if (target) target.focus();
  });
  for (const b of $$('.cancel', dialog)) b.addEventListener('click', () => dialog.close());
}

/**
 * Replaces a table body's rows (or shows `emptyText` in one row), keeping the keyboard focus on the same
 * button of the same row (rows carry data-key) when the focus was in the table.
 */
function replaceRows(tbody, rows, emptyText) {
  const active = document.activeElement;
  let key = null;
  let action = null;
  if (active && tbody.contains(active)) {
    key = active.closest('tr') && active.closest('tr').dataset.key;
    action = active.classList[0];
  }
  const columns = tbody.closest('table').tHead.rows[0].cells.length;
  if (rows.length === 0) {
    rows = [el('tr', { className: 'empty' }, el('td', { colSpan: columns }, emptyText))];
  }
  labelCells(tbody.closest('table'), rows);
  tbody.replaceChildren(...rows);
  if (key != null) {
    const tr = $$('tr', tbody).find((r) => r.dataset.key === key);
    const target = tr && (tr.querySelector(`button.${action}`) || tr.querySelector('button'));
    if (target) target.focus();
  }
}

/** Copies each column's header into its cells' data-label (the stacked layout on a narrow screen shows it). */
function labelCells(table, rows) {
  const heads = Array.from(table.tHead.rows[0].cells).map((th) => th.textContent.trim());
  for (const row of rows) {
    Array.from(row.cells).forEach((cell, i) => {
      if (heads[i] && cell.colSpan === 1) cell.dataset.label = heads[i];
    });
  }
}

const dash = () => el('span', { className: 'none' }, '—');

/** A small row button: `cls` first (focus is restored by it), visible `text`, a name that says what it acts on. */
function rowButton(cls, text, label, onClick, variant = 'secondary') {
  return el('button', {
    type: 'button',
    className: `${cls} button ${variant} small`,
    attrs: { 'aria-label': label },
    on: { click: (ev) => onClick(ev.currentTarget) },
  }, text);
}

function fillSelect(select, options, selected) {
  select.replaceChildren(...options.map(([value, text, disabled]) =>
    el('option', { value, disabled: Boolean(disabled) }, text)));
  if (selected !== undefined) select.value = selected;
}

/** Agent options for a select: every agent, then "No agent (inactive)" (value ""). */
const agentOptions = (agents) => [...agents.map((a) => [a.id, agentLabel(a)]), ['', NO_AGENT]];

/** An agent as a picker shows it: its name and kind, "built in" for the echo agent vocals ships. */
const agentLabel = (a) => `${a.name} (${a.builtin ? 'built in, ' : ''}${a.kind})`;

/** The add dialog's agent select: nothing chosen at first (a choice is required), "No agent" a choice. */
const NO_AGENT_CHOSEN = '__none__';
const addAgentOptions = (agents) => [['', 'Choose an agent…'],
  ...agents.map((a) => [a.id, agentLabel(a)]), [NO_AGENT_CHOSEN, NO_AGENT]];

// ---------------------------------------------------------------------------------------------------------
// Formatting

/** m:ss, or h:mm:ss from an hour on. */
function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function timeEl(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return document.createTextNode(iso || '—');
  // Always the date with the time: "Ended 14:02" read the next morning is yesterday's.
  return el('time', { dateTime: iso, title: d.toISOString() }, d.toLocaleString());
}

const STATUS = {
  active: ['Active', 'status-active'],
  inactive: ['Inactive', 'status-inactive'],
  error: ['Error', 'status-error'],
};

/** A number's health problems (what stops its calls), each with what fixes it, as a list. */
function problemList(n, withFix = true) {
  const problems = (n.health && n.health.problems) || [];
  return el('ul', { className: 'problems' }, problems.map((p) => el('li', { dataset: { code: p.code } },
    el('span', { className: 'problem' }, p.message),
    withFix && p.fix ? el('span', { className: 'fix' }, p.fix) : null)));
}

/**
 * The status cell: a badge (text and shape, not only colour) and, when calls will not succeed, why and the fix:
 * "Active — but Twilio sends calls to sip:127.0.0.1:5190, which Twilio cannot reach".
 */
function statusCell(n) {
  const [text, cls] = STATUS[n.status] || [n.status, 'status-unknown'];
  const wrap = el('div', { className: 'status-wrap' }, el('span', { className: `badge ${cls}` }, text));
  const now = scheduleNow(n);
  if (now) wrap.append(el('span', { className: 'status-route' }, ` — ${now}`));
  const health = n.health || { ok: n.status !== 'error', problems: [] };
  if (!health.ok && health.problems.length) {
    const problems = health.problems.filter((p) => !(n.status === 'inactive' && p.code === 'no_agent'));
    if (problems.length) {
      wrap.append(el('span', { className: 'health-lead' }, n.status === 'active' ? ' — but' : ''),
        problemList({ health: { problems } }));
    } else {
      wrap.append(el('span', { className: 'status-note' }, 'No agent: calls are not answered.'));
    }
  } else if (n.status === 'error' && n.status_detail) {
    wrap.append(' ', el('span', { className: 'status-detail' }, n.status_detail));
  }
  return el('td', { className: 'status', dataset: { health: health.ok ? 'ok' : 'problem' } }, wrap);
}

const hasProblem = (n, code) => Boolean(n.health && n.health.problems.some((p) => p.code === code));

/** Drift found by a reconcile is set right with /repair; any other error (configuring, removing) with /retry. */
const isDrift = (n) => hasProblem(n, 'twilio_drift') || /^drift:/.test(n.status_detail || '');

// ---------------------------------------------------------------------------------------------------------
// Sign in / out

function showTokenView(message) {
  stopCallsTimers();
  for (const v of $$('.view')) v.hidden = v.id !== 'token-view';
  $('#sign-out').hidden = true;
  for (const a of $$('nav a')) a.removeAttribute('aria-current');
  document.title = 'Sign in — vocals';
  const form = $('#token-form');
  clearErrors(form);
  form.reset();
  if (message) setFieldError('token', message);
  $('#token').focus();
}

/** Forgets the token and shows the sign-in form (after a 401, or the Sign out button). */
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  closingForSignOut = true;
  for (const d of $$('dialog[open]')) d.close();
  closingForSignOut = false;
  notify('');
  showTokenView(message);
}

$('#token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  clearErrors(ev.target);
  const token = $('#token').value.trim();
  if (!token) {
    setFieldError('token', 'Enter the admin token.');
    $('#token').focus();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  ev.target.reset();
  route(true);
});

$('#sign-out').addEventListener('click', () => {
  signOut('');
  notify('You are signed out.');
});

// ---------------------------------------------------------------------------------------------------------
// Routing: #/numbers (default), #/agents, #/calls

const ROUTES = {
  '/numbers': { view: 'numbers-view', title: 'Phone Numbers', load: () => refreshNumbers() },
  '/agents': { view: 'agents-view', title: 'Agents', load: () => refreshAgents() },
  '/calls': { view: 'calls-view', title: 'Calls', load: () => startCalls() },
};

/** #/calls/{id}: one call's page (its SIP ladder, quality and agent events), under Calls in the menu. */
const CALL_ROUTE = /^\/calls\/([^/]+)$/;

function route(focusHeading) {
  stopCallsTimers();
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    showTokenView('');
    return;
  }
  let path = location.hash.replace(/^#/, '');
  const call = CALL_ROUTE.exec(path);
  if (!ROUTES[path] && !call) {
    path = '/numbers';
    history.replaceState(null, '', '#/numbers');
  }
  const r = call
    ? { view: 'call-view', title: 'Call', load: () => loadCall(decodeURIComponent(call[1])) }
    : ROUTES[path];
  const menu = call ? '/calls' : path;
  for (const v of $$('.view')) v.hidden = v.id !== r.view;
  for (const a of $$('nav a')) {
    if (a.getAttribute('href') === `#${menu}`) a.setAttribute('aria-current', call ? 'true' : 'page');
    else a.removeAttribute('aria-current');
  }
  $('#sign-out').hidden = false;
  document.title = `${r.title} — vocals`;
  if (focusHeading) $(`#${r.view} h1`).focus();
  r.load();
}

window.addEventListener('hashchange', () => {
  notify('');
  route(true);
});

// The skip link must not change the hash (that is the router's).
$('.skip-link').addEventListener('click', (ev) => {
  ev.preventDefault();
  $('#main').focus();
});

// ---------------------------------------------------------------------------------------------------------
// Phone numbers

const data = { numbers: [], agents: [], accounts: [], other: null };

const agentName = (id) => {
  const a = data.agents.find((x) => x.id === id);
  return a ? a.name : id;
};

const accountLabel = (a) => (a.friendly_name ? `${a.friendly_name} (${a.account_sid})` : a.account_sid);

/** GET /v1/twilio/accounts, or none when that fails for another reason than the token. */
async function fetchAccounts() {
  try {
    return (await api('GET', '/v1/twilio/accounts')).accounts || [];
  } catch (e) {
    if (isAuthError(e)) throw e;
    return [];
  }
}

async function refreshNumbers() {
  try {
    const [numbers, agents, accounts] = await Promise.all([
      api('GET', '/v1/numbers'), api('GET', '/v1/agents'), fetchAccounts(),
    ]);
    data.numbers = numbers.numbers || [];
    data.other = numbers.other_numbers || null;
    data.agents = agents.agents || [];
    data.accounts = accounts;
    renderNumbers();
  } catch (e) {
    noticeError(e);
  }
}

function renderNumbers() {
  const rows = data.numbers.map((n) => {
    const num = n.phone_number;
    const account = n.twilio_account_sid && data.accounts.find((a) => a.account_sid === n.twilio_account_sid);
    const actions = [
      rowButton('change-agent', 'Change agent', `Change agent for ${num}`, (b) => openChangeAgent(n, b)),
      rowButton('rules', n.rules && n.rules.length ? `Rules (${n.rules.length})` : 'Rules',
        `Routing rules for ${num}`, (b) => openRules(n, b)),
    ];
    if (n.twilio_number_sid && (isDrift(n) || hasProblem(n, 'origination_elsewhere'))) {
      actions.push(rowButton('repair', 'Repair', `Repair Twilio setup for ${num}`, (b) => openRepair(n, b)));
    } else if (n.status === 'error' && n.twilio_number_sid) {
      actions.push(rowButton('retry', 'Retry', `Retry Twilio setup for ${num}`, (b) => configureTwilio(n, 'retry', b)));
    }
    actions.push(rowButton('remove', 'Remove', `Remove ${num}`, (b) => openRemove(n, b), 'danger-outline'));
    const open = el('button', {
      type: 'button', className: 'number-link open-number', attrs: { 'aria-label': `${num}: details and agent` },
      on: { click: (ev) => openChangeAgent(n, ev.currentTarget) },
    }, num);
    return el('tr', { dataset: { number: num, key: num } },
      el('th', { scope: 'row', className: 'number' }, open),
      el('td', {}, n.agent_id ? agentName(n.agent_id) : dash()),
      statusCell(n),
      el('td', { className: 'account' },
        n.twilio_account_sid ? (account ? accountLabel(account) : n.twilio_account_sid) : dash()),
      el('td', { className: 'actions' }, el('div', { className: 'row-actions' }, actions)));
  });
  replaceRows($('#numbers-table tbody'), rows, 'No numbers yet. Add one with “Add number”.');
  $('#reconcile').hidden = data.accounts.length === 0;
  const banner = $('#fallback-banner');
  banner.hidden = !data.other;
  if (data.other) {
    banner.dataset.answered = data.other.answered_by ? 'yes' : 'no';
    banner.textContent = `Other numbers (not on this page): ${data.other.rule}.`;
  }
}

/** POST /v1/numbers/{n}/twilio/retry or /repair: both configure Twilio again; the answer is the number. */
async function configureTwilio(n, which, button) {
  try {
    const updated = await withBusy(button, () =>
      api('POST', `/v1/numbers/${enc(n.phone_number)}/twilio/${which}`));
    if (updated.status === 'error') {
      notify(`${updated.phone_number} is still in error: ${updated.status_detail}`, 'error');
    }
    else notify(`${updated.phone_number} is set up in Twilio again: ${STATUS[updated.status][0]}.`);
    await refreshNumbers();
  } catch (e) {
    noticeError(e);
  }
}

$('#reconcile').addEventListener('click', async (ev) => {
  try {
    const r = await withBusy(ev.currentTarget, () => api('POST', '/v1/twilio/reconcile'));
    const drift = r.drift || [];
    if (drift.length === 0) notify('Twilio matches vocals: nothing drifted.');
    else {
      const plain = (d) => `${d.phone_number}: ${d.detail.replace(/^drift:\s*/, '')}`;
      notify(`Changed in Twilio since vocals set it up — ${drift.map(plain).join('; ')}`, 'error');
    }
    await refreshNumbers();
  } catch (e) {
    noticeError(e);
  }
});

// --- Add a number ---------------------------------------------------------------------------------------

const addForm = $('#add-number-form');
/** The add dialog's state: linked accounts, 'twilio' or 'manual' (or null before a choice), the loads. */
const add = { accounts: [], mode: null, numbers: new Map(), list: [], chosen: '', shown: 0, seq: 0 };

/** How many matching numbers the picker lists at a time ("Show more" lists the next ones). */
const PICKER_PAGE = 100;

$('#add-number').addEventListener('click', async (ev) => {
  const opener = ev.currentTarget;
  try {
    await withBusy(opener, async () => {
      const [accounts, agents] = await Promise.all([fetchAccounts(), api('GET', '/v1/agents')]);
      add.accounts = accounts;
      data.agents = agents.agents || [];
    });
  } catch (e) {
    noticeError(e);
    return;
  }
  addForm.reset();
  clearErrors(addForm);
  const agents = data.agents;
  fillSelect($('#number-agent'), addAgentOptions(agents), '');
  $('#number-agent-hint').textContent = agents.length
    ? 'Without an agent the number is inactive: its calls are refused (480) and Twilio fails over.'
    : 'There are no agents yet: the number will be inactive until you create one and assign it.';
  showAccountStep(add.accounts[0] && add.accounts[0].account_sid);
  openDialog($('#add-number-dialog'), backTo(opener, null, '#add-number'));
});

/** Step 1: the account select (with accounts) or the link fields (without); `selected`: the sid to pick. */
function showAccountStep(selected) {
  const has = add.accounts.length > 0;
  $('#account-select-group').hidden = !has;
  $('#use-manual').hidden = has;
  if (has) {
    fillSelect($('#account-select'), [
      ...add.accounts.map((a) => [a.account_sid, accountLabel(a)]),
      [LINK_NEW, 'Link another Twilio account…'],
      [MANUAL, 'No Twilio account: type the number'],
    ], selected || add.accounts[0].account_sid);
    return onAccountChoice();
  }
  $('#link-fields').hidden = false;
  setMode(null);
  return Promise.resolve();
}

/** 'twilio' (pick from the account), 'manual' (type it) or null (step 2 hidden). */
function setMode(mode) {
  add.mode = mode;
  $('#step-number').hidden = mode === null;
  $('#account-number-group').hidden = mode !== 'twilio';
  $('#manual-number-group').hidden = mode !== 'manual';
  $('#use-manual').textContent = mode === 'manual' ? 'Link a Twilio account instead' : 'Add a number without Twilio';
}

function onAccountChoice() {
  const v = $('#account-select').value;
  clearErrors(addForm);
  $('#link-fields').hidden = v !== LINK_NEW;
  if (v === LINK_NEW || v === MANUAL) {
    setMode(v === MANUAL ? 'manual' : null);
    return Promise.resolve();
  }
  setMode('twilio');
  return loadAccountNumbers(v);
}

$('#account-select').addEventListener('change', onAccountChoice);

$('#use-manual').addEventListener('click', () => {
  const manual = add.mode !== 'manual';
  clearErrors(addForm);
  $('#link-fields').hidden = manual;
  setMode(manual ? 'manual' : null);
  $(manual ? '#manual-number' : '#account-sid').focus();
});

/**
 * Step 2 for an account: its numbers (GET /v1/twilio/accounts/{sid}/numbers, once per account per dialog, the
 * stand-in and Twilio page them server-side) in a searchable list: typing matches anywhere in the digits or the
 * friendly name, the filter keeps free or in-use ones, and nothing is chosen until the user picks one.
 */
async function loadAccountNumbers(sid) {
  const seq = ++add.seq;
  const input = $('#account-number');
  add.list = [];
  add.numbers = new Map();
  choose('');
  input.value = '';
  input.disabled = true;
  $('#account-number-progress').hidden = false;
  $('#account-number-count').textContent = 'Loading the account’s numbers…';
  $('#account-number-list').replaceChildren();
  try {
    const r = await api('GET', `/v1/twilio/accounts/${enc(sid)}/numbers`);
    if (seq !== add.seq) return; // another account was picked meanwhile
    add.list = r.numbers || [];
    add.numbers = new Map(add.list.map((n) => [n.phone_number, n]));
    renderPicker();
  } catch (e) {
    if (seq !== add.seq) return;
    $('#account-number-count').textContent = 'Could not load the numbers.';
    showApiError(addForm, e, [[/Twilio account/i, 'account-select']]);
  } finally {
    if (seq === add.seq) {
      input.disabled = false;
      $('#account-number-progress').hidden = true;
    }
  }
}

/** The digits of a query or a number, for matching "(415) 555-1037" against "+14155551037". */
const digitsOf = (s) => s.replace(/\D/g, '');

/** The numbers the query and the filter keep. */
function pickerMatches() {
  const q = $('#account-number').value.trim().toLowerCase();
  const qDigits = digitsOf(q);
  const filter = ($('input[name="number-filter"]:checked') || {}).value || 'all';
  return add.list.filter((n) => {
    if (filter === 'free' && (n.in_use || n.added || !n.voice)) return false;
    if (filter === 'in-use' && !n.in_use) return false;
    if (!q) return true;
    return (qDigits && digitsOf(n.phone_number).includes(qDigits)) ||
      (n.friendly_name || '').toLowerCase().includes(q);
  });
}

/** Lists the first matches (PICKER_PAGE more with each "Show more") and says how many match. */
function renderPicker(more = false) {
  const matches = pickerMatches();
  add.shown = more ? Math.min(matches.length, add.shown + PICKER_PAGE) : Math.min(matches.length, PICKER_PAGE);
  const total = add.list.length;
  const fmt = (x) => x.toLocaleString('en-US');
  $('#account-number-count').textContent = total === 0 ? 'This account has no numbers.'
    : `${fmt(matches.length)} of ${fmt(total)} numbers match` +
      (matches.length > add.shown ? ` (showing the first ${fmt(add.shown)})` : '') + '.';
  const items = matches.slice(0, add.shown).map((n) => {
    const off = n.added || !n.voice;
    let note = '';
    if (n.added) note = 'already added';
    else if (!n.voice) note = 'no voice';
    else if (n.in_use) note = `in use: ${n.in_use_by}`;
    return el('li', {
      role: 'option', id: `pick-${digitsOf(n.phone_number)}`, className: 'picker-option',
      dataset: { number: n.phone_number },
      attrs: { 'aria-selected': String(n.phone_number === add.chosen), 'aria-disabled': off ? 'true' : null },
      on: { click: () => { if (!off) choose(n.phone_number); } },
    }, el('span', { className: 'number' }, n.phone_number),
    n.friendly_name && n.friendly_name !== n.phone_number ? el('span', { className: 'name' }, n.friendly_name) : null,
    note ? el('span', { className: 'note' }, note) : null);
  });
  $('#account-number-list').replaceChildren(...items);
  const more_ = $('#account-number-more');
  more_.hidden = matches.length <= add.shown;
  more_.textContent = `Show ${fmt(Math.min(PICKER_PAGE, matches.length - add.shown))} more`;
}

/** Picks a number (or none, with ''), marks it in the list and says what answers it now. */
function choose(number) {
  add.chosen = number;
  for (const li of $$('#account-number-list li')) li.setAttribute('aria-selected', String(li.dataset.number === number));
  const input = $('#account-number');
  const li = number && document.getElementById(`pick-${digitsOf(number)}`);
  if (li) input.setAttribute('aria-activedescendant', li.id);
  else input.removeAttribute('aria-activedescendant');
  if (number) {
    input.value = number;
    input.removeAttribute('aria-invalid');
    $('#account-number-error').textContent = '';
  }
  describeAccountNumber();
}

/** Says what answers the chosen number now (adding it takes that over; removing it puts it back). */
function describeAccountNumber() {
  const n = add.numbers.get(add.chosen);
  $('#account-number-hint').textContent = !n ? '' : n.in_use
    ? `Chosen: ${n.phone_number}. Now answered by ${n.in_use_by}. Adding it to vocals takes it over; removing ` +
      'it later puts that back.'
    : `Chosen: ${n.phone_number}.`;
}

$('#account-number').addEventListener('input', () => {
  // Typing again undoes a choice that no longer reads as the input.
  if (add.chosen && $('#account-number').value !== add.chosen) choose('');
  renderPicker();
});
$('#account-number').addEventListener('keydown', (ev) => {
  const options = $$('#account-number-list li:not([aria-disabled="true"])');
  if (!options.length || !['ArrowDown', 'ArrowUp', 'Enter'].includes(ev.key)) return;
  const at = options.findIndex((li) => li.dataset.number === add.chosen);
  if (ev.key === 'Enter') {
    // Enter takes the only match, else (with a choice made) submits the form as usual.
    if (!add.chosen && options.length === 1) {
      ev.preventDefault();
      choose(options[0].dataset.number);
    }
    return;
  }
  ev.preventDefault();
  const next = ev.key === 'ArrowDown' ? Math.min(options.length - 1, at + 1) : Math.max(0, at - 1);
  choose(options[next].dataset.number);
  options[next].scrollIntoView({ block: 'nearest' });
});
for (const r of $$('input[name="number-filter"]')) r.addEventListener('change', () => renderPicker());
$('#account-number-more').addEventListener('click', () => renderPicker(true));

/** POST /v1/twilio/accounts {account_sid, auth_token, friendly_name}; then the account is picked. */
async function linkAccount() {
  clearErrors(addForm);
  const sid = $('#account-sid').value.trim();
  const token = $('#auth-token').value.trim();
  if (!sid) setFieldError('account-sid', 'Enter the Account SID: AC followed by 32 hex digits.');
  if (!token) setFieldError('auth-token', 'Enter the account’s Auth Token.');
  if (!sid || !token) {
    $(`#${sid ? 'auth-token' : 'account-sid'}`).focus();
    return;
  }
  try {
    const account = await withBusy($('#link-account'), async () => {
      const linked = await api('POST', '/v1/twilio/accounts',
        { account_sid: sid, auth_token: token, friendly_name: $('#account-name').value.trim() });
      add.accounts = await fetchAccounts();
      if (!add.accounts.some((a) => a.account_sid === linked.account_sid)) add.accounts.push(linked);
      return linked;
    });
    for (const id of ['account-sid', 'auth-token', 'account-name']) $(`#${id}`).value = '';
    const loading = showAccountStep(account.account_sid); // hides the link fields, shows the select
    $('#account-select').focus();
    await loading;
    $('#add-number-status').textContent = `Linked ${accountLabel(account)}. Now pick the number.`;
    $('#account-number').focus();
  } catch (e) {
    showApiError(addForm, e, [
      [/auth_token|credentials/i, 'auth-token'],
      [/account_sid|AC followed/i, 'account-sid'],
      [/friendly_name/i, 'account-name'],
    ]);
  }
}
$('#link-account').addEventListener('click', linkAccount);

/** POST /v1/numbers {phone_number, agent_id, twilio_account_sid?}. */
async function saveNumber() {
  clearErrors(addForm);
  const manual = add.mode === 'manual';
  const field = manual ? 'manual-number' : 'account-number';
  // A typed number goes as typed: vocals reads national forms with the country of the numbers added.
  const phone = manual ? $('#manual-number').value.trim() : add.chosen;
  const agent = $('#number-agent').value;
  if (!phone) {
    setFieldError(field, manual ? 'Enter the phone number, e.g. +1 415 555 0123.' : 'Choose a number from the list.');
  }
  if (!agent) setFieldError('number-agent', 'Choose an agent, or “No agent (inactive)”.');
  if (!phone || !agent) {
    $(`#${phone ? 'number-agent' : field}`).focus();
    return;
  }
  const body = { phone_number: phone, agent_id: agent === NO_AGENT_CHOSEN ? null : agent };
  if (!manual) body.twilio_account_sid = $('#account-select').value;
  try {
    const n = await withBusy($('#save-number'), async () => {
      const added = await api('POST', '/v1/numbers', body);
      await refreshNumbers();
      return added;
    });
    const row = `#numbers-table tr[data-number="${CSS.escape(n.phone_number)}"] button`;
    $('#add-number-dialog').returnFocus = backTo(null, row, '#add-number');
    $('#add-number-dialog').close();
    if (n.status === 'error') notify(`Added ${n.phone_number}, but it is in error: ${n.status_detail}`, 'error');
    else notify(`Added ${n.phone_number}: ${STATUS[n.status] ? STATUS[n.status][0] : n.status}.` +
      (manual && phone !== n.phone_number ? ` (${phone} is written ${n.phone_number} in E.164.)` : ''));
  } catch (e) {
    showApiError(addForm, e, [
      [/phone_number|E\.164|already added|is not a number of|voice calls/i, field],
      [/agent/i, 'number-agent'],
      [/twilio_account_sid|Twilio account/i, 'account-select'],
    ]);
  }
}

addForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (add.mode !== null) saveNumber();
  else formError(addForm, 'Link the Twilio account first, or add a number without Twilio.');
});

// Enter in a link field links the account (rather than submitting the whole form).
$('#link-fields').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && ev.target.tagName === 'INPUT') {
    ev.preventDefault();
    linkAccount();
  }
});

// --- Change agent / remove --------------------------------------------------------------------------------

let changing = null; // the number whose agent is being changed
let removing = null; // the number being removed

/** A term and its description(s) for a `<dl>`. */
const fact = (term, ...descs) => [el('dt', {}, term), ...descs.map((d) => el('dd', {}, d))];

/** The number's detail: its status and health, its agent (changed here), and where Twilio sends its calls. */
function openChangeAgent(n, opener) {
  changing = n;
  const [statusText] = STATUS[n.status] || [n.status];
  $('#change-agent-title').textContent = n.phone_number;
  $('#change-agent-text').textContent = n.health && n.health.ok
    ? `${statusText}: calls to it reach its agent.` : `${statusText}.`;
  const health = $('#number-health');
  health.replaceChildren(...(n.health && !n.health.ok ? [problemList(n)] : []));
  fillSelect($('#change-agent-select'), agentOptions(data.agents), n.agent_id || '');
  const account = n.twilio_account_sid && data.accounts.find((a) => a.account_sid === n.twilio_account_sid);
  const r = n.routing;
  const facts = [];
  if (!n.twilio_number_sid) {
    facts.push(...fact('Twilio', 'Added by hand: vocals does not manage its Twilio setup. Point your trunk’s ' +
      'origination URI at this node (docs/telecom.md).'));
  } else {
    facts.push(...fact('Twilio account', account ? accountLabel(account) : n.twilio_account_sid));
    if (r && r.trunk_domain) facts.push(...fact('Trunk', `vocals trunk, domain ${r.trunk_domain}`));
    const urls = (r && r.origination) || [];
    if (urls.length) {
      facts.push(...fact('Origination URIs', ...urls.map((o) =>
        `${o.sip_url} (priority ${o.priority}, weight ${o.weight}${o.enabled === false ? ', disabled' : ''})`)));
    } else if (r && r.read_at) {
      facts.push(...fact('Origination URIs', 'none: Twilio has nowhere to send calls'));
    }
    if (r && r.read_at) facts.push(...fact('Read from Twilio', timeEl(r.read_at)));
  }
  $('#number-routing-list').replaceChildren(...facts);
  const sids = [];
  if (n.twilio_number_sid) sids.push(...fact('Number SID', n.twilio_number_sid));
  if (r && r.trunk_sid) sids.push(...fact('vocals trunk SID', r.trunk_sid));
  const now = n.twilio_now || {};
  if (now.read_at) {
    sids.push(...fact('Twilio had, when last read', [
      `trunk ${now.trunk_sid || 'none'}`, `voice URL ${now.voice_url || 'none'}`,
      `application ${now.voice_application_sid || 'none'}`].join('; ')));
  }
  $('#number-sids').hidden = sids.length === 0;
  $('#number-sids-list').replaceChildren(...sids);
  const row = `#numbers-table tr[data-number="${CSS.escape(n.phone_number)}"] button.change-agent`;
  openDialog($('#change-agent-dialog'), backTo(opener, row, '#add-number'));
  if (opener && opener.classList.contains('change-agent')) $('#change-agent-select').focus();
}

/** Twilio as it is now for a number, and what Repair and Remove would do (GET /v1/numbers/{n}/twilio). */
const twilioPreview = (n) => api('GET', `/v1/numbers/${enc(n.phone_number)}/twilio`);

let repairing = null; // the number the Repair dialog is about

/** Repair asks first, naming what it replaces: a deliberate change made in Twilio's console would be lost. */
async function openRepair(n, opener) {
  repairing = n;
  const text = $('#repair-text');
  text.textContent = 'Reading the number from Twilio…';
  $('#repair-confirm').disabled = true;
  openDialog($('#repair-dialog'), backTo(opener, null, '#add-number'));
  try {
    const p = await twilioPreview(n);
    if (repairing !== n) return;
    text.textContent = p.repair_replaces
      ? `Twilio now sends ${n.phone_number} to ${p.repair_replaces}. Repair points it back to vocals, and that ` +
        'will be lost (vocals keeps only the settings from before it took the number).'
      : p.on_vocals
        ? `Twilio sends ${n.phone_number} to the vocals trunk. Repair checks the trunk and adds this node’s ` +
          'origination URI where it is missing; nothing else changes.'
        : `Twilio now sends ${n.phone_number} to ${p.now}. Repair points it back to vocals.`;
    $('#repair-confirm').disabled = false;
    $('#repair-confirm').focus();
  } catch (e) {
    if (repairing !== n) return;
    text.textContent = '';
    showApiError($('#repair-form'), e);
    $('#repair-confirm').disabled = false;
  }
}

$('#repair-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearErrors(ev.target);
  await configureTwilio(repairing, 'repair', $('#repair-confirm'));
  $('#repair-dialog').close();
});

/** PATCH /v1/numbers/{n} {agent_id} (null unassigns). */
$('#change-agent-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  clearErrors(form);
  const agentId = $('#change-agent-select').value || null;
  try {
    const n = await withBusy($('#change-agent-save'), async () => {
      const updated = await api('PATCH', `/v1/numbers/${enc(changing.phone_number)}`, { agent_id: agentId });
      await refreshNumbers();
      return updated;
    });
    $('#change-agent-dialog').close();
    notify(agentId ? `${n.phone_number} now goes to ${agentName(agentId)} from the next call.`
      : `${n.phone_number} has no agent: it is inactive.`);
  } catch (e) {
    showApiError(form, e, [[/agent/i, 'change-agent-select']]);
  }
});

/** Remove says what it will restore in Twilio (read now), and offers to leave Twilio as it is instead. */
async function openRemove(n, opener) {
  removing = n;
  const text = $('#remove-text');
  const leave = $('#remove-leave');
  leave.hidden = !n.twilio_number_sid;
  $('#remove-confirm').textContent = n.twilio_number_sid ? 'Remove and restore' : 'Remove';
  const row = `#numbers-table tr[data-number="${CSS.escape(n.phone_number)}"] button.remove`;
  if (!n.twilio_number_sid) {
    text.textContent = `Remove ${n.phone_number} from vocals? vocals stops answering it. Nothing changes in ` +
      'Twilio: the number stays there as it is.';
    openDialog($('#remove-dialog'), backTo(opener, row, '#add-number'));
    return;
  }
  text.textContent = 'Reading the number from Twilio…';
  $('#remove-confirm').disabled = true;
  openDialog($('#remove-dialog'), backTo(opener, row, '#add-number'));
  try {
    const p = await twilioPreview(n);
    if (removing !== n) return;
    text.textContent = `Remove ${n.phone_number} from vocals? It stays in your Twilio account. Twilio now sends ` +
      `it to ${p.now}; removing it restores the settings it had before vocals: ${p.remove_restores}. ` +
      'Or remove it from vocals only and leave Twilio as it is now.';
  } catch (e) {
    if (removing !== n) return;
    text.textContent = `Remove ${n.phone_number} from vocals? It stays in your Twilio account and gets back the ` +
      'voice settings it had before vocals. (Twilio could not be read just now.)';
    if (isAuthError(e)) return;
  } finally {
    if (removing === n) $('#remove-confirm').disabled = false;
  }
}

/**
 * DELETE /v1/numbers/{n} (Twilio put back first; if that fails the number stays, in error), or with
 * ?twilio=leave (Twilio left as it is now).
 */
async function removeNumber(button, leave) {
  const form = $('#remove-form');
  clearErrors(form);
  const num = removing.phone_number;
  try {
    await withBusy(button, () => api('DELETE', `/v1/numbers/${enc(num)}${leave ? '?twilio=leave' : ''}`));
    await refreshNumbers();
    $('#remove-dialog').close();
    notify(leave ? `Removed ${num} from vocals; Twilio is left as it was.` : `Removed ${num}.`);
  } catch (e) {
    showApiError(form, e);
    if (!isAuthError(e)) refreshNumbers(); // a failed restore leaves the number in error: show it
  }
}

$('#remove-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  removeNumber($('#remove-confirm'), false);
});
$('#remove-leave').addEventListener('click', (ev) => removeNumber(ev.currentTarget, true));

// ---------------------------------------------------------------------------------------------------------
// Agents

async function refreshAgents() {
  try {
    const [agents, numbers] = await Promise.all([api('GET', '/v1/agents'), api('GET', '/v1/numbers')]);
    data.agents = agents.agents || [];
    data.numbers = numbers.numbers || [];
    renderAgents();
  } catch (e) {
    noticeError(e);
  }
}

/** Under an agent's URL: whether it answered the last check (made when it was saved). */
function checkNote(a) {
  if (!a.check) return null;
  return a.check.ok
    ? el('span', { className: 'check ok' }, 'Answered the check ', timeEl(a.check.checked_at))
    : el('span', { className: 'check failed' }, `Does not answer: ${a.check.detail}`);
}

const numbersOf = (agentId) => data.numbers.filter((n) => n.agent_id === agentId).map((n) => n.phone_number);

function renderAgents() {
  const rows = data.agents.map((a) => {
    const used = numbersOf(a.id);
    return el('tr', { dataset: { agentId: a.id, key: a.id } },
      el('th', { scope: 'row' }, a.name),
      el('td', {}, a.kind === 'echo' ? 'Echo' : a.kind === 'websocket' ? 'WebSocket' : a.kind),
      el('td', { className: 'url' }, a.stream_url || dash(), checkNote(a)),
      el('td', { className: 'count', title: used.join(', ') }, String(used.length)),
      el('td', {}, a.signed ? 'Yes' : 'No'),
      el('td', { className: 'actions' }, a.builtin
        ? el('span', { className: 'muted', title: 'The built-in agent plays the caller\'s audio back; it cannot be changed' }, 'Built in')
        : el('div', { className: 'row-actions' },
          rowButton('edit', 'Edit', `Edit ${a.name}`, (b) => openAgentDialog(a, b)),
          rowButton('delete', 'Delete', `Delete ${a.name}`, (b) => openDeleteAgent(a, b), 'danger-outline'))));
  });
  replaceRows($('#agents-table tbody'), rows, 'No agents yet. Create one with “New agent”.');
}

let editing = null; // the agent being edited; null: creating one

/** Pretty JSON for a textarea; an empty object shows as nothing. */
const jsonText = (v) => (v && typeof v === 'object' && Object.keys(v).length ? JSON.stringify(v, null, 2) : '');

function openAgentDialog(agent, opener) {
  editing = agent;
  const form = $('#agent-form');
  form.reset();
  $('#agent-dialog-title').textContent = agent ? `Edit ${agent.name}` : 'New agent';
  $('#agent-name').value = agent ? agent.name : '';
  $('#agent-kind').value = agent ? agent.kind : 'websocket';
  $('#agent-stream-url').value = (agent && agent.stream_url) || '';
  $('#agent-system-prompt').value = agent ? agent.system_prompt : '';
  $('#agent-providers').value = agent ? jsonText(agent.providers) : '';
  $('#agent-settings').value = agent ? jsonText(agent.settings) : '';
  showKindFields();
  $('#agent-signing-secret-hint').textContent = agent && agent.signed
    ? 'A secret is set. Leave this empty to keep it; type a new one to replace it. It is never shown.'
    : 'Signs the handshake (X-Twilio-Signature). Write-only: it is never shown.';
  const row = agent && `#agents-table tr[data-agent-id="${CSS.escape(agent.id)}"] button.edit`;
  openDialog($('#agent-dialog'), backTo(opener, row, '#new-agent'));
}

$('#new-agent').addEventListener('click', (ev) => openAgentDialog(null, ev.currentTarget));

/** The echo kind has no stream, prompt, providers or secret: those fields are hidden for it. */
function showKindFields() {
  const echo = $('#agent-kind').value === 'echo';
  for (const f of $$('#agent-form .websocket-only')) f.hidden = echo;
}
$('#agent-kind').addEventListener('change', showKindFields);

/** A textarea's JSON object: {value} (null when empty) or {error}. */
function parseObject(id) {
  const text = $(`#${id}`).value.trim();
  if (!text) return { value: null };
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { error: `This is not valid JSON: ${e.message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { error: 'This must be a JSON object, e.g. {"voice": "alloy"}.' };
  }
  return { value };
}

/** POST /v1/agents (create) or PATCH /v1/agents/{id} (edit), with the fields those take. */
$('#agent-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  clearErrors(form);
  const providers = parseObject('agent-providers');
  const settings = parseObject('agent-settings');
  if (providers.error) setFieldError('agent-providers', providers.error);
  if (settings.error) setFieldError('agent-settings', settings.error);
  if (providers.error || settings.error) {
    $(providers.error ? '#agent-providers' : '#agent-settings').focus();
    return;
  }
  const echo = $('#agent-kind').value === 'echo';
  const body = {
    name: $('#agent-name').value.trim(),
    kind: $('#agent-kind').value,
    stream_url: echo ? null : $('#agent-stream-url').value.trim() || null,
    system_prompt: $('#agent-system-prompt').value,
    // Creating: absent means {}. Editing: empty means clear it ({}).
    providers: providers.value || (editing ? {} : undefined),
    settings: settings.value || (editing ? {} : undefined),
  };
  const secret = $('#agent-signing-secret').value;
  if (secret) body.signing_secret = secret;
  try {
    const saved = await withBusy($('#agent-save'), async () => {
      const a = editing
        ? await api('PATCH', `/v1/agents/${enc(editing.id)}`, body)
        : await api('POST', '/v1/agents', body);
      await refreshAgents();
      return a;
    });
    const dialog = $('#agent-dialog');
    if (!editing) {
      const row = `#agents-table tr[data-agent-id="${CSS.escape(saved.id)}"] button.edit`;
      dialog.returnFocus = backTo(null, row, '#new-agent');
    }
    dialog.close();
    const check = saved.check && !saved.check.ok
      ? ` But its stream URL does not answer (${saved.check.detail}): calls to it will be refused until it does.` : '';
    notify((editing ? `Saved ${saved.name}; calls in progress keep the agent as it was.` : `Created ${saved.name}.`) +
      check, check ? 'error' : 'ok');
  } catch (e) {
    showApiError(form, e, [
      [/stream_url/i, 'agent-stream-url'],
      [/\bkind\b/i, 'agent-kind'],
      [/providers/i, 'agent-providers'],
      [/settings/i, 'agent-settings'],
      [/system_prompt/i, 'agent-system-prompt'],
      [/signing_secret/i, 'agent-signing-secret'],
      [/\bname\b|agent named/i, 'agent-name'],
    ]);
  }
});

let deleting = null;

function openDeleteAgent(agent, opener) {
  deleting = agent;
  const used = numbersOf(agent.id);
  $('#delete-agent-text').textContent = `Delete the agent “${agent.name}”? This cannot be undone.` +
    (used.length ? ` It still serves ${used.join(', ')}: move or remove those numbers first.` : '');
  const row = `#agents-table tr[data-agent-id="${CSS.escape(agent.id)}"] button.delete`;
  openDialog($('#delete-agent-dialog'), backTo(opener, row, '#new-agent'));
}

/** DELETE /v1/agents/{id}; a 409 (agent_in_use) names the numbers, shown in the dialog. */
$('#delete-agent-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  clearErrors(form);
  const agent = deleting;
  try {
    await withBusy($('#delete-agent-confirm'), () => api('DELETE', `/v1/agents/${enc(agent.id)}`));
    await refreshAgents();
    $('#delete-agent-dialog').close();
    notify(`Deleted ${agent.name}.`);
  } catch (e) {
    showApiError(form, e);
  }
});

// ---------------------------------------------------------------------------------------------------------
// Calls: GET /v1/calls?active=true (not ended) and ?active=false (ended), every 2 s while the page is shown

const calls = { poll: null, tick: null, busy: false, last: '' };

function startCalls() {
  calls.last = '';
  calls.poll = setInterval(refreshCalls, 2000);
  calls.tick = setInterval(tickDurations, 1000);
  refreshCalls();
}

function stopCallsTimers() {
  clearInterval(calls.poll);
  clearInterval(calls.tick);
  calls.poll = calls.tick = null;
}

async function refreshCalls() {
  if (calls.busy || document.hidden) return;
  calls.busy = true;
  try {
    const [active, recent] = await Promise.all([
      api('GET', '/v1/calls?active=true&limit=100'),
      api('GET', '/v1/calls?active=false&limit=25'),
    ]);
    if (!calls.poll) return; // left the page meanwhile
    // Re-render only what changed, so the rows (and the focus in them) stay put between polls.
    const snapshot = JSON.stringify([active.calls, recent.calls]);
    if (snapshot !== calls.last) {
      calls.last = snapshot;
      renderActiveCalls(active.calls || []);
      renderRecentCalls(recent.calls || []);
    }
    if ($('#notice').dataset.source === 'calls') notify(''); // the poll works again
  } catch (e) {
    if (!isAuthError(e) && calls.poll) notify(`Could not refresh the calls: ${e.message}`, 'error', 'calls');
  } finally {
    calls.busy = false;
  }
}

/** When the live duration counts from: the answer, or the INVITE while it rings. */
const callStart = (c) => Date.parse(c.answer_at || c.invite_at);

function tickDurations() {
  const now = Date.now() + clockSkew;
  for (const td of $$('#active-calls td.duration')) td.textContent = formatDuration(now - Number(td.dataset.since));
}

function renderActiveCalls(list) {
  const now = Date.now() + clockSkew;
  const rows = list.map((c) => el('tr', { dataset: { callId: c.id, key: c.id } },
    el('td', { className: 'number' }, c.from),
    el('td', { className: 'number' }, c.to),
    el('td', {}, c.agent || dash()),
    el('td', {}, c.answer_at ? 'Answered' : 'Ringing'),
    el('td', { className: 'duration', dataset: { since: String(callStart(c)) } }, formatDuration(now - callStart(c))),
    el('td', { className: 'actions' },
      rowButton('hangup', 'Hang up', `Hang up the call from ${c.from} to ${c.to}`, (b) => openHangUp(c, b),
        'danger-outline'))));
  replaceRows($('#active-calls tbody'), rows, 'No calls in progress.');
}

let hangingUp = null; // the call the hang-up dialog is about

/** Hanging up ends a live call for its caller: the dialog asks first, naming the call. */
function openHangUp(c, opener) {
  hangingUp = c;
  $('#hangup-text').textContent = `End the call from ${c.from} to ${c.to}${c.agent ? ` (agent ${c.agent})` : ''} ` +
    'now? The caller is hung up on; this cannot be undone.';
  openDialog($('#hangup-dialog'), backTo(opener, null, '#active-title'));
}

/** POST /v1/calls/{id}/hangup: 202 {id, status: "ending"}; 404 when the call is not in progress on this node. */
$('#hangup-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  clearErrors(form);
  const c = hangingUp;
  try {
    await withBusy($('#hangup-confirm'), () => api('POST', `/v1/calls/${enc(c.id)}/hangup`));
    $('#hangup-dialog').close();
    notify(`Hanging up the call from ${c.from} to ${c.to}.`);
    calls.last = '';
    await refreshCalls();
  } catch (e) {
    showApiError(form, e);
  }
});

// --- Dial: place a call --------------------------------------------------------------------------------

const dialForm = $('#dial-form');

/** The dial dialog's fields by the API's field names (its errors' `field`). */
const DIAL_FIELDS = { agent_id: 'dial-agent', to: 'dial-to', from: 'dial-from' };

/** The number's status, said after it in the caller ID select when it is not plain Active. */
const fromLabel = (n) => (n.status === 'active' ? n.phone_number
  : `${n.phone_number} (${STATUS[n.status] ? STATUS[n.status][0].toLowerCase() : n.status})`);

/** Opens the dial dialog with the agents and the server's numbers (active or not); nothing chosen for the user. */
$('#dial').addEventListener('click', async (ev) => {
  const opener = ev.currentTarget;
  let numbers;
  try {
    numbers = await withBusy(opener, async () => {
      const [agents, nums] = await Promise.all([api('GET', '/v1/agents'), api('GET', '/v1/numbers')]);
      data.agents = agents.agents || [];
      return nums.numbers || [];
    });
  } catch (e) {
    noticeError(e);
    return;
  }
  dialForm.reset();
  $('#dial-setup').hidden = true;
  fillSelect($('#dial-agent'), [['', 'Choose an agent…'], ...data.agents.map((a) => [a.id, agentLabel(a)])], '');
  fillSelect($('#dial-from'), [['', 'Choose a caller ID…'],
    ...numbers.map((n) => [n.phone_number, fromLabel(n)])], '');
  $('#dial-from-hint').textContent = numbers.length
    ? 'One of this server’s numbers; its Twilio account needs a trunk for outbound calls.'
    : 'This server has no numbers yet: add one on Phone Numbers first (the caller ID must be one of them).';
  openDialog($('#dial-dialog'), backTo(opener, null, '#dial'));
});

/**
 * The number to call as the API takes it (E.164): separators dropped, 00 read as +, and with a North American
 * caller ID a national number (10 digits, 11 with the leading 1, 011 for international) read as Add number reads
 * national forms. Anything else goes as typed, and the API says what is wrong with it.
 */
function dialNumber(typed, from) {
  const t = typed.trim();
  const compact = t.replace(/[\s\-.()\/]/g, '');
  if (/^\+\d+$/.test(compact)) return compact;
  if (/^00\d+$/.test(compact)) return `+${compact.slice(2)}`;
  if (/^\d+$/.test(compact) && from.startsWith('+1')) {
    if (compact.startsWith('011')) return `+${compact.slice(3)}`;
    if (compact.length === 10) return `+1${compact}`;
    if (compact.length === 11 && compact.startsWith('1')) return `+${compact}`;
  }
  return t;
}

/** An API message about a dial field, named as labelled: "to: phone number must…" reads "Number to call: …". */
function dialMessage(field, message) {
  const label = labelOf(DIAL_FIELDS[field]);
  const rest = message.replace(new RegExp(`^${field}\\s*:\\s*`), '');
  return label ? `${label}: ${rest}` : message;
}

/** Outbound calls are not configured: no trunk at all (503), or none for the caller ID's account (422 on from). */
const notConfigured = (e) => (e.code === 'unavailable' && /outbound/i.test(e.message)) ||
  (e.field === 'from' && /trunk/i.test(e.message));

/** POST /v1/calls {agent_id, to, from}: 201 {sid, to, from, status, direction}, queued behind the trunk's pace. */
dialForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearErrors(dialForm);
  $('#dial-setup').hidden = true;
  const agent = $('#dial-agent').value;
  const from = $('#dial-from').value;
  const typed = $('#dial-to').value;
  if (!agent) setFieldError('dial-agent', 'Choose the agent that takes the call.');
  if (!typed.trim()) setFieldError('dial-to', 'Enter the number to call, e.g. +1 415 555 0100.');
  if (!from) setFieldError('dial-from', 'Choose the caller ID: one of this server’s numbers.');
  if (!agent || !typed.trim() || !from) {
    $(`#${!agent ? 'dial-agent' : !typed.trim() ? 'dial-to' : 'dial-from'}`).focus();
    return;
  }
  const body = { agent_id: agent, to: dialNumber(typed, from), from };
  try {
    const call = await withBusy($('#dial-call'), () => api('POST', '/v1/calls', body));
    $('#dial-dialog').close();
    notify(`Calling ${call.to} from ${call.from} (${call.status}).`);
    calls.last = '';
    refreshCalls();
  } catch (e) {
    if (isAuthError(e)) return;
    if (notConfigured(e)) {
      // Said plainly, with what sets it up; the API's own words stay under the caller ID.
      $('#dial-setup').hidden = false;
      formError(dialForm, e.field === 'from'
        ? `Outbound calls are not set up for ${from}: vocals has no trunk for its Twilio account.`
        : 'Outbound calls are not set up on this server: vocals has no trunk to place them through.');
      if (e.field === 'from') setFieldError('dial-from', dialMessage('from', e.message));
      $('#dial-from').focus();
      return;
    }
    const id = e.field && DIAL_FIELDS[e.field];
    if (id) {
      setFieldError(id, dialMessage(e.field, e.message));
      $(`#${id}`).focus();
      return;
    }
    formError(dialForm, e.message);
  }
});

/** The quality figures of a finished call's `stats.rtp` (and the agent's downlink latency), as a short list. */
function qualityCell(c) {
  const rtp = (c.stats && c.stats.rtp) || null;
  const agent = (c.stats && c.stats.agent) || null;
  const items = [];
  if (c.codec) items.push(rtp && rtp.srtp ? `${c.codec}, SRTP` : c.codec);
  if (rtp) {
    items.push(`packets in ${rtp.received ?? '?'} / out ${rtp.sent ?? '?'}`);
    items.push(`lost ${rtp.lost_concealed ?? 0}${rtp.late ? `, late ${rtp.late}` : ''}`);
    if (typeof rtp.jitter_ms === 'number') items.push(`jitter ${rtp.jitter_ms.toFixed(1)} ms`);
    if (typeof rtp.rtt_ms === 'number') items.push(`RTT ${rtp.rtt_ms.toFixed(0)} ms`);
    // The peer's RTCP "fraction lost" is in 1/256ths: shown as a percentage.
    if (typeof rtp.peer_fraction_lost === 'number') {
      items.push(`peer loss ${((rtp.peer_fraction_lost / 256) * 100).toFixed(1)}%`);
    }
  }
  if (agent && typeof agent.downlink_p50_us === 'number') {
    items.push(`agent reply p50 ${(agent.downlink_p50_us / 1000).toFixed(0)} ms`);
  }
  // The session timer (RFC 4028), when the carrier asked for one, and any glare (offers that crossed).
  const session = c.session || null;
  if (session && typeof session.interval === 'number') {
    const who = session.refresher === 'vocals' ? 'vocals refreshes' : 'carrier refreshes';
    items.push(`session timer ${session.interval} s, ${who}, ${session.refreshes} refreshes`);
  }
  if (session && session.glare) items.push(`glare ${session.glare}`);
  if (items.length === 0) return el('td', { className: 'quality' }, dash());
  const list = el('ul', { className: 'stats' }, items.map((t) => el('li', {}, t)));
  // One-way or no audio (the NAT, firewall or media.public_ip mistake): said first, with its usual fix.
  const audio = (c.stats && c.stats.audio) || null;
  const problems = {
    no_audio_from_caller: 'One-way audio: nothing came from the caller',
    no_audio_to_caller: 'One-way audio: nothing was sent to the caller',
    no_audio: 'No audio either way',
  };
  if (audio && problems[audio.path]) {
    const flag = el('p', { className: 'audio-problem', title: audio.fix || '' }, problems[audio.path]);
    return el('td', { className: 'quality' }, flag, audio.fix ? el('p', { className: 'muted' }, audio.fix) : null, list);
  }
  return el('td', { className: 'quality' }, list);
}

/** Players made for recordings, by call id: a refresh of the table moves them into the new row, playing on. */
const players = new Map();

/**
 * A call's recording, fetched through the API with the token in a header (never in a URL), as a blob URL the
 * page's `<audio>` element or a download link can use.
 */
async function recordingBlob(c) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(c.recording.url, { headers, cache: 'no-store' });
  if (!res.ok) {
    let message = `HTTP ${res.status}`;
    try {
      message = (await res.json()).error.message || message;
    } catch {
      // not JSON: the status says it
    }
    if (res.status === 401) signOut(`Sign in again: ${message}.`);
    throw new ApiError(res.status, 'recording', message);
  }
  return URL.createObjectURL(await res.blob());
}

/** The Recording cell: Play (an `<audio>` player in place) and Download, or what became of the recording. */
function recordingCell(c) {
  const r = c.recording;
  if (!r || !r.status) return el('td', { className: 'recording' }, dash());
  const said = { recording: 'Recording…', deleted: 'Deleted', expired: 'Expired (retention)' };
  if (said[r.status]) return el('td', { className: 'recording muted' }, said[r.status]);
  const cell = el('td', { className: 'recording' });
  const error = el('p', { className: 'error', attrs: { role: 'alert' } });
  const play = el('button', {
    type: 'button',
    className: 'play-recording button secondary small',
    attrs: { 'aria-label': `Play the recording of the call from ${c.from}` },
  }, 'Play');
  const save = el('button', {
    type: 'button',
    className: 'download-recording button secondary small',
    attrs: { 'aria-label': `Download the recording of the call from ${c.from}` },
  }, 'Download');
  play.addEventListener('click', async () => {
    play.disabled = true;
    try {
      const audio = el('audio', { controls: true, src: await recordingBlob(c), className: 'recording-player' });
      players.set(c.id, audio);
      play.replaceWith(audio);
      audio.play().catch(() => {}); // autoplay may be refused: the controls are there
    } catch (e) {
      error.textContent = e.message;
      play.disabled = false;
    }
  });
  save.addEventListener('click', async () => {
    try {
      const a = el('a', { href: await recordingBlob(c), download: `${c.id}.wav` });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  const seconds = typeof r.duration === 'number' ? ` ${formatDuration(r.duration * 1000)}` : '';
  const incomplete = r.status === 'incomplete'
    ? el('span', { className: 'muted', title: r.error || `${r.dropped_frames || 0} frames were lost` }, ' (incomplete)')
    : null;
  const parts = [players.get(c.id) || play, ' ', save, el('span', { className: 'muted' }, seconds), incomplete, error];
  cell.append(...parts.filter((p) => p != null));
  return cell;
}

function renderRecentCalls(list) {
  const rows = list.map((c) => {
    const answered = c.answer_at && c.end_at;
    const reason = [c.end_reason || '—'];
    if (c.sip_status && c.sip_status !== 200) reason.push(` (SIP ${c.sip_status})`);
    return el('tr', { dataset: { callId: c.id, key: c.id } },
      el('td', {}, el('a', { href: `#/calls/${enc(c.id)}`, className: 'call-link',
        attrs: { 'aria-label': `Details of the call from ${c.from} to ${c.to}` } },
      c.end_at ? timeEl(c.end_at) : 'Details')),
      el('td', { className: 'number' }, c.from),
      el('td', { className: 'number' }, c.to),
      el('td', {}, c.agent || dash()),
      el('td', { className: 'duration-done' },
        answered ? formatDuration(Date.parse(c.end_at) - Date.parse(c.answer_at)) : 'Not answered'),
      el('td', { className: 'reason' }, reason.join('')),
      qualityCell(c),
      recordingCell(c));
  });
  replaceRows($('#recent-calls tbody'), rows, 'No finished calls yet.');
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && calls.poll) refreshCalls();
});

// ---------------------------------------------------------------------------------------------------------
// One call: GET /v1/calls/{id}, /sip (its messages) and /timeline (a sample a second, the agent's events).
// The ladder and the charts are inline SVG drawn here: no chart library, nothing from elsewhere (the CSP).

const SVG = 'http://www.w3.org/2000/svg';

/** Builds an SVG element: `svg('line', {x1: 0, class: 'x'}, child)`. */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) node.append(c instanceof Node ? c : String(c));
  return node;
}

/** What an API call gave, or the error's message when it failed for another reason than the token. */
async function settle(path) {
  try {
    return { value: await api('GET', path) };
  } catch (e) {
    if (isAuthError(e)) throw e;
    return { error: e.message };
  }
}

async function loadCall(id) {
  $('#call-title').textContent = 'Call';
  for (const n of ['#call-facts', '#call-ladder', '#call-charts', '#call-events']) $(n).replaceChildren();
  $('#call-message').hidden = true;
  try {
    const [call, sip, timeline] = await Promise.all([
      settle(`/v1/calls/${enc(id)}`), settle(`/v1/calls/${enc(id)}/sip`), settle(`/v1/calls/${enc(id)}/timeline`),
    ]);
    if (call.error) {
      notify(`Could not load the call: ${call.error}`, 'error');
      return;
    }
    renderCallFacts(call.value);
    renderLadder(sip);
    renderCharts(timeline);
    renderEvents(timeline, call.value);
  } catch (e) {
    noticeError(e);
  }
}

function renderCallFacts(c) {
  $('#call-title').textContent = `Call from ${c.from || 'unknown'} to ${c.to || 'unknown'}`;
  document.title = `Call ${c.id} — vocals`;
  const answered = c.answer_at && c.end_at;
  const status = c.sip_status ? `SIP ${c.sip_status}` : '—';
  $('#call-facts').replaceChildren(
    ...fact('Agent', c.agent || 'none'),
    ...fact('Routed by', !c.route ? '—' : c.route === 'default'
      ? 'the number’s own agent (no routing rule matched)' : `${ruleWord(c.route)} of the number (${c.route})`),
    ...fact('Arrived', timeEl(c.invite_at)),
    ...fact('Answered', c.answer_at ? timeEl(c.answer_at) : 'no'),
    ...fact('Ended', c.end_at ? timeEl(c.end_at) : 'in progress'),
    ...fact('Duration', answered ? formatDuration(Date.parse(c.end_at) - Date.parse(c.answer_at)) : '—'),
    ...fact('End reason', c.end_reason ? `${c.end_reason} (${status})` : status),
    ...fact('Codec', c.codec || '—'),
    ...fact('SIP Call-ID', el('code', {}, c.sip_call_id)),
    ...fact('vocals id', el('code', {}, c.id)));
}

/** A message's ladder label: the method, or the status and the CSeq method (`200 OK (INVITE)`). */
function ladderLabel(text) {
  const first = (text.split(/\r?\n/, 1)[0] || '').trim();
  const cseq = /^(?:CSeq|cseq|CSEQ)\s*:\s*\d+\s+(\S+)/m.exec(text);
  if (first.startsWith('SIP/2.0 ')) {
    const status = first.slice(8, 60);
    return cseq ? `${status} (${cseq[1]})` : status;
  }
  return first.split(' ', 1)[0];
}

/** The ladder: the peer left, vocals right, an arrow a message (the time since the first beside it). */
function renderLadder(sip) {
  const box = $('#call-ladder');
  const empty = $('#ladder-empty');
  const messages = (sip.value && sip.value.messages) || [];
  empty.hidden = messages.length > 0;
  if (!messages.length) {
    empty.textContent = sip.error || 'No SIP messages were kept for this call.';
    return;
  }
  const elided = sip.value.elided || 0;
  const width = 720;
  const row = 34;
  const top = 54;
  const [left, right] = [150, 650];
  const height = top + messages.length * row + (elided ? row : 0) + 10;
  const t0 = Date.parse(messages[0].at);
  const peer = messages[0].peer;
  const local = messages[0].local;
  const picture = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'ladder-svg', role: 'presentation' },
    svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8,
      markerHeight: 8, orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' }))),
    svg('text', { x: left, y: 18, class: 'lane-title', 'text-anchor': 'middle' }, `Peer ${peer}`),
    svg('text', { x: width - 6, y: 18, class: 'lane-title', 'text-anchor': 'end' }, `vocals ${local}`),
    svg('line', { x1: left, y1: 28, x2: left, y2: height - 6, class: 'lane' }),
    svg('line', { x1: right, y1: 28, x2: right, y2: height - 6, class: 'lane' }));
  messages.forEach((m, i) => {
    const y = top + i * row;
    const inbound = m.dir === 'in';
    const label = ladderLabel(m.text);
    const secs = ((Date.parse(m.at) - t0) / 1000).toFixed(3);
    const group = svg('g', { class: `msg ${inbound ? 'msg-in' : 'msg-out'}`, tabindex: 0, role: 'button',
      'aria-label': `${label}, ${inbound ? 'in from the peer' : 'out from vocals'}, at +${secs} s (${m.transport})` },
    svg('rect', { x: 0, y: y - 22, width, height: row, class: 'msg-hit' }),
    svg('text', { x: 8, y: y + 4, class: 'msg-time' }, `+${secs} s`),
    svg('line', { x1: inbound ? left : right, y1: y, x2: inbound ? right : left, y2: y, class: 'msg-line',
      'marker-end': 'url(#arrow)' }),
    svg('text', { x: (left + right) / 2, y: y - 6, class: 'msg-label', 'text-anchor': 'middle' }, label));
    const show = () => showMessage(m, label, secs, group);
    group.addEventListener('click', show);
    group.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        show();
      }
    });
    picture.append(group);
  });
  if (elided) {
    const y = top + messages.length * row;
    picture.append(svg('text', { x: (left + right) / 2, y, class: 'msg-time', 'text-anchor': 'middle' },
      `${elided} of ${sip.value.total} messages not kept (the first and the latest are)`));
  }
  box.replaceChildren(picture);
}

function showMessage(m, label, secs, group) {
  for (const g of $$('#call-ladder g.msg')) g.classList.toggle('selected', g === group);
  const pre = $('#call-message');
  pre.textContent = `${label} — ${m.dir === 'in' ? `from ${m.peer}` : `to ${m.peer}`} over ${m.transport}, ` +
    `${m.at} (+${secs} s), ${m.bytes} bytes\n\n${m.text}`;
  pre.hidden = false;
}

/** The charts: a series is a timeline field drawn as a line; seconds without a value leave a gap. */
const CHARTS = [
  ['RTP packets a second', [['rtp_in', 'in'], ['rtp_out', 'out']], ''],
  ['Loss a second', [['lost', 'lost'], ['late', 'late'], ['concealed', 'concealed']], ''],
  ['Jitter', [['jitter_ms', 'jitter']], 'ms'],
  ['Agent audio queued', [['queue_ms', 'queued']], 'ms'],
  ['Agent latency', [['uplink_p50_ms', 'up median'], ['uplink_max_ms', 'up max'],
    ['downlink_p50_ms', 'down median'], ['downlink_max_ms', 'down max']], 'ms'],
  ['Round trip (RTCP)', [['rtt_ms', 'RTT']], 'ms'],
];

function renderCharts(timeline) {
  const t = timeline.value;
  const samples = (t && t.samples) || [];
  const empty = $('#quality-empty');
  empty.hidden = samples.length > 0;
  if (!samples.length) {
    empty.textContent = timeline.error || 'No quality samples: the call was not answered.';
    return;
  }
  const col = Object.fromEntries(t.fields.map((f, i) => [f, i]));
  $('#call-charts').replaceChildren(...CHARTS.map(([title, series, unit]) =>
    chart(title, series.map(([field, name]) => [name, samples.map((s) => s[col[field]])]), unit)));
}

function chart(title, series, unit) {
  const [w, h, pad] = [320, 110, 28];
  const values = series.flatMap(([, v]) => v).filter((v) => typeof v === 'number');
  const max = Math.max(1, ...values);
  const n = Math.max(2, series[0][1].length);
  const x = (i) => pad + ((w - pad - 6) * i) / (n - 1);
  const y = (v) => h - 18 - ((h - 30) * v) / max;
  const lines = series.map(([name, v], k) => {
    let d = '';
    v.forEach((value, i) => {
      if (typeof value !== 'number') return;
      d += `${d && typeof v[i - 1] === 'number' ? 'L' : 'M'}${x(i).toFixed(1)},${y(value).toFixed(1)} `;
    });
    return svg('path', { d: d || 'M0,0', class: `series series-${k}` });
  });
  const peak = values.length ? `${+max.toFixed(2)}${unit ? ` ${unit}` : ''}` : 'none';
  const summary = series.map(([name, v]) => {
    const nums = v.filter((z) => typeof z === 'number');
    return nums.length ? `${name} max ${+Math.max(...nums).toFixed(2)}` : `${name} none`;
  }).join(', ');
  return el('figure', { className: 'chart' },
    el('figcaption', {}, el('span', { className: 'chart-title' }, unit ? `${title} (${unit})` : title), ' ',
      ...series.map(([name], k) => el('span', { className: `legend legend-${k}` }, name))),
    svg('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': `${title}: ${summary}` },
      svg('line', { x1: pad, y1: h - 18, x2: w - 6, y2: h - 18, class: 'axis' }),
      svg('line', { x1: pad, y1: 8, x2: pad, y2: h - 18, class: 'axis' }),
      svg('text', { x: pad - 4, y: 14, class: 'tick', 'text-anchor': 'end' }, values.length ? `${+max.toFixed(1)}` : '–'),
      svg('text', { x: pad - 4, y: h - 18, class: 'tick', 'text-anchor': 'end' }, '0'),
      svg('text', { x: pad, y: h - 4, class: 'tick' }, '0 s'),
      svg('text', { x: w - 6, y: h - 4, class: 'tick', 'text-anchor': 'end' }, `${n - 1} s`),
      ...lines),
    el('p', { className: 'visually-hidden' }, `Peak ${peak}.`));
}

const EVENT_TEXT = {
  connected: 'Agent reached', start: 'start sent', mark: 'Mark received', 'mark played': 'Mark played',
  clear: 'Clear', dtmf: 'DTMF', transfer: 'Transfer asked', 'transfer status': 'Transfer progress',
  'transfer refused': 'Transfer refused', hangup: 'Hang-up', failed: 'Agent stream failed',
  violation: 'Agent broke a limit', end: 'Call ended',
};

function renderEvents(timeline, call) {
  const t = timeline.value;
  const events = (t && t.events) || [];
  const list = $('#call-events');
  const empty = $('#events-empty');
  empty.hidden = events.length > 0;
  if (!events.length) empty.textContent = timeline.error || 'No agent events (the built-in echo agent has none).';
  list.replaceChildren(...events.map((e) => el('li', {},
    el('span', { className: 'event-time' }, `${e.at_ms >= 0 ? '+' : '−'}${(Math.abs(e.at_ms) / 1000).toFixed(3)} s`),
    ' ', el('strong', {}, EVENT_TEXT[e.kind] || e.kind), e.detail ? `: ${e.detail}` : '')));
  if (t && t.events_elided) list.append(el('li', {}, `${t.events_elided} more not kept.`));
  if (call.end_reason) list.append(el('li', {}, el('strong', {}, 'End reason'), `: ${call.end_reason}`));
}

// ---------------------------------------------------------------------------------------------------------

route(false);

// ---------------------------------------------------------------------------------------------------------
// Routing rules (issue 26): the week ahead as a strip, and an editor of the number's rules

const DAYS = [['mon', 'Mon'], ['tue', 'Tue'], ['wed', 'Wed'], ['thu', 'Thu'], ['fri', 'Fri'], ['sat', 'Sat'],
  ['sun', 'Sun']];
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'];
let ruling = null; // the number the rules dialog is about

/** The browser's IANA time zone: a new rule's default. */
function localZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** `rules[1]` as people say it: "rule 2". */
const ruleWord = (route) => {
  const m = /^rules\[(\d+)\]$/.exec(route || '');
  return m ? `rule ${Number(m[1]) + 1}` : 'its own agent';
};

const whenShort = (ms) => new Date(ms).toLocaleString(undefined,
  { weekday: 'short', hour: '2-digit', minute: '2-digit' });

/** Who answers a number with rules now, and the next change: "after-hours agent now (rule 2); support from Mon 08:00". */
function scheduleNow(n) {
  const s = n.schedule;
  if (!s || !s.segments || !s.segments.length) return null;
  const [now, next] = s.segments;
  const who = now.agent ? `${now.agent} agent now` : 'not answered now';
  const why = now.route === 'default' ? '' : ` (${ruleWord(now.route)})`;
  const then = next ? `; ${next.agent ? `${next.agent} agent` : 'not answered'} from ${whenShort(Date.parse(next.from))}` : '';
  return `${who}${why}${then}`;
}

/** The colour class of an agent in the strip and its legend (the agents in order of appearance). */
function agentClass(agents, id) {
  return id ? `agent-${agents.indexOf(id) % 6}` : 'agent-none';
}

/** The week ahead: a strip of who answers when (SVG, one band a stretch), a legend, and now in words. */
function renderWeek(n) {
  const box = $('#rules-week');
  const legend = $('#rules-week-legend');
  const s = n.schedule;
  $('#rules-now').textContent = scheduleNow(n) ? `${n.phone_number}: ${scheduleNow(n)}.` : '';
  if (!s || !s.segments || !s.segments.length) {
    box.replaceChildren(el('p', { className: 'muted' }, 'No rules: its own agent answers every call.'));
    legend.replaceChildren();
    return;
  }
  const from = Date.parse(s.from);
  const until = Date.parse(s.until);
  const span = until - from;
  const W = 700;
  const agents = [...new Set(s.segments.map((x) => x.agent_id).filter(Boolean))];
  const said = [];
  const bands = s.segments.map((seg, i) => {
    const a = Date.parse(seg.from);
    const b = i + 1 < s.segments.length ? Date.parse(s.segments[i + 1].from) : until;
    const who = seg.agent || 'not answered (480)';
    const text = `${whenShort(a)} to ${whenShort(b)}: ${who}, ${ruleWord(seg.route)}`;
    said.push(text);
    return svg('rect', {
      x: ((a - from) / span) * W, y: 2, width: Math.max(1, ((b - a) / span) * W), height: 26,
      class: `band ${agentClass(agents, seg.agent_id)}`, 'data-route': seg.route, 'data-agent': seg.agent || '',
    }, svg('title', {}, text));
  });
  // Local midnights, each labelled with its day.
  const ticks = [];
  const day = new Date(from);
  day.setHours(24, 0, 0, 0);
  while (day.getTime() < until) {
    const x = ((day.getTime() - from) / span) * W;
    ticks.push(svg('line', { x1: x, x2: x, y1: 0, y2: 32, class: 'day-tick' }),
      svg('text', { x: x + 3, y: 44, class: 'day-label' },
        day.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' })));
    day.setDate(day.getDate() + 1);
  }
  box.replaceChildren(svg('svg', {
    viewBox: `0 0 ${W} 48`, class: 'week-strip', role: 'img',
    'aria-label': `Who answers over the next 7 days: ${said.slice(0, 8).join('; ')}${said.length > 8 ? '; …' : ''}`,
  }, bands, ticks));
  const keys = [...agents.map((id) => [id, agentName(id)]),
    ...(s.segments.some((x) => !x.agent_id) ? [[null, 'Not answered (480)']] : [])];
  legend.replaceChildren(...keys.map(([id, name]) => el('li', {},
    el('span', { className: `swatch ${agentClass(agents, id)}`, attrs: { 'aria-hidden': 'true' } }), name)));
}

/** One rule's fields, ids `rule-I-KEY` so the API's `rules[I].when.zone` lands next to its field. */
function ruleEditor(rule, i, count) {
  const id = (k) => `rule-${i}-${k}`;
  const when = rule.when || null;
  const field = (key, label, input, hint) => el('div', { className: 'field' },
    el('label', { htmlFor: id(key) }, label), input,
    hint ? el('p', { className: 'hint', id: `${id(key)}-hint` }, hint) : null,
    el('p', { className: 'field-error', id: `${id(key)}-error`, attrs: { 'aria-live': 'polite' } }));
  const input = (key, value, props = {}) => el('input', { id: id(key), value: value || '', ...props });
  const timed = el('input', { type: 'checkbox', id: id('timed'), checked: Boolean(when) });
  const callers = el('input', { type: 'checkbox', id: id('callers'), checked: Boolean(rule.caller) });
  const days = when && when.days ? when.days : DAYS.map(([d]) => d);
  const whenBox = el('div', { className: 'rule-when', hidden: !when },
    field('zone', 'Time zone', input('zone', when ? when.zone : localZone(), { autocomplete: 'off', attrs: { list: 'zones' } }),
      'IANA, e.g. America/New_York: daylight saving follows it.'),
    el('fieldset', { className: 'days', id: id('days') }, el('legend', {}, 'Days'),
      ...DAYS.map(([d, label]) => el('label', { className: 'day' },
        el('input', { type: 'checkbox', value: d, checked: days.includes(d), className: 'day-box' }), label)),
      el('p', { className: 'field-error', id: `${id('days')}-error`, attrs: { 'aria-live': 'polite' } })),
    el('div', { className: 'rule-times' },
      field('from', 'From', input('from', when && when.from, { type: 'time' })),
      field('to', 'To', input('to', when && when.to, { type: 'time' }), 'Empty: all day. 18:00 to 08:00 runs overnight.')),
    field('dates', 'Only on dates', input('dates', when && when.dates ? when.dates.join(', ') : ''),
      'Optional: 2026-12-25, or a range 2026-12-24/2026-12-26.'));
  const callerText = Array.isArray(rule.caller) ? rule.caller.join(', ') : (rule.caller || '');
  const callerBox = el('div', { className: 'rule-caller', hidden: !rule.caller },
    field('caller', 'Callers', input('caller', callerText), 'Prefixes such as +44, +353; or anonymous (withheld caller ID).'));
  timed.addEventListener('change', () => { whenBox.hidden = !timed.checked; });
  callers.addEventListener('change', () => { callerBox.hidden = !callers.checked; });
  const agent = el('select', { id: id('agent') });
  fillSelect(agent, [...data.agents.map((a) => [a.id, agentLabel(a)]), ['', 'Not answered (480)']], rule.agent_id || '');
  const move = (to) => {
    const rules = readRules();
    const [r] = rules.splice(i, 1);
    rules.splice(to, 0, r);
    renderRules(rules, to);
  };
  return el('li', { className: 'rule', dataset: { index: String(i) } },
    el('fieldset', { id: `rule-${i}` }, el('legend', {}, `Rule ${i + 1}`),
      el('div', { className: 'rule-kinds' },
        el('label', {}, timed, ' At certain times'), el('label', {}, callers, ' For certain callers')),
      whenBox, callerBox,
      field('agent', 'Then', agent),
      el('p', { className: 'field-error', id: `rule-${i}-error`, attrs: { 'aria-live': 'polite' } }),
      el('div', { className: 'row-actions' },
        Object.assign(rowButton('rule-up', 'Move up', `Move rule ${i + 1} up`, () => move(i - 1)),
          { disabled: i === 0 }),
        Object.assign(rowButton('rule-down', 'Move down', `Move rule ${i + 1} down`, () => move(i + 1)),
          { disabled: i === count - 1 }),
        rowButton('rule-remove', 'Remove', `Remove rule ${i + 1}`, () => {
          const rules = readRules();
          rules.splice(i, 1);
          renderRules(rules, Math.min(i, rules.length - 1));
        }, 'danger-outline'))));
}

function renderRules(rules, focus) {
  $('#rules-list').replaceChildren(...rules.map((r, i) => ruleEditor(r, i, rules.length)));
  if (focus != null && focus >= 0) {
    const target = document.getElementById(`rule-${focus}-timed`);
    if (target) target.focus();
  }
}

/** The rules as the editor holds them, in the API's shape (what is left empty is left out). */
function readRules() {
  return $$('#rules-list li.rule').map((li) => {
    const i = li.dataset.index;
    const v = (k) => document.getElementById(`rule-${i}-${k}`).value.trim();
    const rule = {};
    if (document.getElementById(`rule-${i}-timed`).checked) {
      const when = { zone: v('zone') };
      const days = $$('.day-box', li).filter((b) => b.checked).map((b) => b.value);
      if (days.length < 7) when.days = days;
      if (v('from')) when.from = v('from');
      if (v('to')) when.to = v('to');
      const dates = v('dates').split(/[\s,]+/).filter(Boolean);
      if (dates.length) when.dates = dates;
      rule.when = when;
    }
    if (document.getElementById(`rule-${i}-callers`).checked) {
      const c = v('caller');
      rule.caller = c.toLowerCase() === 'anonymous' ? 'anonymous' : c.split(/[\s,]+/).filter(Boolean);
    }
    rule.agent_id = v('agent') || null;
    return rule;
  });
}

/** The editor field of an API field (`rules[2].when.zone` -> `rule-2-zone`), or the rule itself. */
function ruleFieldId(field) {
  const m = /^rules\[(\d+)\](?:\.(.*))?$/.exec(field || '');
  if (!m) return null;
  const rest = m[2] || '';
  const key = ['zone', 'days', 'from', 'to', 'dates'].find((k) => rest.startsWith(`when.${k}`)) ||
    (rest.startsWith('caller') ? 'caller' : rest.startsWith('agent_id') ? 'agent' : null);
  return key ? `rule-${m[1]}-${key}` : `rule-${m[1]}`;
}

/** The zones the browser knows, offered as the time zone field's suggestions. */
function zoneList() {
  if (document.getElementById('zones')) return;
  let zones = ['UTC', 'America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles',
    'Europe/London', 'Europe/Dublin', 'Europe/Paris', 'Europe/Berlin', 'Asia/Tokyo', 'Australia/Sydney'];
  try {
    if (Intl.supportedValuesOf) zones = ['UTC', ...Intl.supportedValuesOf('timeZone')];
  } catch {
    // the short list
  }
  document.body.append(el('datalist', { id: 'zones' }, zones.map((z) => el('option', { value: z }))));
}

async function openRules(n, opener) {
  zoneList();
  ruling = n;
  $('#rules-title').textContent = `Routing rules for ${n.phone_number}`;
  $('#rules-status').textContent = '';
  renderWeek(n);
  renderRules(n.rules || []);
  const row = `#numbers-table tr[data-number="${CSS.escape(n.phone_number)}"] button.rules`;
  openDialog($('#rules-dialog'), backTo(opener, row, '#add-number'));
}

$('#rules-add').addEventListener('click', () => {
  const rules = readRules();
  rules.push({ when: { zone: localZone(), days: WEEKDAYS, from: '18:00', to: '08:00' }, agent_id: null });
  renderRules(rules, rules.length - 1);
});

$('#rules-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  clearErrors(form);
  const rules = readRules();
  try {
    const n = await withBusy($('#rules-save'), async () => {
      await api('PATCH', `/v1/numbers/${enc(ruling.phone_number)}`, { rules });
      const fresh = await api('GET', `/v1/numbers/${enc(ruling.phone_number)}`);
      await refreshNumbers();
      return fresh;
    });
    ruling = n;
    renderWeek(n);
    renderRules(n.rules || []);
    $('#rules-status').textContent = rules.length
      ? `Saved ${rules.length} rule${rules.length > 1 ? 's' : ''}: from the next call, ${scheduleNow(n)}.`
      : 'Saved: no rules, its own agent answers every call.';
  } catch (e) {
    if (isAuthError(e)) return;
    const id = ruleFieldId(e.field);
    const input = id && document.getElementById(id);
    if (input) {
      const label = labelOf(id) || (id.endsWith('-days') ? 'Days' : null);
      const why = e.message.replace(/^rules\[\d+\][^:]*:\s*/, '');
      setFieldError(id, label ? `${label}: ${why}` : why);
      const hidden = input.closest('[hidden]');
      if (hidden) hidden.hidden = false;
      (input.matches('fieldset') ? $('input', input) : input).focus();
    } else {
      formError(form, e.message);
    }
  }
});
