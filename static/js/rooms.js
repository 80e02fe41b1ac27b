// Sidebar panel: the user's rooms (direct messages in a section of their own), creating a room (in one of the user's workspaces), inviting to
// the current room, joining with an invite link or code, unread badges.
//
// This module owns which room is selected; it tells main.js through `onSelect`. Every room in
// the list is joined on the socket so that its messages arrive. The unread counts are
// attention.js's (the server's read markers); a badge with mentions of you is emphasised.

import { get, post } from './api.js';
import * as attention from './attention.js';
import * as socket from './socket.js';
import * as session from './session.js';
import { $, el } from './dom.js';

const LAST_ROOM_KEY = 'mathia.lastRoom';
const ROOM_NAME_MAX = 80;

const rooms = new Map(); // id -> room
let currentId = null;
let me = null;
let onSelect = () => {};
let initialized = false;
let chosenWorkspace = null; // the workspace picked by hand for new rooms

export function initRooms({ select }) {
  onSelect = select;
  if (initialized) return;
  initialized = true;

  $('new-room-form').addEventListener('submit', createRoom);
  $('invite-button').addEventListener('click', createInvite);
  $('invite-copy').addEventListener('click', copyInvite);
  $('invite-close').addEventListener('click', hideInvite);
  $('invite-link').addEventListener('focus', (e) => e.target.select());
  $('join-form').addEventListener('submit', joinWithCode);
  $('new-room-workspace').addEventListener('change', (e) => {
    chosenWorkspace = e.target.value;
  });
  session.onChange(renderWorkspaceChoice);

  // A DM someone else started: it shows at once, and its messages arrive.
  socket.on('room_added', ({ room }) => {
    if (room?.id != null) addRoom(room);
  });
  attention.onChange((roomId) => {
    if (rooms.has(roomId)) renderBadge(roomId);
  });
}

export function setMe(user) {
  me = user;
}

export function getRoom(id) {
  return rooms.get(id) || null;
}

export function currentRoom() {
  return currentId ? rooms.get(currentId) : null;
}

/** Loads the room list from the server, joins each room, and renders. */
export async function loadRooms() {
  const list = await get('/api/rooms');
  attention.seed(Array.isArray(list) ? list : []);
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
  try {
    localStorage.setItem(LAST_ROOM_KEY, id);
  } catch {
    // not remembered; fine
  }
  hideInvite();
  render();
  updateTitle();
  renderWorkspaceChoice();
  // A DM is between its two people: nobody is invited to it.
  $('invite-button').disabled = room.kind === 'dm';
  onSelect(room);
}

export function reset() {
  rooms.clear();
  currentId = null;
  me = null;
  chosenWorkspace = null;
  hideInvite();
  $('new-room-name').value = '';
  $('join-code').value = '';
  showCreateError('');
  showJoinError('');
  render();
  updateTitle();
  renderWorkspaceChoice();
}

function render() {
  const list = $('room-list');
  const dmList = $('dm-list');
  list.replaceChildren();
  dmList.replaceChildren();
  let plain = 0;
  for (const room of rooms.values()) {
    const dm = room.kind === 'dm';
    const name = dm ? room.peer?.display_name || room.name : room.name;
    const ws = session.workspace(room.workspace_id);
    const badge = el('span', { class: 'unread-badge', dataset: { testid: 'unread-badge' }, 'aria-hidden': 'true' });
    const button = el(
      'button',
      {
        type: 'button',
        class: 'room-item',
        dataset: { testid: dm ? 'dm-item' : 'room-item', roomId: room.id, workspaceId: room.workspace_id },
        title: ws && session.workspaces().length > 1 ? `${name} — ${ws.name}` : null,
        'aria-current': room.id === currentId ? 'true' : null,
        onclick: () => selectRoom(room.id),
      },
      el('span', { class: 'room-hash', 'aria-hidden': 'true', text: dm ? '@' : '#' }),
      el('span', { class: 'room-name', text: name }),
      badge,
      el('span', { class: 'visually-hidden unread-spoken' }),
    );
    (dm ? dmList : list).append(el('li', null, button));
    if (!dm) plain++;
    fillBadge(badge, attention.get(room.id));
  }
  $('room-empty').hidden = plain > 0;
  $('dm-empty').hidden = rooms.size > plain;
  if (!currentId) $('invite-button').disabled = true;
}

function renderBadge(roomId) {
  const item = $('sidebar').querySelector(`[data-room-id="${CSS.escape(roomId)}"]`);
  const badge = item?.querySelector('.unread-badge');
  if (badge) fillBadge(badge, attention.get(roomId));
}

/** The unread count; with mentions of you (or replies to you) it reads `@` and stands out. */
function fillBadge(badge, { unread, mentions }) {
  const count = Math.max(unread, mentions);
  badge.textContent = `${mentions > 0 ? '@' : ''}${count > 99 ? '99+' : String(count)}`;
  badge.hidden = count === 0;
  badge.classList.toggle('has-mentions', mentions > 0);
  badge.dataset.unread = String(unread);
  badge.dataset.mentions = String(mentions);
  const spoken = badge.parentElement?.querySelector('.unread-spoken');
  if (spoken) {
    const parts = [];
    if (unread) parts.push(`${unread} unread`);
    if (mentions) parts.push(`${mentions} for you`);
    spoken.textContent = parts.length ? `, ${parts.join(', ')}` : '';
  }
}

function updateTitle() {
  const room = currentRoom();
  attention.setTitleBase(room ? `${room.name} · Mathia` : 'Mathia');
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
    const body = { name };
    const workspaceId = $('new-room-workspace').value;
    if (workspaceId && !$('new-room-workspace-field').hidden) body.workspace_id = workspaceId;
    const room = await post('/api/rooms', body);
    input.value = '';
    input.blur(); // the new room's composer takes the focus
    addRoom(room);
    selectRoom(room.id);
  } catch (err) {
    showCreateError(err.message);
  } finally {
    submit.disabled = false;
  }
}

function showCreateError(message) {
  const node = $('new-room-error');
  node.textContent = message;
  node.hidden = !message;
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

/** The workspace picker of "New room": shown when the user is in more than one workspace. */
function renderWorkspaceChoice() {
  const select = $('new-room-workspace');
  const list = session.workspaces();
  select.replaceChildren(
    ...list.map((w) => {
      const option = document.createElement('option');
      option.value = w.id;
      option.textContent = w.personal ? `${w.name} (personal)` : w.name;
      return option;
    }),
  );
  $('new-room-workspace-field').hidden = list.length < 2;
  const here = currentRoom()?.workspace_id;
  const preferred =
    (chosenWorkspace && list.some((w) => w.id === chosenWorkspace) && chosenWorkspace) ||
    (here != null && list.some((w) => w.id === here) && here) ||
    list.find((w) => !w.personal)?.id ||
    list[0]?.id ||
    '';
  select.value = preferred;
}

/** The code in an invite link (`…?invite=CODE`) or the code itself. */
export function inviteCodeFrom(text) {
  const value = String(text || '').trim();
  if (!value) return '';
  try {
    const url = new URL(value);
    const code = url.searchParams.get('invite');
    if (code) return code;
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts.length) return decodeURIComponent(parts[parts.length - 1]);
  } catch {
    // not a URL: the code itself
  }
  return value.replace(/^.*[?&]invite=/, '').replace(/&.*$/, '');
}

async function joinWithCode(event) {
  event.preventDefault();
  const input = $('join-code');
  const code = inviteCodeFrom(input.value);
  if (!code) {
    showJoinError('Paste an invite link or code.');
    input.focus();
    return;
  }
  showJoinError('');
  const button = $('join-submit');
  button.disabled = true;
  try {
    const room = await post(`/api/invites/${encodeURIComponent(code)}/accept`);
    input.value = '';
    input.blur(); // the room's composer takes the focus
    addRoom(room);
    session.refresh().catch(() => {}); // the room may be in a workspace new to us
    selectRoom(room.id);
  } catch (err) {
    showJoinError(
      err.code === 'invite_not_found'
        ? 'That invite does not exist. Check the link.'
        : err.code === 'invite_expired'
          ? 'That invite has expired. Ask for a new one.'
          : err.code === 'invite_used_up'
            ? 'That invite has been used up. Ask for a new one.'
            : err.message,
    );
    input.focus();
  } finally {
    button.disabled = false;
  }
}

function showJoinError(message) {
  const node = $('join-error');
  node.textContent = message;
  node.hidden = !message;
}
