// Pins panel: the current room's pinned messages, newest pin first.
//
// `GET /api/rooms/{id}/pins` lists them; `message_pinned` / `message_unpinned` (and a deleted
// message, which loses its pin) keep every open copy live. Clicking a pin scrolls to the message
// when it is loaded in the chat; unpinning is a socket action like pinning.

import { get } from './api.js';
import * as socket from './socket.js';
import * as session from './session.js';
import { $, el } from './dom.js';
import { jumpTo } from './chat/render.js';
import { closeIfDrawer } from './context.js';

/** roomId -> {pins: Map(messageId -> message), loaded, loading, error, stale} */
const cache = new Map();
let room = null;
let visible = false;
let initialized = false;

export function initPins() {
  if (initialized) return;
  initialized = true;
  socket.on('message_pinned', ({ room_id: roomId, message }) => {
    const entry = cache.get(roomId);
    if (entry?.loaded && message?.id != null) entry.pins.set(message.id, message);
    if (visible && room?.id === roomId) render();
  });
  const drop = ({ room_id: roomId, message_id: messageId }) => {
    const entry = cache.get(roomId);
    if (entry?.pins.delete(messageId) && visible && room?.id === roomId) render();
  };
  socket.on('message_unpinned', drop);
  socket.on('message_deleted', drop);
  socket.on('message_edited', ({ room_id: roomId, message }) => {
    const entry = cache.get(roomId);
    if (message?.id != null && entry?.pins.has(message.id)) {
      entry.pins.set(message.id, { ...entry.pins.get(message.id), body: message.body, edited_at: message.edited_at });
      if (visible && room?.id === roomId) render();
    }
  });
  socket.on('connection', ({ state, resumed }) => {
    if (state === 'open' && resumed) {
      for (const entry of cache.values()) entry.stale = true;
      if (visible) refresh();
    }
  });
}

export function show(next) {
  visible = true;
  room = next;
  $('pins-room-name').textContent = room ? roomLabel(room) : 'this room';
  render();
  if (room) refresh(true);
}

export function hide() {
  visible = false;
}

export function reset() {
  cache.clear();
  room = null;
  visible = false;
  $('pin-list').replaceChildren();
}

function roomLabel(r) {
  return r.kind === 'dm' ? (r.peer?.display_name || r.name) : `#${r.name}`;
}

function entryFor(roomId) {
  let entry = cache.get(roomId);
  if (!entry) {
    entry = { pins: new Map(), loaded: false, loading: false, error: '', stale: true };
    cache.set(roomId, entry);
  }
  return entry;
}

async function refresh(force = false) {
  if (!room) return;
  const roomId = room.id;
  const entry = entryFor(roomId);
  if (entry.loading || (!force && entry.loaded && !entry.stale)) return;
  entry.loading = true;
  try {
    const list = await get(`/api/rooms/${encodeURIComponent(roomId)}/pins`);
    entry.pins = new Map((Array.isArray(list) ? list : []).filter((m) => m?.id != null).map((m) => [m.id, m]));
    entry.loaded = true;
    entry.stale = false;
    entry.error = '';
  } catch (err) {
    entry.error = err.message;
  } finally {
    entry.loading = false;
  }
  if (visible && room?.id === roomId) render();
}

/** Newest pin first. */
function sorted(pins) {
  return [...pins.values()].sort((a, b) => String(b.pinned?.at || '').localeCompare(String(a.pinned?.at || '')));
}

function render() {
  const list = $('pin-list');
  const status = $('pins-status');
  if (!room) {
    list.replaceChildren();
    status.textContent = 'Open a room to see its pins.';
    return;
  }
  const entry = entryFor(room.id);
  const pins = sorted(entry.pins);
  if (!entry.loaded) status.textContent = entry.error ? `Could not load pins: ${entry.error}` : 'Loading pins…';
  else status.textContent = pins.length ? '' : 'Nothing pinned yet. Pin a message from its menu (📌).';
  list.replaceChildren(...pins.map(buildPin));
}

function buildPin(m) {
  const author = m.kind === 'ai' ? 'Mathia' : m.author?.display_name || 'Someone';
  const by = m.pinned?.by?.display_name || 'someone';
  const when = m.pinned?.at
    ? session.formatTime(m.pinned.at, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
    : '';
  const text = (m.body || '').length > 280 ? `${m.body.slice(0, 280)}…` : m.body || '';
  const open = el(
    'button',
    {
      type: 'button',
      class: 'pin-open',
      dataset: { testid: 'pin-open' },
      title: 'Show this message in the chat',
      onclick: () => showMessage(m.id),
    },
    el('span', { class: 'item-head' }, el('strong', { text: author })),
    el('span', { class: 'item-text', dataset: { testid: 'pin-text' }, text }),
    el('span', { class: 'item-meta muted small', text: [`pinned by ${by}`, when].filter(Boolean).join(' · ') }),
  );
  const unpin = el('button', {
    type: 'button',
    class: 'icon-button item-action',
    dataset: { testid: 'pin-remove' },
    'aria-label': `Unpin: ${text}`.slice(0, 120),
    title: 'Unpin',
    text: '✕',
    onclick: () => {
      if (!socket.send({ action: 'unpin_message', room_id: m.room_id, message_id: m.id })) {
        $('pins-status').textContent = 'You are offline. Try again once reconnected.';
      }
    },
  });
  return el('li', { class: 'item pin', dataset: { testid: 'pin', messageId: String(m.id) } }, open, unpin);
}

function showMessage(id) {
  const loaded = $('message-list').querySelector(`.message[data-id="${CSS.escape(String(id))}"]`);
  if (loaded) {
    closeIfDrawer();
    jumpTo(id);
  } else $('pins-status').textContent = 'That message is further back in the history: scroll up to load it.';
}
