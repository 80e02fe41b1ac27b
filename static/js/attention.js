// Attention: where the signed-in person stands in each room — the last `seq` they read, how many
// messages came after it, and how many of those mention them (or `@room`) or reply to them. The
// server's numbers (`GET /api/rooms`, `room_joined`, `read_marker`) are the truth; `new_message`
// and `ai_stream_end` count up in between. Also the document title's count of unread mentions and
// replies, `(3) Mathia`, and browser notifications for mentions, replies and reminders while the
// tab is hidden (permission is asked only from a click: `askPermission`).

import * as socket from './socket.js';

const standing = new Map(); // roomId -> {lastReadSeq, unread, mentions, seenSeq}
// roomId -> what each recent `new_message` added to the counts: [{seq, unread, mentions}]. The
// counts of `GET /api/rooms`, `room_joined` and `read_marker` cover the messages up to a `seq`
// (`counted_to_seq`, or the page's newest), and a message stored just after can arrive before
// them: its share is added back, not lost (nor counted twice when it arrives after).
const arrivals = new Map();
const ARRIVALS_KEPT = 200;
const listeners = new Set();
let me = null;
let initialized = false;
let titleBase = 'Mathia';
let describe = () => ({ room: null, text: (m) => m?.body || '' });

/**
 * `describe(roomId)` answers `{room, text(message)}`: the room's name and a message's body as
 * plain text (mentions as names), for notifications.
 */
export function initAttention(options = {}) {
  if (options.describe) describe = options.describe;
  if (initialized) return;
  initialized = true;
  socket.on('room_joined', ({ room_id: roomId, messages = [], last_read_seq: seq, unread_count: unread, mention_count: mentions }) => {
    if (seq == null) return;
    // The counts cover up to the page's newest message.
    const top = Math.max(0, ...(Array.isArray(messages) ? messages.map((m) => m.seq ?? 0) : []));
    counted(roomId, { lastReadSeq: seq, unread: unread ?? 0, mentions: mentions ?? 0, countedTo: top });
  });
  socket.on('read_marker', ({ room_id: roomId, seq, unread_count: unread, mention_count: mentions, counted_to_seq: to }) => {
    const known = standing.get(roomId);
    if (known && seq < known.lastReadSeq) return; // an older answer overtaken by our own mark
    counted(roomId, { lastReadSeq: seq, unread, mentions, countedTo: to });
  });
  socket.on('new_message', ({ room_id: roomId, message }) => arrived(roomId || message?.room_id, message));
  socket.on('ai_stream_end', ({ room_id: roomId, message }) => arrived(roomId || message?.room_id, message));
  socket.on('reminder', ({ reminder }) => {
    if (reminder) notify('⏰ Reminder', reminder.text || 'Reminder', `reminder:${reminder.id}`);
  });
}

export function setMe(user) {
  me = user;
}

/** The rooms as `GET /api/rooms` lists them, with their counts. */
export function seed(rooms) {
  for (const r of rooms) {
    if (r.last_read_seq == null) continue;
    counted(r.id, {
      lastReadSeq: r.last_read_seq,
      unread: r.unread_count ?? 0,
      mentions: r.mention_count ?? 0,
      countedTo: r.counted_to_seq ?? 0,
    });
  }
}

/** `{lastReadSeq, unread, mentions}` of a room (zeros while unknown). */
export function get(roomId) {
  return standing.get(roomId) || { lastReadSeq: 0, unread: 0, mentions: 0, seenSeq: 0 };
}

export function known(roomId) {
  return standing.has(roomId);
}

/** Calls `fn(roomId)` whenever a room's numbers change. */
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Whether a message is for the signed-in person: it mentions them or `@room`, or replies to them. */
export function isForMe(message) {
  if (!message || !me || message.author?.id === me.id) return false;
  if (Array.isArray(message.mentions) && message.mentions.includes(me.id)) return true;
  if (message.mentions_room) return true;
  return message.reply_to?.author?.id === me.id;
}

/** Marks the room read up to `seq` (only forward): tells the server, and counts zero meanwhile. */
export function markRead(roomId, seq) {
  const s = get(roomId);
  if (!(seq > s.lastReadSeq)) return false;
  if (!socket.send({ action: 'mark_read', room_id: roomId, seq })) return false;
  arrivals.set(roomId, (arrivals.get(roomId) || []).filter((a) => a.seq > seq));
  set(roomId, { lastReadSeq: seq, unread: 0, mentions: 0, seenSeq: Math.max(seq, s.seenSeq) });
  return true;
}

/** The title's base (`general · Mathia`); the count of unread mentions goes in front. */
export function setTitleBase(base) {
  titleBase = base || 'Mathia';
  renderTitle();
}

export function totalMentions() {
  let total = 0;
  for (const s of standing.values()) total += s.mentions;
  return total;
}

export function reset() {
  standing.clear();
  arrivals.clear();
  me = null;
  titleBase = 'Mathia';
  renderTitle();
}

// ---- notifications ----------------------------------------------------------------------------

export function notificationsSupported() {
  return 'Notification' in window;
}

/** `granted`, `denied`, `default`, or `unsupported`. */
export function permission() {
  return notificationsSupported() ? Notification.permission : 'unsupported';
}

/** Asks for permission; call it only from a click. */
export async function askPermission() {
  if (!notificationsSupported()) return 'unsupported';
  try {
    return await Notification.requestPermission();
  } catch {
    return Notification.permission;
  }
}

function notify(title, body, tag) {
  if (permission() !== 'granted' || document.visibilityState !== 'hidden') return;
  try {
    const n = new Notification(title, { body: String(body).slice(0, 180), tag });
    n.onclick = () => {
      window.focus();
      n.close();
    };
  } catch {
    // some browsers only allow notifications from a service worker; nothing to do
  }
}

// ---- internals --------------------------------------------------------------------------------

function arrived(roomId, message) {
  if (!roomId || !message || message.seq == null) return;
  const s = get(roomId);
  if (!standing.has(roomId) || message.seq <= Math.max(s.lastReadSeq, s.seenSeq)) {
    if (standing.has(roomId)) s.seenSeq = Math.max(s.seenSeq, message.seq);
    return;
  }
  const mine = Boolean(me && message.author?.id === me.id);
  const forMe = isForMe(message);
  const added = { seq: message.seq, unread: mine || message.deleted ? 0 : 1, mentions: forMe ? 1 : 0 };
  const kept = arrivals.get(roomId) || [];
  kept.push(added);
  if (kept.length > ARRIVALS_KEPT) kept.splice(0, kept.length - ARRIVALS_KEPT);
  arrivals.set(roomId, kept);
  set(roomId, {
    lastReadSeq: s.lastReadSeq,
    unread: s.unread + added.unread,
    mentions: s.mentions + added.mentions,
    seenSeq: message.seq,
  });
  if (forMe) {
    const { room, text } = describe(roomId);
    const who = message.kind === 'ai' ? 'Mathia' : message.author?.display_name || 'Someone';
    const replied = message.reply_to?.author?.id === me?.id && !message.mentions?.includes(me?.id);
    const title = `${who} ${replied ? 'replied to you' : 'mentioned you'}${room ? ` in #${room}` : ''}`;
    notify(title, text(message), `message:${message.id}`);
  }
}

/**
 * The server's counts, which cover the messages up to `countedTo`: those after it that reached
 * us first (`new_message` can overtake the event that carries the counts) are added back.
 */
function counted(roomId, { lastReadSeq, unread, mentions, countedTo }) {
  const upTo = Math.max(countedTo ?? 0, lastReadSeq);
  const later = (arrivals.get(roomId) || []).filter((a) => a.seq > upTo);
  arrivals.set(roomId, later);
  set(roomId, {
    lastReadSeq,
    unread: unread + later.reduce((n, a) => n + a.unread, 0),
    mentions: mentions + later.reduce((n, a) => n + a.mentions, 0),
    seenSeq: Math.max(upTo, ...later.map((a) => a.seq)),
  });
}

function set(roomId, next) {
  standing.set(roomId, next);
  renderTitle();
  for (const fn of listeners) fn(roomId);
}

function renderTitle() {
  const n = totalMentions();
  document.title = n > 0 ? `(${n}) ${titleBase}` : titleBase;
}
