// Moderation panel (workspace owners only; context.js hides the tab for everyone else): the
// room's flagged messages and muted people (`GET /api/rooms/{id}/moderation`), with Unmute
// (`DELETE /api/rooms/{id}/mutes/{user_id}`). A `moderation` event for the room refreshes it.

import { get, del } from './api.js';
import * as socket from './socket.js';
import * as session from './session.js';
import { $, el } from './dom.js';

let room = null;
let visible = false;
let data = null;
let serial = 0;
let initialized = false;

export function initModeration() {
  if (initialized) return;
  initialized = true;
  socket.on('moderation', ({ room_id: roomId }) => {
    if (visible && room && room.id === roomId) load();
  });
}

export function show(next) {
  visible = true;
  if (room?.id !== next?.id) data = null;
  room = next;
  render();
  if (room) load();
}

export function hide() {
  visible = false;
}

export function reset() {
  visible = false;
  room = null;
  data = null;
  $('mute-list').replaceChildren();
  $('flag-list').replaceChildren();
}

async function load() {
  const mine = ++serial;
  const roomId = room.id;
  try {
    data = await get(`/api/rooms/${encodeURIComponent(roomId)}/moderation`);
  } catch (err) {
    if (mine !== serial) return;
    data = null;
    $('moderation-status').textContent =
      err.status === 403 ? 'Only workspace owners can see moderation.' : `Could not load moderation: ${err.message}`;
    return;
  }
  if (mine !== serial || !visible || room?.id !== roomId) return;
  render();
}

function render() {
  const status = $('moderation-status');
  const mutes = Array.isArray(data?.mutes) ? data.mutes : [];
  const flags = Array.isArray(data?.flags) ? data.flags : [];
  if (!room) status.textContent = 'Open a room to moderate it.';
  else if (!data) status.textContent = 'Loading…';
  else status.textContent = `#${room.name}: ${mutes.length} muted, ${flags.length} flagged.`;

  $('mute-list').replaceChildren(...(mutes.length ? mutes.map(buildMute) : [empty('Nobody is muted.')]));
  $('flag-list').replaceChildren(...(flags.length ? flags.map(buildFlag) : [empty('No flagged messages.')]));
}

function empty(text) {
  return el('li', { class: 'muted small', text });
}

function buildMute(mute) {
  const name = mute.user?.display_name || 'Someone';
  const until = mute.until ? `until ${session.formatClock(mute.until)}` : 'until unmuted';
  const button = el('button', {
    type: 'button',
    class: 'button item-action',
    dataset: { testid: 'unmute' },
    text: 'Unmute',
    'aria-label': `Unmute ${name}`,
    onclick: () => unmute(mute, button),
  });
  return el(
    'li',
    { class: 'item', dataset: { testid: 'moderation-mute', userId: String(mute.user?.id ?? '') } },
    el('p', { class: 'item-text', text: name }),
    el('p', { class: 'item-meta muted small', text: [until, mute.reason].filter(Boolean).join(' · ') }),
    button,
  );
}

function buildFlag(flag) {
  const labels = [flag.category, flag.severity, flag.source].filter(Boolean);
  const li = el(
    'li',
    {
      class: `item flag severity-${String(flag.severity || 'unknown').replace(/[^\w-]/g, '')}`,
      dataset: { testid: 'moderation-flag' },
    },
    el('div', { class: 'item-head' }, labels.map((label) => el('span', { class: 'badge', text: String(label).replace(/_/g, ' ') }))),
    el('p', { class: 'item-text', text: flag.user?.display_name || 'Unknown' }),
    el('p', { class: 'item-meta muted small', text: flag.created_at ? session.formatClock(flag.created_at) : '' }),
  );
  if (flag.message_id != null) {
    const showMessage = () => {
      const message = document.querySelector(`#message-list [data-id="${CSS.escape(String(flag.message_id))}"]`);
      if (message) {
        message.scrollIntoView({ block: 'center' });
        message.classList.add('highlight');
        setTimeout(() => message.classList.remove('highlight'), 2000);
      }
    };
    li.append(el('button', { type: 'button', class: 'link-button small', text: 'Show message', onclick: showMessage }));
  }
  return li;
}

async function unmute(mute, button) {
  if (!room || mute.user?.id == null) return;
  button.disabled = true;
  try {
    await del(`/api/rooms/${encodeURIComponent(room.id)}/mutes/${encodeURIComponent(mute.user.id)}`);
    if (data) data.mutes = data.mutes.filter((m) => m.user?.id !== mute.user.id);
    render();
    load();
    $('ctx-tab-moderation').focus();
  } catch (err) {
    button.disabled = false;
    $('moderation-status').textContent = `Could not unmute: ${err.message}`;
  }
}
