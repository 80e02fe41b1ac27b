// Calendly panel: connection status (`GET /api/calendly/status` → {connected, user?,
// scheduling_url?}), connecting with a personal access token (`POST /api/calendly/connect`) or —
// when the server has an OAuth app (its `/api/calendly/oauth/start` does not answer 404) — with
// "Connect with Calendly", disconnecting (`DELETE /api/calendly`), the scheduling link, and the
// next 7 days of events (`GET /api/calendly/events`).

import { get, post, del, rawFetch, asList } from './api.js';
import * as session from './session.js';
import { $, el } from './dom.js';

const OAUTH_PATH = '/api/calendly/oauth/start';

let status = null;
let visible = false;
let oauthAvailable = null; // null: not probed yet
let serial = 0;
let initialized = false;

export function initCalendly() {
  if (initialized) return;
  initialized = true;
  $('calendly-form').addEventListener('submit', (event) => {
    event.preventDefault();
    connect();
  });
  $('calendly-disconnect').addEventListener('click', disconnect);
  $('calendly-oauth').addEventListener('click', startOAuth);
}

export function show() {
  visible = true;
  load();
}

export function hide() {
  visible = false;
}

export function reset() {
  visible = false;
  status = null;
  oauthAvailable = null;
  $('calendly-token').value = '';
  $('calendly-events').replaceChildren();
  showError('');
}

async function load() {
  const mine = ++serial;
  if (!status) $('calendly-status').textContent = 'Checking…';
  try {
    status = await get('/api/calendly/status');
  } catch (err) {
    if (mine !== serial) return;
    $('calendly-status').textContent = `Could not check Calendly: ${err.message}`;
    $('calendly-connected').hidden = true;
    $('calendly-form').hidden = true;
    return;
  }
  if (mine !== serial || !visible) return;
  render();
  if (status?.connected) loadEvents();
  else probeOAuth();
}

function userLabel(user) {
  if (!user) return '';
  if (typeof user === 'string') return user;
  return user.name || user.display_name || user.email || '';
}

function render() {
  const connected = Boolean(status?.connected);
  const node = $('calendly-status');
  node.dataset.connected = String(connected);
  const who = userLabel(status?.user);
  node.textContent = connected ? `Connected to Calendly${who ? ` as ${who}` : ''}.` : 'Calendly is not connected.';
  $('calendly-connected').hidden = !connected;
  $('calendly-form').hidden = connected;
  const url = status?.scheduling_url;
  const safe = typeof url === 'string' && /^https?:\/\//i.test(url);
  $('calendly-link-line').hidden = !(connected && safe);
  if (safe) {
    $('calendly-link').href = url;
    $('calendly-link').textContent = url.replace(/^https?:\/\//i, '');
  }
  $('calendly-oauth-line').hidden = !(oauthAvailable && !connected);
}

async function probeOAuth() {
  if (oauthAvailable !== null) {
    render();
    return;
  }
  try {
    let response = await rawFetch('HEAD', OAUTH_PATH);
    if (response.status === 405) response = await rawFetch('GET', OAUTH_PATH);
    oauthAvailable = response.status !== 404;
  } catch {
    oauthAvailable = false;
  }
  if (visible) render();
}

async function startOAuth() {
  // The bearer token cannot ride along on a plain navigation, so ask for the authorize URL as
  // JSON first; a server that only redirects gets a plain navigation.
  try {
    const response = await rawFetch('GET', OAUTH_PATH);
    if (response.ok && (response.headers.get('Content-Type') || '').includes('json')) {
      const data = await response.json();
      const url = data?.url || data?.authorize_url || data?.redirect_url;
      if (typeof url === 'string' && /^https?:\/\//i.test(url)) {
        location.assign(url);
        return;
      }
    }
    if (response.status === 404) {
      oauthAvailable = false;
      render();
      showError('Connecting with Calendly is not set up on this server. Use a personal access token.');
      return;
    }
  } catch {
    // fall through to a plain navigation
  }
  location.assign(OAUTH_PATH);
}

async function connect() {
  const input = $('calendly-token');
  const token = input.value.trim();
  if (!token) {
    showError('Paste your Calendly personal access token.');
    input.focus();
    return;
  }
  showError('');
  const button = $('calendly-connect');
  button.disabled = true;
  try {
    status = await post('/api/calendly/connect', { personal_access_token: token });
    input.value = '';
    if (!status || typeof status.connected !== 'boolean') status = await get('/api/calendly/status');
    render();
    if (status.connected) loadEvents();
  } catch (err) {
    showError(err.message);
    input.focus();
  } finally {
    button.disabled = false;
  }
}

async function disconnect() {
  const button = $('calendly-disconnect');
  button.disabled = true;
  try {
    await del('/api/calendly');
    status = { connected: false };
    $('calendly-events').replaceChildren();
    render();
    probeOAuth();
    $('calendly-token').focus();
  } catch (err) {
    $('calendly-events-status').textContent = `Could not disconnect: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

async function loadEvents() {
  const mine = serial;
  const statusEl = $('calendly-events-status');
  statusEl.textContent = 'Loading events…';
  let events;
  try {
    events = asList(await get('/api/calendly/events'), 'events', 'collection');
  } catch (err) {
    if (mine === serial) statusEl.textContent = `Could not load events: ${err.message}`;
    return;
  }
  if (mine !== serial || !visible) return;
  events.sort((a, b) => String(a.start_time).localeCompare(String(b.start_time)));
  statusEl.textContent = events.length ? '' : 'Nothing scheduled in the next 7 days.';
  $('calendly-events').replaceChildren(...events.map(buildEvent));
}

function buildEvent(event) {
  const start = session.formatTime(event.start_time, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  const end = event.end_time ? session.formatTime(event.end_time, { hour: '2-digit', minute: '2-digit' }) : '';
  const li = el(
    'li',
    { class: 'item calendly-event', dataset: { testid: 'calendly-event' } },
    el('p', { class: 'item-text', text: event.name || 'Event' }),
    el('p', { class: 'item-meta small', text: end ? `${start} – ${end}` : start }),
  );
  const extra = [];
  const place = typeof event.location === 'string' ? event.location : event.location?.location || event.location?.type;
  if (place) extra.push(place);
  if (Array.isArray(event.invitees) && event.invitees.length) {
    extra.push(`with ${event.invitees.map((i) => (typeof i === 'string' ? i : i?.name || i?.email)).filter(Boolean).join(', ')}`);
  } else if (typeof event.invitees === 'number' && event.invitees > 0) {
    extra.push(`${event.invitees} invitee${event.invitees === 1 ? '' : 's'}`);
  }
  if (extra.length) {
    li.append(el('p', { class: 'item-meta muted small', text: extra.join(' · ') }));
  }
  return li;
}

function showError(message) {
  const node = $('calendly-error');
  node.textContent = message;
  node.hidden = !message;
}
