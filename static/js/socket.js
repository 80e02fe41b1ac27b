// The one owner of the WebSocket.
//
// Layout: connection life cycle (ticket → connect → heartbeat → reconnect with backoff), the rooms
// the UI has joined (re-joined on every reconnect), and the outbox of `new_message` frames not yet
// acknowledged (re-sent after a reconnect with the same `client_msg_id`; the server dedupes).
//
// Subscribers use `on(type, fn)`: `type` is a server frame type (`new_message`, `ack`, …) or
// `connection` (`{state: 'connecting' | 'open' | 'closed', resumed, reason}` — `resumed` is true
// when an open follows an earlier one, i.e. events may have been missed; `reason` is the server's
// words when it refused this client a socket, e.g. open in too many tabs), or `*` for every
// server frame.
//
// `window.__mathiaSocket.close()` drops the current connection as a network failure would (the
// browser tests use it to check that reconnecting loses and doubles nothing).

import { get, post } from './api.js';

const PING_EVERY_MS = 25_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

const listeners = new Map();
const joinedRooms = new Set();
const subscribed = new Set(); // rooms this socket was answered `room_joined` for
const outbox = new Map(); // client_msg_id -> frame, in send order

let ws = null;
let running = false;
let state = 'closed';
let attempt = 0;
let reconnectTimer = null;
let pingTimer = null;
let awaitingPong = false;
let connectSerial = 0;
let everOpened = false;
let refusal = null; // why the server refused the last ticket, until a ticket is had

// Where the WebSocket is: `GET /api/config` says (API Gateway's own domain when deployed); null
// means `/ws` on this page's host (mathia-local). Asked once, and again after a failure.
let wsUrlPromise = null;

function socketUrl() {
  if (!wsUrlPromise) {
    wsUrlPromise = get('/api/config')
      .then((config) => {
        const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
        const url = typeof config?.ws_url === 'string' && config.ws_url ? config.ws_url : `${scheme}://${location.host}/ws`;
        const parsed = new URL(url, location.href);
        if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new Error(`not a WebSocket URL: ${url}`);
        return parsed.href;
      })
      .catch((err) => {
        wsUrlPromise = null;
        throw err;
      });
  }
  return wsUrlPromise;
}

export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
  return () => listeners.get(type)?.delete(fn);
}

function emit(type, payload) {
  for (const key of [type, '*']) {
    const set = listeners.get(key);
    if (!set) continue;
    for (const fn of [...set]) {
      try {
        fn(payload);
      } catch (err) {
        console.error(`socket listener for ${type} failed`, err);
      }
    }
  }
}

function setState(next) {
  if (state === next) return;
  state = next;
  emit('connection', { state, resumed: next === 'open' && everOpened, reason: next === 'open' ? null : refusal });
  if (next === 'open') everOpened = true;
}

export function connectionState() {
  return state;
}

/** Starts connecting (and keeps reconnecting) until `stop()`. */
export function start() {
  if (running) return;
  running = true;
  attempt = 0;
  window.addEventListener('online', reconnectNow);
  connect();
}

/** Closes the connection and forgets joined rooms and the outbox (used on sign-out). */
export function stop() {
  running = false;
  window.removeEventListener('online', reconnectNow);
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  teardown();
  joinedRooms.clear();
  outbox.clear();
  refusal = null;
  setState('closed');
  everOpened = false;
}

function reconnectNow() {
  if (!running || state === 'open') return;
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  attempt = 0;
  teardown();
  connect();
}

async function connect() {
  const serial = ++connectSerial;
  setState('connecting');
  let ticket;
  let base;
  try {
    base = await socketUrl();
    ({ ticket } = await post('/api/ws-ticket'));
    refusal = null;
  } catch (err) {
    if (serial !== connectSerial || !running) return;
    if (err.status === 401) {
      // api.js has already dropped the token and asked for sign-in.
      stop();
      return;
    }
    // Open in too many tabs or devices: the banner says so, and the next try waits as long as
    // the server asks rather than the usual backoff. Any other failure says nothing of the kind.
    refusal = err.status === 429 && err.code === 'too_many_sockets' ? err.message : null;
    scheduleReconnect(refusal ? (err.retryAfterS || 10) * 1000 : 0);
    return;
  }
  if (serial !== connectSerial || !running) return;

  let socket;
  try {
    const url = new URL(base);
    url.searchParams.set('ticket', ticket);
    socket = new WebSocket(url.href);
  } catch {
    scheduleReconnect();
    return;
  }
  ws = socket;

  socket.onopen = () => {
    if (ws !== socket) return;
    attempt = 0;
    // Join (again) first, then re-send what was never acknowledged; listeners of `connection`
    // (chat.js) then fetch what each room missed while we were away.
    for (const roomId of joinedRooms) rawSend({ action: 'join_room', room_id: roomId });
    for (const frame of outbox.values()) rawSend(frame);
    setState('open');
    startHeartbeat();
  };

  socket.onmessage = (event) => {
    if (ws !== socket) return;
    awaitingPong = false; // any frame proves the connection is alive
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    if (frame.type === 'room_joined') subscribed.add(frame.room_id);
    if (frame.type === 'ack') outbox.delete(frame.client_msg_id);
    if (frame.type === 'new_message' && frame.message?.client_msg_id) {
      outbox.delete(frame.message.client_msg_id);
    }
    if (frame.type === 'error' && frame.ref) outbox.delete(frame.ref);
    emit(frame.type, frame);
  };

  socket.onclose = () => {
    if (ws !== socket) return;
    teardown();
    if (running) scheduleReconnect();
  };

  socket.onerror = () => {
    // onclose follows and does the work.
  };
}

function teardown() {
  stopHeartbeat();
  subscribed.clear();
  if (ws) {
    const old = ws;
    ws = null;
    old.onopen = old.onmessage = old.onclose = old.onerror = null;
    try {
      old.close();
    } catch {
      // already closed
    }
  }
}

function scheduleReconnect(floorMs = 0) {
  setState('closed');
  clearTimeout(reconnectTimer);
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  const delay = Math.max(floorMs, ceiling / 2 + Math.random() * (ceiling / 2)); // "equal jitter"
  attempt = Math.min(attempt + 1, 16);
  reconnectTimer = setTimeout(() => {
    reconnectTimer = null;
    if (running) connect();
  }, delay);
}

function startHeartbeat() {
  stopHeartbeat();
  awaitingPong = false;
  pingTimer = setInterval(() => {
    if (awaitingPong) {
      // Nothing heard for a whole interval: the connection is dead even if the browser
      // has not noticed yet.
      teardown();
      if (running) scheduleReconnect();
      return;
    }
    awaitingPong = true;
    rawSend({ action: 'ping' });
  }, PING_EVERY_MS);
}

function stopHeartbeat() {
  clearInterval(pingTimer);
  pingTimer = null;
}

function rawSend(frame) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  try {
    ws.send(JSON.stringify(frame));
    return true;
  } catch {
    return false;
  }
}

/** Sends a frame now if connected; returns whether it went out. Not queued. */
export function send(frame) {
  return rawSend(frame);
}

/** Subscribes to a room; remembered so that every reconnect joins it again. */
export function joinRoom(roomId) {
  joinedRooms.add(roomId);
  rawSend({ action: 'join_room', room_id: roomId });
}

/**
 * Asks for a room again (after a refused join) if it is still wanted and this socket is not in it
 * yet (a reconnect meanwhile joins every room again); returns whether it asked.
 */
export function rejoinRoom(roomId) {
  if (!joinedRooms.has(roomId) || subscribed.has(roomId)) return false;
  rawSend({ action: 'join_room', room_id: roomId });
  return true;
}

export function leaveRoom(roomId) {
  joinedRooms.delete(roomId);
  subscribed.delete(roomId);
  rawSend({ action: 'leave_room', room_id: roomId });
}

/**
 * Queues a message in the outbox and sends it if connected. It stays in the outbox until the
 * server acks it (or answers an error naming it), and is re-sent after each reconnect.
 */
export function sendMessage(roomId, body, clientMsgId, { replyTo = null } = {}) {
  const frame = { action: 'new_message', room_id: roomId, body, client_msg_id: clientMsgId };
  if (replyTo != null) frame.reply_to = replyTo;
  outbox.set(clientMsgId, frame);
  rawSend(frame);
  return clientMsgId;
}

/** Drops a message from the outbox (the user discarded it). */
export function forgetMessage(clientMsgId) {
  outbox.delete(clientMsgId);
}

/** Typing goes only to a room this socket is in (the server refuses it elsewhere). */
export function sendTyping(roomId, typing) {
  if (!subscribed.has(roomId)) return false;
  return rawSend({ action: 'typing', room_id: roomId, typing });
}

// Test hook: drop the connection the way a network failure would; the usual reconnect follows.
window.__mathiaSocket = {
  close() {
    if (!ws) return;
    teardown();
    if (running) scheduleReconnect();
  },
  get state() {
    return state;
  },
};
