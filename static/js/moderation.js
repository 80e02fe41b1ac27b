// Moderation panel (workspace owners only; context.js hides the tab for everyone else): the
// room's flagged messages and muted people (`GET /api/rooms/{id}/moderation`), with Unmute
// (`DELETE /api/rooms/{id}/mutes/{user_id}`), and its members (`GET /api/rooms/{id}/members`),
// with Remove (`DELETE /api/rooms/{id}/members/{user_id}`; not yourself, and nobody in a DM).
// A `moderation` event for the room refreshes it, and a `presence_update` its members.

import { get, del } from './api.js';
import * as socket from './socket.js';
import * as session from './session.js';
import { $, el } from './dom.js';

let room = null;
let visible = false;
let data = null;
let members = null;
let serial = 0;
let memberSerial = 0;
let membersDue = null;
/** What the owner last did to the member list ("Removed Ana."), shown beside the count. */
let memberNote = '';
let initialized = false;

export function initModeration() {
  if (initialized) return;
  initialized = true;
  socket.on('moderation', ({ room_id: roomId }) => {
    if (visible && room && room.id === roomId) load();
  });
  // Someone came, left or was removed: the member list may have changed (read again at most
  // once a second, however busy the room).
  socket.on('presence_update', ({ room_id: roomId }) => {
    if (!visible || !room || room.id !== roomId || membersDue) return;
    membersDue = setTimeout(() => {
      membersDue = null;
      if (visible && room?.id === roomId) loadMembers();
    }, 1000);
  });
}

export function show(next) {
  visible = true;
  if (room?.id !== next?.id) {
    data = null;
    members = null;
    memberNote = '';
  }
  room = next;
  render();
  renderMembers();
  if (room) {
    load();
    loadMembers();
  }
}

export function hide() {
  visible = false;
}

export function reset() {
  visible = false;
  room = null;
  data = null;
  members = null;
  memberNote = '';
  clearTimeout(membersDue);
  membersDue = null;
  $('mute-list').replaceChildren();
  $('flag-list').replaceChildren();
  $('member-list').replaceChildren();
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

async function loadMembers() {
  const mine = ++memberSerial;
  const roomId = room.id;
  try {
    const list = await get(`/api/rooms/${encodeURIComponent(roomId)}/members`);
    if (mine !== memberSerial || !visible || room?.id !== roomId) return;
    members = Array.isArray(list) ? list : [];
  } catch (err) {
    if (mine !== memberSerial) return;
    members = null;
    $('member-status').textContent = `Could not load the members: ${err.message}`;
    return;
  }
  renderMembers();
}

function renderMembers() {
  const status = $('member-status');
  if (!room) {
    status.textContent = '';
    $('member-list').replaceChildren();
    return;
  }
  if (!members) {
    status.textContent = 'Loading…';
    return;
  }
  const count = `${members.length} ${members.length === 1 ? 'member' : 'members'}.`;
  status.textContent = memberNote ? `${count} ${memberNote}` : count;
  $('member-list').replaceChildren(...members.map(buildMember));
}

function buildMember(member) {
  const me = session.user()?.id;
  const name = member.display_name || 'Someone';
  const li = el(
    'li',
    { class: 'item', dataset: { testid: 'room-member', userId: String(member.id) } },
    el('p', { class: 'item-text', text: member.id === me ? `${name} (you)` : name }),
  );
  if (member.id !== me && room?.kind !== 'dm') {
    const button = el('button', {
      type: 'button',
      class: 'button item-action',
      dataset: { testid: 'remove-member' },
      text: 'Remove',
      'aria-label': `Remove ${name} from #${room.name}`,
      onclick: () => removeMember(member, name, button),
    });
    li.append(button);
  }
  return li;
}

async function removeMember(member, name, button) {
  if (!room) return;
  if (!window.confirm(`Remove ${name} from #${room.name}? Coming back to a private room takes a new invite.`)) return;
  button.disabled = true;
  try {
    await del(`/api/rooms/${encodeURIComponent(room.id)}/members/${encodeURIComponent(member.id)}`);
    if (members) members = members.filter((m) => m.id !== member.id);
    memberNote = `Removed ${name}.`;
    renderMembers();
    loadMembers();
    $('ctx-tab-moderation').focus();
  } catch (err) {
    button.disabled = false;
    $('member-status').textContent = `Could not remove ${name}: ${err.message}`;
  }
}
