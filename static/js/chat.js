// Chat pane: the message list of the current room, the composer, typing and presence.
//
// Layout: per-room state fed by socket events (`room_joined`, `new_message`, `ack`, `typing`,
// `presence_update`, `error`), then rendering (messages reconciled by key so nodes are reused),
// then the composer (sending, pending/failed messages, typing signals, rate-limit countdown).
//
// User data is always rendered with textContent, never as HTML.

import { get } from './api.js';
import * as socket from './socket.js';

const $ = (id) => document.getElementById(id);

const BODY_MAX = 4000;
const HISTORY_PAGE = 50;
const TYPING_SEND_EVERY_MS = 2000;
const TYPING_IDLE_MS = 3000;
const TYPING_SHOW_MS = 5000;
const NEAR_BOTTOM_PX = 80;

const ERROR_TEXT = {
  rate_limited: 'You are sending messages too quickly. Please wait a moment.',
  not_member: 'You are not a member of this room any more.',
  muted: 'You are muted in this room for now.',
  too_large: 'That message is too long.',
  insufficient_funds: 'The workspace wallet is empty, so Mathia cannot reply.',
  internal: 'Something went wrong on our side. Please try again.',
};

/** roomId -> {messages, pending, online, typing, hasMore, loaded, loadingOlder, draft} */
const rooms = new Map();
/** client_msg_id -> roomId, for acks and errors that do not name the room */
const pendingRoom = new Map();
/** key -> element of the current room's rendered messages */
const nodes = new Map();

let me = null;
let current = null;
let initialized = false;

let typingRoom = null;
let lastTypingSentAt = 0;
let typingIdleTimer = null;

let rateLimitUntil = 0;
let rateLimitTimer = null;
let connectionTimer = null;
let everConnected = false;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

export function initChat() {
  if (initialized) return;
  initialized = true;

  socket.on('room_joined', onRoomJoined);
  socket.on('new_message', onNewMessage);
  socket.on('ack', onAck);
  socket.on('typing', onTyping);
  socket.on('presence_update', onPresence);
  socket.on('error', onSocketError);
  socket.on('connection', onConnection);

  const composer = $('composer');
  composer.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendCurrent();
    }
  });
  composer.addEventListener('input', () => {
    autosize();
    updateCounter();
    onComposerInput();
  });
  $('composer-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sendCurrent();
  });
  $('load-older').addEventListener('click', loadOlder);
  window.addEventListener('beforeunload', stopTyping);
}

export function setMe(user) {
  me = user;
}

/** Shows a room in the pane (the socket is already joined via rooms.js; join again to refresh). */
export function showRoom(room) {
  if (current && current.id !== room.id) {
    stopTyping();
    state(current.id).draft = $('composer').value;
  }
  const switching = !current || current.id !== room.id;
  current = room;
  const st = state(room.id);

  $('room-title').textContent = room.name;
  $('chat-view').hidden = false;
  $('no-room').hidden = true;
  $('composer').placeholder = `Message #${room.name}`;
  $('composer').disabled = false;
  if (switching) {
    $('composer').value = st.draft || '';
    autosize();
    updateCounter();
    clearComposerError();
    $('message-list').replaceChildren();
    nodes.clear();
  }
  socket.joinRoom(room.id);
  renderAll({ scroll: 'bottom' });
  if (window.matchMedia('(min-width: 769px)').matches) $('composer').focus();
}

export function showNoRoom() {
  current = null;
  $('room-title').textContent = 'No room yet';
  $('chat-view').hidden = true;
  $('no-room').hidden = false;
  $('online-list').replaceChildren();
  $('typing-indicator').textContent = '';
}

export function reset() {
  stopTyping();
  for (const st of rooms.values()) for (const t of st.typing.values()) clearTimeout(t.timer);
  rooms.clear();
  pendingRoom.clear();
  nodes.clear();
  current = null;
  me = null;
  everConnected = false;
  clearTimeout(connectionTimer);
  clearInterval(rateLimitTimer);
  rateLimitUntil = 0;
  $('message-list').replaceChildren();
  $('composer').value = '';
  $('connection-status').hidden = true;
  clearComposerError();
  showNoRoom();
}

function state(roomId) {
  let st = rooms.get(roomId);
  if (!st) {
    st = {
      messages: new Map(),
      pending: new Map(),
      online: new Map(),
      typing: new Map(),
      hasMore: false,
      loaded: false,
      loadingOlder: false,
      draft: '',
    };
    rooms.set(roomId, st);
  }
  return st;
}

// ---- socket events -------------------------------------------------------------------------

function onRoomJoined({ room_id: roomId, messages = [], online = [] }) {
  const st = state(roomId);
  const incoming = Array.isArray(messages) ? messages : [];
  if (st.messages.size > 0 && incoming.length > 0) {
    const knownMax = Math.max(...[...st.messages.values()].map((m) => m.seq));
    const incomingMin = Math.min(...incoming.map((m) => m.seq));
    if (incomingMin > knownMax + 1) {
      // We missed more than the server replays: start again from the latest page;
      // older messages stay reachable through "load older".
      st.messages.clear();
      st.hasMore = true;
    }
  } else if (st.messages.size === 0) {
    st.hasMore = incoming.length >= HISTORY_PAGE;
  }
  for (const m of incoming) storeMessage(st, m);
  st.loaded = true;

  st.online = new Map();
  for (const person of Array.isArray(online) ? online : []) {
    st.online.set(person.user_id, person.display_name);
  }
  if (current?.id === roomId) renderAll();
}

function onNewMessage({ room_id: roomId, message }) {
  if (!message) return;
  const st = state(roomId || message.room_id);
  const stick = isCurrent(roomId) && isNearBottom();
  storeMessage(st, message);
  if (message.author && st.typing.has(message.author.id)) {
    clearTimeout(st.typing.get(message.author.id).timer);
    st.typing.delete(message.author.id);
  }
  if (!isCurrent(roomId)) return;
  const mine = message.author && me && message.author.id === me.id;
  renderMessages();
  renderTyping();
  if (stick || mine) scrollToBottom();
}

function onAck({ client_msg_id: cmid, message_id: messageId }) {
  const roomId = pendingRoom.get(cmid);
  if (!roomId) return;
  const st = state(roomId);
  const p = st.pending.get(cmid);
  if (!p) return;
  if (st.messages.has(messageId)) {
    dropPending(st, cmid);
  } else {
    p.status = 'sent';
    p.messageId = messageId;
  }
  if (isCurrent(roomId)) renderMessages();
}

function onTyping({ room_id: roomId, user_id: userId, display_name: name, typing }) {
  if (me && userId === me.id) return;
  const st = state(roomId);
  const prev = st.typing.get(userId);
  if (prev) clearTimeout(prev.timer);
  if (typing) {
    const timer = setTimeout(() => {
      st.typing.delete(userId);
      if (isCurrent(roomId)) renderTyping();
    }, TYPING_SHOW_MS);
    st.typing.set(userId, { name, timer });
  } else {
    st.typing.delete(userId);
  }
  if (isCurrent(roomId)) renderTyping();
}

function onPresence({ room_id: roomId, user_id: userId, display_name: name, status }) {
  const st = state(roomId);
  if (status === 'online') st.online.set(userId, name);
  else if (status === 'offline') st.online.delete(userId);
  if (isCurrent(roomId)) renderOnline();
}

function onSocketError({ code, message, ref, retry_after_ms: retryAfterMs }) {
  if (ref && pendingRoom.has(ref)) {
    const roomId = pendingRoom.get(ref);
    const st = state(roomId);
    const p = st.pending.get(ref);
    if (p) {
      p.status = 'failed';
      p.error = code === 'rate_limited' ? 'Not sent: too many messages.' : `Not sent: ${friendly(code, message)}`;
      if (isCurrent(roomId)) renderMessages();
    }
  }
  if (code === 'rate_limited' && retryAfterMs > 0) {
    startRateLimit(retryAfterMs);
  } else {
    showComposerError(friendly(code, message));
  }
}

function onConnection({ state: connection }) {
  const banner = $('connection-status');
  clearTimeout(connectionTimer);
  if (connection === 'open') {
    everConnected = true;
    banner.hidden = true;
    return;
  }
  // Wait a moment so a quick reconnect does not flash a banner.
  connectionTimer = setTimeout(() => {
    banner.textContent = everConnected ? 'Connection lost. Reconnecting…' : 'Connecting…';
    banner.hidden = false;
  }, 1000);
}

function friendly(code, message) {
  return ERROR_TEXT[code] || message || 'Something went wrong.';
}

function storeMessage(st, message) {
  if (!message || message.id == null) return;
  st.messages.set(message.id, message);
  if (message.client_msg_id && st.pending.has(message.client_msg_id)) {
    dropPending(st, message.client_msg_id);
  }
}

function dropPending(st, cmid) {
  st.pending.delete(cmid);
  pendingRoom.delete(cmid);
}

function isCurrent(roomId) {
  return current !== null && current.id === roomId;
}

// ---- rendering -----------------------------------------------------------------------------

function renderAll({ scroll } = {}) {
  renderMessages();
  renderOnline();
  renderTyping();
  if (scroll === 'bottom') scrollToBottom();
}

function orderedItems(st) {
  const messages = [...st.messages.values()].sort((a, b) => a.seq - b.seq || cmp(a.id, b.id));
  const pending = [...st.pending.values()].sort((a, b) => a.createdAt - b.createdAt);
  return [
    ...messages.map((m) => ({ key: `m:${m.id}`, build: () => buildMessage(m) })),
    ...pending.map((p) => ({ key: `p:${p.client_msg_id}:${p.status}`, build: () => buildPending(p) })),
  ];
}

function cmp(a, b) {
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function renderMessages() {
  const list = $('message-list');
  const st = current ? state(current.id) : null;
  const items = st ? orderedItems(st) : [];
  const seen = new Set();
  let cursor = list.firstChild;
  for (const item of items) {
    seen.add(item.key);
    let el = nodes.get(item.key);
    if (!el) {
      el = item.build();
      nodes.set(item.key, el);
    }
    if (el === cursor) {
      cursor = cursor.nextSibling;
    } else {
      list.insertBefore(el, cursor);
    }
  }
  for (const [key, el] of nodes) {
    if (!seen.has(key)) {
      el.remove();
      nodes.delete(key);
    }
  }

  const olderButton = $('load-older');
  olderButton.hidden = !(st && st.hasMore && st.messages.size > 0);
  olderButton.disabled = Boolean(st?.loadingOlder);
  olderButton.textContent = st?.loadingOlder ? 'Loading…' : 'Load older messages';

  const empty = $('messages-empty');
  if (!st || !st.loaded) {
    empty.textContent = 'Loading messages…';
    empty.hidden = items.length > 0;
  } else {
    empty.textContent = 'No messages yet. Say hello!';
    empty.hidden = items.length > 0;
  }
}

function buildMessage(m) {
  const mine = Boolean(m.author && me && m.author.id === me.id);
  const el = document.createElement('article');
  el.className = `message kind-${m.kind}${mine ? ' mine' : ''}`;
  el.dataset.testid = 'message';
  el.dataset.seq = String(m.seq);
  el.dataset.id = String(m.id);
  el.dataset.kind = m.kind;
  if (m.client_msg_id) el.dataset.clientMsgId = m.client_msg_id;

  if (m.kind === 'system') {
    el.append(body(m.body));
    const time = timeEl(m.created_at);
    if (time) el.append(time);
    return el;
  }

  const authorName = m.author?.display_name || (m.kind === 'ai' ? 'Mathia' : 'Unknown');
  el.append(avatar(authorName, m.author?.id || m.kind));
  const main = document.createElement('div');
  main.className = 'message-main';
  const meta = document.createElement('div');
  meta.className = 'message-meta';
  const author = document.createElement('span');
  author.className = 'message-author';
  author.dataset.testid = 'message-author';
  author.textContent = authorName;
  meta.append(author);
  if (m.kind === 'ai') {
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = 'AI';
    meta.append(tag);
  }
  const time = timeEl(m.created_at);
  if (time) meta.append(time);
  main.append(meta, body(m.body));
  el.append(main);
  return el;
}

function buildPending(p) {
  const name = me?.display_name || 'You';
  const el = document.createElement('article');
  el.className = `message kind-user mine ${p.status === 'failed' ? 'failed' : 'pending'}`;
  el.dataset.testid = 'message';
  el.dataset.kind = 'user';
  el.dataset.status = p.status;
  el.dataset.clientMsgId = p.client_msg_id;

  el.append(avatar(name, me?.id || 'me'));
  const main = document.createElement('div');
  main.className = 'message-main';
  const meta = document.createElement('div');
  meta.className = 'message-meta';
  const author = document.createElement('span');
  author.className = 'message-author';
  author.dataset.testid = 'message-author';
  author.textContent = name;
  const status = document.createElement('span');
  status.className = 'message-status';
  status.textContent = p.status === 'failed' ? p.error || 'Not sent.' : p.status === 'sent' ? 'Sent' : 'Sending…';
  meta.append(author, status);
  main.append(meta, body(p.body));

  if (p.status === 'failed') {
    const actions = document.createElement('div');
    actions.className = 'message-actions';
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'link-button';
    retry.textContent = 'Retry';
    retry.addEventListener('click', () => retryPending(p.client_msg_id));
    const discard = document.createElement('button');
    discard.type = 'button';
    discard.className = 'link-button';
    discard.textContent = 'Discard';
    discard.addEventListener('click', () => discardPending(p.client_msg_id));
    actions.append(retry, discard);
    main.append(actions);
  }
  el.append(main);
  return el;
}

function body(text) {
  const el = document.createElement('div');
  el.className = 'message-body';
  el.dataset.testid = 'message-body';
  el.textContent = text ?? '';
  return el;
}

function avatar(name, seed) {
  const el = document.createElement('span');
  el.className = 'avatar';
  el.setAttribute('aria-hidden', 'true');
  el.textContent = ([...name.trim()][0] || '?').toUpperCase();
  el.style.setProperty('--avatar-hue', String(hue(String(seed))));
  return el;
}

function hue(seed) {
  let h = 0;
  for (const ch of seed) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function timeEl(iso) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return null;
  const el = document.createElement('time');
  el.className = 'message-time';
  el.dateTime = date.toISOString();
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  el.textContent = sameDay ? timeFormat.format(date) : dateTimeFormat.format(date);
  el.title = fullFormat.format(date);
  return el;
}

function renderOnline() {
  const list = $('online-list');
  list.replaceChildren();
  if (!current) return;
  const st = state(current.id);
  const people = [...st.online.entries()].sort((a, b) => String(a[1]).localeCompare(String(b[1])));
  for (const [userId, name] of people) {
    const li = document.createElement('li');
    li.className = 'online-user';
    li.dataset.testid = 'online-user';
    li.dataset.userId = userId;
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.setAttribute('aria-hidden', 'true');
    const label = document.createElement('span');
    label.textContent = me && userId === me.id ? `${name} (you)` : name;
    li.append(dot, label);
    list.append(li);
  }
  $('online-count').textContent = people.length ? `${people.length} online` : '';
}

function renderTyping() {
  const el = $('typing-indicator');
  if (!current) {
    el.textContent = '';
    return;
  }
  const names = [...state(current.id).typing.values()].map((t) => t.name);
  if (names.length === 0) el.textContent = '';
  else if (names.length === 1) el.textContent = `${names[0]} is typing…`;
  else if (names.length === 2) el.textContent = `${names[0]} and ${names[1]} are typing…`;
  else el.textContent = 'Several people are typing…';
}

function scroller() {
  return $('message-scroller');
}

function isNearBottom() {
  const s = scroller();
  return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  const s = scroller();
  s.scrollTop = s.scrollHeight;
}

// ---- history -------------------------------------------------------------------------------

async function loadOlder() {
  if (!current) return;
  const roomId = current.id;
  const st = state(roomId);
  if (st.loadingOlder) return;
  const oldest = [...st.messages.values()].sort((a, b) => a.seq - b.seq)[0];
  if (!oldest) return;

  st.loadingOlder = true;
  renderMessages();
  try {
    const path =
      `/api/rooms/${encodeURIComponent(roomId)}/messages` +
      `?before=${encodeURIComponent(oldest.id)}&limit=${HISTORY_PAGE}`;
    const page = await get(path);
    const older = Array.isArray(page?.messages) ? page.messages : [];
    for (const m of older) storeMessage(st, m);
    st.hasMore = page?.next_before != null && older.length > 0;
  } catch (err) {
    if (isCurrent(roomId)) showComposerError(err.message);
  } finally {
    st.loadingOlder = false;
  }
  if (!isCurrent(roomId)) return;
  // Keep the messages the reader was looking at in place while older ones appear above.
  const s = scroller();
  const fromBottom = s.scrollHeight - s.scrollTop;
  renderMessages();
  s.scrollTop = s.scrollHeight - fromBottom;
  if ($('load-older').hidden) $('message-list').focus();
}

// ---- composer ------------------------------------------------------------------------------

function newClientMsgId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // randomUUID exists only in secure contexts; plain-http LAN access still needs ids.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function sendCurrent() {
  if (!current) return;
  const composer = $('composer');
  const text = composer.value.trim();
  const length = [...text].length;
  if (length === 0) {
    composer.focus();
    return;
  }
  if (length > BODY_MAX) {
    showComposerError(`Messages are at most ${BODY_MAX.toLocaleString()} characters (this one has ${length.toLocaleString()}).`);
    return;
  }
  if (Date.now() < rateLimitUntil) return;

  const roomId = current.id;
  const st = state(roomId);
  const cmid = newClientMsgId();
  st.pending.set(cmid, { client_msg_id: cmid, body: text, status: 'pending', createdAt: Date.now() });
  pendingRoom.set(cmid, roomId);
  socket.sendMessage(roomId, text, cmid);

  composer.value = '';
  st.draft = '';
  autosize();
  updateCounter();
  stopTyping();
  clearComposerError();
  renderMessages();
  scrollToBottom();
  composer.focus();
}

function retryPending(cmid) {
  const roomId = pendingRoom.get(cmid);
  if (!roomId) return;
  if (Date.now() < rateLimitUntil) return;
  const p = state(roomId).pending.get(cmid);
  if (!p) return;
  p.status = 'pending';
  p.error = null;
  socket.sendMessage(roomId, p.body, cmid);
  clearComposerError();
  if (isCurrent(roomId)) renderMessages();
}

function discardPending(cmid) {
  const roomId = pendingRoom.get(cmid);
  if (!roomId) return;
  socket.forgetMessage(cmid);
  dropPending(state(roomId), cmid);
  if (isCurrent(roomId)) renderMessages();
  $('composer').focus();
}

function onComposerInput() {
  if (!current) return;
  if ($('composer').value.trim() === '') {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (typingRoom !== current.id || now - lastTypingSentAt >= TYPING_SEND_EVERY_MS) {
    if (typingRoom && typingRoom !== current.id) stopTyping();
    socket.sendTyping(current.id, true);
    typingRoom = current.id;
    lastTypingSentAt = now;
  }
  clearTimeout(typingIdleTimer);
  typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(typingIdleTimer);
  typingIdleTimer = null;
  if (typingRoom) {
    socket.sendTyping(typingRoom, false);
    typingRoom = null;
    lastTypingSentAt = 0;
  }
}

function autosize() {
  const composer = $('composer');
  composer.style.height = 'auto';
  composer.style.height = `${Math.min(composer.scrollHeight, 200)}px`;
}

function updateCounter() {
  const length = [...$('composer').value.trim()].length;
  const counter = $('composer-counter');
  if (length > BODY_MAX - 500) {
    counter.textContent = `${length.toLocaleString()} / ${BODY_MAX.toLocaleString()}`;
    counter.classList.toggle('over', length > BODY_MAX);
    counter.hidden = false;
  } else {
    counter.hidden = true;
  }
}

function showComposerError(message) {
  const el = $('composer-error');
  if (el.textContent !== message) el.textContent = message; // unchanged text is not re-announced
  el.hidden = !message;
}

function clearComposerError() {
  if (Date.now() < rateLimitUntil) return; // the countdown owns the line until it ends
  showComposerError('');
}

function startRateLimit(ms) {
  rateLimitUntil = Date.now() + ms;
  clearInterval(rateLimitTimer);
  const send = $('send-button');
  const tick = () => {
    const left = Math.ceil((rateLimitUntil - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(rateLimitTimer);
      rateLimitTimer = null;
      rateLimitUntil = 0;
      send.disabled = false;
      showComposerError('');
      return;
    }
    send.disabled = true;
    showComposerError(`You are sending messages too quickly. You can send again in ${left} s.`);
  };
  tick();
  rateLimitTimer = setInterval(tick, 250);
}
