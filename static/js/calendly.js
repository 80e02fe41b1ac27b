// Calendly, in the context panel and in Settings: connection status (`GET /api/calendly/status`
// → {connected, user?, scheduling_url?}), connecting with a personal access token
// (`POST /api/calendly/connect`) or — when the server has an OAuth app (its
// `/api/calendly/oauth/start` does not answer 404) — with "Connect with Calendly", disconnecting
// (`DELETE /api/calendly`), the scheduling link, and the next 7 days of events
// (`GET /api/calendly/events`). The panel also has "Find a time" with the room's members
// (`GET /api/rooms/{id}/free-times`).
//
// Both places have the same markup, its parts named by `data-cal`; one view drives each.

import { get, post, del, rawFetch, asList } from './api.js';
import * as session from './session.js';
import { el } from './dom.js';

const OAUTH_PATH = '/api/calendly/oauth/start';

let status = null;
let oauthAvailable = null; // null: not probed yet
let room = null;
let initialized = false;
const views = [];

function makeView(root) {
  const q = (name) => root.querySelector(`[data-cal="${name}"]`);
  const view = { root, q, visible: false, serial: 0 };
  q('form').addEventListener('submit', (event) => {
    event.preventDefault();
    connect(view);
  });
  q('disconnect').addEventListener('click', () => disconnect(view));
  q('oauth').addEventListener('click', startOAuth);
  q('find')?.addEventListener('click', () => findTime(view));
  views.push(view);
  return view;
}

let panel = null;
let settings = null;

export function initCalendly() {
  if (initialized) return;
  initialized = true;
  panel = makeView(document.getElementById('calendly-panel'));
  settings = makeView(document.getElementById('settings-calendly'));
}

/** The context panel's tab (a panel module: `show(room)` / `hide()`). */
export function show(next) {
  if (next?.id !== room?.id) clearSlots(panel);
  room = next || null;
  open(panel);
}

export function hide() {
  panel.visible = false;
}

/** The Settings tab. */
export const inSettings = {
  show: () => open(settings),
  hide: () => {
    settings.visible = false;
  },
};

export function reset() {
  status = null;
  oauthAvailable = null;
  room = null;
  for (const view of views) {
    view.visible = false;
    view.q('token').value = '';
    view.q('events').replaceChildren();
    clearSlots(view);
    showError(view, '');
  }
}

function open(view) {
  view.visible = true;
  load(view);
}

async function load(view) {
  const mine = ++view.serial;
  if (!status) view.q('status').textContent = 'Checking…';
  try {
    status = await get('/api/calendly/status');
  } catch (err) {
    if (mine !== view.serial) return;
    view.q('status').textContent = `Could not check Calendly: ${err.message}`;
    view.q('connected').hidden = true;
    view.q('form').hidden = true;
    return;
  }
  if (mine !== view.serial || !view.visible) return;
  render(view);
  if (status?.connected) loadEvents(view);
  else probeOAuth(view);
}

function userLabel(user) {
  if (!user) return '';
  if (typeof user === 'string') return user;
  return user.name || user.display_name || user.email || '';
}

function render(view) {
  const { q } = view;
  const connected = Boolean(status?.connected);
  const node = q('status');
  node.dataset.connected = String(connected);
  const who = userLabel(status?.user);
  node.textContent = connected ? `Connected to Calendly${who ? ` as ${who}` : ''}.` : 'Calendly is not connected.';
  q('connected').hidden = !connected;
  q('form').hidden = connected;
  const url = status?.scheduling_url;
  const safe = typeof url === 'string' && /^https?:\/\//i.test(url);
  q('link-line').hidden = !(connected && safe);
  if (safe) {
    q('link').href = url;
    q('link').textContent = url.replace(/^https?:\/\//i, '');
  }
  q('oauth-line').hidden = !(oauthAvailable && !connected);
  if (q('find-box')) q('find-box').hidden = !(connected && room);
}

async function probeOAuth(view) {
  if (oauthAvailable !== null) {
    render(view);
    return;
  }
  try {
    let response = await rawFetch('HEAD', OAUTH_PATH);
    if (response.status === 405) response = await rawFetch('GET', OAUTH_PATH);
    oauthAvailable = response.status !== 404;
  } catch {
    oauthAvailable = false;
  }
  if (view.visible) render(view);
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
      for (const view of views) {
        if (!view.visible) continue;
        render(view);
        showError(view, 'Connecting with Calendly is not set up on this server. Use a personal access token.');
      }
      return;
    }
  } catch {
    // fall through to a plain navigation
  }
  location.assign(OAUTH_PATH);
}

async function connect(view) {
  const input = view.q('token');
  const token = input.value.trim();
  if (!token) {
    showError(view, 'Paste your Calendly personal access token.');
    input.focus();
    return;
  }
  showError(view, '');
  const button = view.q('connect');
  button.disabled = true;
  try {
    status = await post('/api/calendly/connect', { personal_access_token: token });
    input.value = '';
    if (!status || typeof status.connected !== 'boolean') status = await get('/api/calendly/status');
    render(view);
    if (status.connected) loadEvents(view);
  } catch (err) {
    showError(view, err.message);
    input.focus();
  } finally {
    button.disabled = false;
  }
}

async function disconnect(view) {
  const button = view.q('disconnect');
  button.disabled = true;
  try {
    await del('/api/calendly');
    status = { connected: false };
    for (const v of views) {
      v.q('events').replaceChildren();
      clearSlots(v);
    }
    render(view);
    probeOAuth(view);
    view.q('token').focus();
  } catch (err) {
    view.q('events-status').textContent = `Could not disconnect: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

async function loadEvents(view) {
  const mine = view.serial;
  const statusEl = view.q('events-status');
  statusEl.textContent = 'Loading events…';
  let events;
  try {
    events = asList(await get('/api/calendly/events'), 'events', 'collection');
  } catch (err) {
    if (mine === view.serial) statusEl.textContent = `Could not load events: ${err.message}`;
    return;
  }
  if (mine !== view.serial || !view.visible) return;
  events.sort((a, b) => String(a.start_time).localeCompare(String(b.start_time)));
  statusEl.textContent = events.length ? '' : 'Nothing scheduled in the next 7 days.';
  view.q('events').replaceChildren(...events.map(buildEvent));
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

function clearSlots(view) {
  if (!view?.q('slots')) return;
  view.q('slots').replaceChildren();
  view.q('find-status').textContent = '';
  view.q('missing').hidden = true;
}

/** "Find a time": open slots where every connected member of the room is free. */
async function findTime(view) {
  if (!room) return;
  const forRoom = room.id;
  const button = view.q('find');
  button.disabled = true;
  clearSlots(view);
  view.q('find-status').textContent = 'Looking at everyone’s calendars…';
  let found;
  try {
    found = await get(`/api/rooms/${forRoom}/free-times?days=3&minutes=30`);
  } catch (err) {
    if (room?.id === forRoom) view.q('find-status').textContent = `Could not find a time: ${err.message}`;
    return;
  } finally {
    button.disabled = false;
  }
  if (room?.id !== forRoom) return;
  const members = found.members || [];
  const connected = members.filter((m) => m.calendly === 'connected');
  const missing = members.filter((m) => m.calendly !== 'connected');
  const slots = found.slots || [];
  view.q('find-status').textContent = slots.length
    ? `${slots.length} open slot${slots.length === 1 ? '' : 's'} for ${connected.map((m) => m.display_name).join(', ')}:`
    : 'No slot in the next 3 days when everyone connected is free.';
  view.q('slots').replaceChildren(
    ...slots.map((slot) =>
      el(
        'li',
        { class: 'item calendly-slot', dataset: { testid: 'calendly-slot' } },
        el('p', {
          class: 'item-text',
          text: `${session.formatTime(slot.start, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' })} – ${session.formatTime(slot.end, { hour: '2-digit', minute: '2-digit' })}`,
        }),
      ),
    ),
  );
  const note = view.q('missing');
  note.hidden = !missing.length;
  note.textContent = missing.length
    ? `Not counted (no Calendly${missing.some((m) => m.calendly === 'unavailable') ? ' or Calendly did not answer' : ''}): ${missing.map((m) => m.display_name).join(', ')}.`
    : '';
}

function showError(view, message) {
  const node = view.q('error');
  node.textContent = message;
  node.hidden = !message;
}
