// Moderation panel (workspace owners only; context.js hides the tab for everyone else): the
// room's flagged messages and muted people (`GET /api/rooms/{id}/moderation`), with Unmute
// (`DELETE /api/rooms/{id}/mutes/{user_id}`). A `moderation` event for the room refreshes it.

import { get, del } from './api.js';
import * as socket from './socket.js';
import * as session from './session.js';

const $ = (id) => document.getElementById(id);

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
  const li = document.createElement('li');
  li.className = 'muted small';
  li.textContent = text;
  return li;
}

function buildMute(mute) {
  const li = document.createElement('li');
  li.className = 'item';
  li.dataset.testid = 'moderation-mute';
  li.dataset.userId = String(mute.user?.id ?? '');
  const name = document.createElement('p');
  name.className = 'item-text';
  name.textContent = mute.user?.display_name || 'Someone';
  const meta = document.createElement('p');
  meta.className = 'item-meta muted small';
  meta.textContent = [mute.until ? `until ${session.formatClock(mute.until)}` : 'until unmuted', mute.reason].filter(Boolean).join(' · ');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button item-action';
  button.dataset.testid = 'unmute';
  button.textContent = 'Unmute';
  button.setAttribute('aria-label', `Unmute ${name.textContent}`);
  button.addEventListener('click', () => unmute(mute, button));
  li.append(name, meta, button);
  return li;
}

function buildFlag(flag) {
  const li = document.createElement('li');
  li.className = `item flag severity-${String(flag.severity || 'unknown').replace(/[^\w-]/g, '')}`;
  li.dataset.testid = 'moderation-flag';
  const head = document.createElement('div');
  head.className = 'item-head';
  for (const label of [flag.category, flag.severity, flag.source]) {
    if (!label) continue;
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = String(label).replace(/_/g, ' ');
    head.append(badge);
  }
  const who = document.createElement('p');
  who.className = 'item-text';
  who.textContent = flag.user?.display_name || 'Unknown';
  const meta = document.createElement('p');
  meta.className = 'item-meta muted small';
  meta.textContent = flag.created_at ? session.formatClock(flag.created_at) : '';
  li.append(head, who, meta);
  if (flag.message_id != null) {
    const jump = document.createElement('button');
    jump.type = 'button';
    jump.className = 'link-button small';
    jump.textContent = 'Show message';
    jump.addEventListener('click', () => {
      const el = document.querySelector(`#message-list [data-id="${CSS.escape(String(flag.message_id))}"]`);
      if (el) {
        el.scrollIntoView({ block: 'center' });
        el.classList.add('highlight');
        setTimeout(() => el.classList.remove('highlight'), 2000);
      }
    });
    li.append(jump);
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
