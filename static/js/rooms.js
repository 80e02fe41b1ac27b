// Sidebar panel: the user's rooms, creating a room, inviting to the current room, unread badges.
//
// This module owns which room is selected; it tells main.js through `onSelect`. Every room in
// the list is joined on the socket so that its messages arrive (and count as unread while
// another room is shown).

import { get, post } from './api.js';
import * as socket from './socket.js';

const $ = (id) => document.getElementById(id);
const LAST_ROOM_KEY = 'mathia.lastRoom';
const ROOM_NAME_MAX = 80;

const rooms = new Map(); // id -> room
const unread = new Map(); // id -> count
let currentId = null;
let me = null;
let onSelect = () => {};
let initialized = false;

export function initRooms({ select }) {
  onSelect = select;
  if (initialized) return;
  initialized = true;

  $('new-room-form').addEventListener('submit', createRoom);
  $('invite-button').addEventListener('click', createInvite);
  $('invite-copy').addEventListener('click', copyInvite);
  $('invite-close').addEventListener('click', hideInvite);
  $('invite-link').addEventListener('focus', (e) => e.target.select());

  socket.on('new_message', ({ room_id: roomId, message }) => {
    if (!rooms.has(roomId) || roomId === currentId) return;
    if (message?.author && me && message.author.id === me.id) return;
    unread.set(roomId, (unread.get(roomId) || 0) + 1);
    renderBadge(roomId);
    updateTitle();
  });
}

export function setMe(user) {
  me = user;
}

export function currentRoom() {
  return currentId ? rooms.get(currentId) : null;
}

/** Loads the room list from the server, joins each room, and renders. */
export async function loadRooms() {
  const list = await get('/api/rooms');
  for (const room of Array.isArray(list) ? list : []) addRoom(room, { render: false });
  render();
  return [...rooms.values()];
}

/** Adds (or refreshes) a room in the list and joins it on the socket. */
export function addRoom(room, { render: doRender = true } = {}) {
  const known = rooms.has(room.id);
  rooms.set(room.id, room);
  if (!known) socket.joinRoom(room.id);
  if (doRender) render();
}

/** The room to open after boot: the remembered one if still a member, else the first. */
export function defaultRoomId() {
  let remembered = null;
  try {
    remembered = localStorage.getItem(LAST_ROOM_KEY);
  } catch {
    remembered = null;
  }
  if (remembered && rooms.has(remembered)) return remembered;
  const first = rooms.keys().next();
  return first.done ? null : first.value;
}

export function selectRoom(id) {
  const room = rooms.get(id);
  if (!room) return;
  currentId = id;
  unread.delete(id);
  try {
    localStorage.setItem(LAST_ROOM_KEY, id);
  } catch {
    // not remembered; fine
  }
  hideInvite();
  render();
  updateTitle();
  $('invite-button').disabled = false;
  onSelect(room);
}

export function reset() {
  rooms.clear();
  unread.clear();
  currentId = null;
  me = null;
  hideInvite();
  $('new-room-name').value = '';
  showCreateError('');
  render();
  updateTitle();
}

function render() {
  const list = $('room-list');
  list.replaceChildren();
  for (const room of rooms.values()) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'room-item';
    button.dataset.testid = 'room-item';
    button.dataset.roomId = room.id;
    if (room.id === currentId) button.setAttribute('aria-current', 'true');

    const hash = document.createElement('span');
    hash.className = 'room-hash';
    hash.setAttribute('aria-hidden', 'true');
    hash.textContent = '#';
    const name = document.createElement('span');
    name.className = 'room-name';
    name.textContent = room.name;
    const badge = document.createElement('span');
    badge.className = 'unread-badge';
    badge.dataset.testid = 'unread-badge';
    badge.setAttribute('aria-hidden', 'true');
    const spoken = document.createElement('span');
    spoken.className = 'visually-hidden unread-spoken';

    button.append(hash, name, badge, spoken);
    button.addEventListener('click', () => selectRoom(room.id));
    li.append(button);
    list.append(li);
    fillBadge(badge, unread.get(room.id) || 0);
  }
  $('room-empty').hidden = rooms.size > 0;
  if (!currentId) $('invite-button').disabled = true;
}

function renderBadge(roomId) {
  const item = $('room-list').querySelector(`[data-room-id="${CSS.escape(roomId)}"]`);
  const badge = item?.querySelector('.unread-badge');
  if (badge) fillBadge(badge, unread.get(roomId) || 0);
}

function fillBadge(badge, count) {
  badge.textContent = count > 99 ? '99+' : String(count);
  badge.hidden = count === 0;
  const spoken = badge.parentElement?.querySelector('.unread-spoken');
  if (spoken) spoken.textContent = count ? `, ${count} unread` : '';
}

function updateTitle() {
  let total = 0;
  for (const n of unread.values()) total += n;
  const room = currentRoom();
  const base = room ? `${room.name} · Mathia` : 'Mathia';
  document.title = total > 0 ? `(${total}) ${base}` : base;
}

async function createRoom(event) {
  event.preventDefault();
  const input = $('new-room-name');
  const name = input.value.trim();
  const length = [...name].length;
  if (length === 0) return showCreateError('Give the room a name.');
  if (length > ROOM_NAME_MAX) return showCreateError(`Room names are at most ${ROOM_NAME_MAX} characters.`);

  showCreateError('');
  const submit = $('new-room-submit');
  submit.disabled = true;
  try {
    const room = await post('/api/rooms', { name });
    input.value = '';
    addRoom(room);
    selectRoom(room.id);
  } catch (err) {
    showCreateError(err.message);
  } finally {
    submit.disabled = false;
  }
}

function showCreateError(message) {
  const el = $('new-room-error');
  el.textContent = message;
  el.hidden = !message;
}

async function createInvite() {
  const room = currentRoom();
  if (!room) return;
  const button = $('invite-button');
  button.disabled = true;
  setInviteStatus('');
  try {
    const { code } = await post(`/api/rooms/${encodeURIComponent(room.id)}/invites`, {});
    const link = `${location.origin}/?invite=${encodeURIComponent(code)}`;
    $('invite-link').value = link;
    $('invite-room-name').textContent = room.name;
    $('invite-panel').hidden = false;
    $('invite-link').focus();
  } catch (err) {
    $('invite-panel').hidden = false;
    $('invite-link').value = '';
    setInviteStatus(err.message);
  } finally {
    button.disabled = false;
  }
}

async function copyInvite() {
  const input = $('invite-link');
  if (!input.value) return;
  try {
    await navigator.clipboard.writeText(input.value);
    setInviteStatus('Copied to the clipboard.');
  } catch {
    input.select();
    const ok = document.execCommand && document.execCommand('copy');
    setInviteStatus(ok ? 'Copied to the clipboard.' : 'Select the link and copy it.');
  }
}

function hideInvite() {
  $('invite-panel').hidden = true;
  $('invite-link').value = '';
  setInviteStatus('');
}

function setInviteStatus(message) {
  $('invite-status').textContent = message;
}
