// Chat pane: the message list of the current room, the composer, typing and presence, AI replies.
//
// Layout:
//   1. per-room state fed by socket events (`room_joined`, `new_message`, `ack`, `typing`,
//      `presence_update`, `message_edited`, `message_deleted`, `reaction`, `moderation`, `error`);
//   2. resume: after a reconnect (and whenever `seq` shows a gap) each room fetches what it missed
//      with `GET …/messages?after=<last seen id>` until `next_after` is null; everything merges
//      by message id, so nothing is lost or shown twice;
//   3. AI streams: `ai_stream_start` adds a placeholder with Stop, chunks are applied in `seq`
//      order (early ones wait in a buffer) and typed out frame by frame, `ai_stream_end` swaps in
//      the stored message;
//   4. rendering: items reconciled by key so unchanged nodes are reused; a message's key carries a
//      revision, so an edit, delete or reaction rebuilds just that node;
//   5. message actions: reply, react, edit, delete;
//   6. the composer: sending, pending/failed messages, typing, the reply banner and the inline
//      notice (rate-limit countdown, mute, out of credits, unfinished onboarding);
//   7. files: the attach button, dropping files on the room and pasting them, the upload rows
//      above the composer (progress, cancel), then `file_message` as a pending message. The
//      upload itself, the checks and the attachment DOM are in files.js.
//
// Bodies are markdown rendered by markdown.js into sanitised DOM; everything else is textContent.

import { get, newId } from './api.js';
import * as socket from './socket.js';
import * as session from './session.js';
import { renderMarkdown } from './markdown.js';
import { icon } from './icons.js';
import { toast } from './toast.js';
import { ACCEPT, attachmentEl, checkFile, fileBadge, formatSize, pendingAttachmentEl, uploadFile } from './files.js';

const $ = (id) => document.getElementById(id);

const BODY_MAX = 4000;
const HISTORY_PAGE = 50;
const CATCHUP_PAGE = 100;
const CATCHUP_MAX_PAGES = 100;
const TYPING_SEND_EVERY_MS = 2000;
const TYPING_IDLE_MS = 3000;
const TYPING_SHOW_MS = 5000;
const NEAR_BOTTOM_PX = 80;
const EDIT_TIMEOUT_MS = 10_000;
const STREAM_STALE_MS = 20_000; // on reconnect: a stream silent this long is given up
const STREAM_IDLE_MS = 60_000; // any time: a stream silent this long lost its end; drop it
const EXCERPT_MAX = 140;
const REACTIONS = ['👍', '❤️', '😂', '🎉', '👀', '✅'];
const FILES_AT_ONCE = 10;

const ERROR_TEXT = {
  rate_limited: 'You are sending messages too quickly. Please wait a moment.',
  not_member: 'You are not a member of this room any more.',
  muted: 'You are muted in this room for now.',
  too_large: 'That message is too long.',
  insufficient_funds: 'The workspace is out of credits — top up in Settings → Wallet.',
  onboarding_incomplete: 'Finish setting up your account before chatting.',
  forbidden: 'You can only change your own messages.',
  not_found: 'That message no longer exists.',
  unavailable: 'Mathia is having trouble right now. Please try again.',
  internal: 'Something went wrong on our side. Please try again.',
};

/** roomId -> room state (see `state`) */
const rooms = new Map();
/** client_msg_id -> roomId, for acks and errors that do not name the room */
const pendingRoom = new Map();
/** key -> element of the current room's rendered items */
const nodes = new Map();
/** message id -> [revision, signature]: the revision goes up when what is shown changes */
const revisions = new Map();
/** stream ids that have ended (late chunks for them are ignored) */
const endedStreams = new Set();

let me = null;
let current = null;
let initialized = false;
let hooks = { openWallet: () => {}, finishOnboarding: () => {} };

let editing = null; // {roomId, id, draft, saving, timer}
let confirming = null; // id of the message whose delete is being confirmed
let picker = null; // id of the message whose emoji picker is open
let activeMessageId = null; // the message that takes Tab focus in the list (roving tabindex)

let typingRoom = null;
let lastTypingSentAt = 0;
let typingIdleTimer = null;

let notice = null; // {text, actionLabel, action}
let rateLimitUntil = 0;
let rateLimitTimer = null;
let connectionTimer = null;
let everConnected = false;
let animFrame = null;
let pinned = true; // the list was scrolled to the bottom when last scrolled (thumbnails keep it there)

/** upload id -> {id, roomId, file, caption, progress, handle, el} */
const uploads = new Map();
let dragDepth = 0;

const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
export function initChat(options = {}) {
  hooks = { ...hooks, ...options };
  if (initialized) return;
  initialized = true;

  socket.on('room_joined', onRoomJoined);
  socket.on('new_message', onNewMessage);
  socket.on('ack', onAck);
  socket.on('typing', onTyping);
  socket.on('presence_update', onPresence);
  socket.on('message_edited', onMessageEdited);
  socket.on('message_deleted', onMessageDeleted);
  socket.on('reaction', onReaction);
  socket.on('ai_stream_start', onStreamStart);
  socket.on('ai_stream_chunk', onStreamChunk);
  socket.on('ai_stream_end', onStreamEnd);
  socket.on('moderation', onModeration);
  socket.on('error', onSocketError);
  socket.on('connection', onConnection);

  const composer = $('composer');
  composer.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendCurrent();
    } else if (event.key === 'Escape' && current && state(current.id).replyTo) {
      event.preventDefault();
      event.stopPropagation();
      setReply(null);
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
  $('composer-error-action').addEventListener('click', () => notice?.action?.());
  $('reply-cancel').addEventListener('click', () => {
    setReply(null);
    $('composer').focus();
  });
  $('load-older').addEventListener('click', loadOlder);
  scroller().addEventListener('scroll', () => {
    pinned = isNearBottom();
  }, { passive: true });
  initFiles();
  const list = $('message-list');
  list.addEventListener('focusin', (event) => {
    const article = event.target.closest?.('.message[data-id]');
    if (article) setActiveMessage(article.dataset.id);
  });
  list.addEventListener('keydown', onListKeydown);
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) revealAllStreams();
  });
  setInterval(sweepIdleStreams, 10_000);
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
  if (switching) {
    $('composer').value = st.draft || '';
    autosize();
    updateCounter();
    notice = null;
    editing = null;
    confirming = null;
    picker = null;
    activeMessageId = null;
    $('message-list').replaceChildren();
    nodes.clear();
  }
  socket.joinRoom(room.id);
  applyComposerState();
  renderReplyBanner();
  renderUploads();
  renderAll({ scroll: 'bottom' });
  if (window.matchMedia('(min-width: 769px)').matches && !$('composer').disabled) $('composer').focus();
}

export function showNoRoom() {
  current = null;
  $('room-title').textContent = 'No room yet';
  $('chat-view').hidden = true;
  $('no-room').hidden = false;
  $('online-list').replaceChildren();
  $('online-count').textContent = '';
  $('typing-indicator').textContent = '';
}

export function reset() {
  stopTyping();
  for (const st of rooms.values()) {
    for (const t of st.typing.values()) clearTimeout(t.timer);
    clearTimeout(st.muteTimer);
  }
  rooms.clear();
  pendingRoom.clear();
  nodes.clear();
  revisions.clear();
  endedStreams.clear();
  if (editing) clearTimeout(editing.timer);
  editing = null;
  confirming = null;
  picker = null;
  activeMessageId = null;
  current = null;
  me = null;
  everConnected = false;
  clearTimeout(connectionTimer);
  clearInterval(rateLimitTimer);
  rateLimitUntil = 0;
  notice = null;
  if (animFrame != null) cancelAnimationFrame(animFrame);
  animFrame = null;
  for (const u of uploads.values()) u.handle?.abort();
  uploads.clear();
  renderUploads();
  showDropZone(false);
  $('message-list').replaceChildren();
  $('composer').value = '';
  $('connection-status').hidden = true;
  renderComposerNotice();
  renderReplyBanner();
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
      streams: new Map(),
      hasMore: false,
      loaded: false,
      loadingOlder: false,
      draft: '',
      replyTo: null,
      mutedUntil: 0,
      muteTimer: null,
      catchingUp: false,
      catchUpQueued: false,
      gapTried: null,
    };
    rooms.set(roomId, st);
  }
  return st;
}

// ---- 1. socket events ------------------------------------------------------------------------

function onRoomJoined({ room_id: roomId, messages = [], online = [] }) {
  const st = state(roomId);
  const incoming = Array.isArray(messages) ? messages : [];
  const stick = isCurrent(roomId) && isNearBottom();
  if (st.messages.size === 0) st.hasMore = incoming.length >= HISTORY_PAGE;
  for (const m of incoming) storeMessage(st, m);
  dropStreamsAnsweredBy(st, incoming);
  st.loaded = true;

  st.online = new Map();
  for (const person of Array.isArray(online) ? online : []) {
    st.online.set(person.user_id, person.display_name);
  }
  if (isCurrent(roomId)) {
    renderAll();
    if (stick) scrollToBottom();
  }
  checkGaps(roomId);
}

function onNewMessage({ room_id: roomId, message }) {
  if (!message) return;
  const id = roomId || message.room_id;
  const st = state(id);
  const stick = isCurrent(id) && isNearBottom();
  storeMessage(st, message);
  dropStreamsAnsweredBy(st, [message]);
  if (message.author && st.typing.has(message.author.id)) {
    clearTimeout(st.typing.get(message.author.id).timer);
    st.typing.delete(message.author.id);
  }
  if (isCurrent(id)) {
    renderMessages();
    renderTyping();
    if (stick || isMine(message)) scrollToBottom();
  }
  checkGaps(id);
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

function onMessageEdited({ room_id: roomId, message }) {
  if (!message || message.id == null) return;
  const st = state(roomId || message.room_id);
  storeMessage(st, message);
  if (editing && editing.id === message.id) finishEditing();
  if (isCurrent(roomId || message.room_id)) renderMessages();
}

function onMessageDeleted({ room_id: roomId, message_id: messageId }) {
  const st = state(roomId);
  const m = st.messages.get(messageId);
  if (m) storeMessage(st, { ...m, deleted: true, body: '', reactions: [] });
  // Replies quoting it now show "message deleted" in their quote.
  for (const other of st.messages.values()) {
    if (other.reply_to && other.reply_to.id === messageId) bump(other.id);
  }
  if (editing && editing.id === messageId) finishEditing();
  if (confirming === messageId) confirming = null;
  if (picker === messageId) picker = null;
  if (st.replyTo && st.replyTo.id === messageId) setReply(null, roomId);
  if (isCurrent(roomId)) renderMessages();
}

function onReaction({ room_id: roomId, message_id: messageId, reactions }) {
  const st = state(roomId);
  const m = st.messages.get(messageId);
  if (!m || !Array.isArray(reactions)) return;
  storeMessage(st, { ...m, reactions });
  if (isCurrent(roomId)) renderMessages();
}

function onModeration({ room_id: roomId, user_id: userId, action, until }) {
  if (!me || userId !== me.id) return;
  const st = state(roomId);
  clearTimeout(st.muteTimer);
  st.muteTimer = null;
  if (action === 'muted') {
    const at = until ? Date.parse(until) : NaN;
    st.mutedUntil = Number.isFinite(at) ? at : Infinity;
    if (Number.isFinite(at)) {
      // setTimeout caps at ~24.8 days; longer mutes are re-checked on the next event or reload.
      const wait = Math.min(at - Date.now(), 2 ** 31 - 1);
      st.muteTimer = setTimeout(() => {
        st.mutedUntil = 0;
        if (isCurrent(roomId)) applyComposerState();
      }, Math.max(0, wait));
    }
  } else if (action === 'unmuted') {
    st.mutedUntil = 0;
  }
  if (isCurrent(roomId)) applyComposerState();
}

function onSocketError({ code, message, ref, retry_after_ms: retryAfterMs }) {
  if (ref && pendingRoom.has(ref)) {
    const roomId = pendingRoom.get(ref);
    const st = state(roomId);
    const p = st.pending.get(ref);
    if (p?.file && code === 'bad_request') {
      // The server refused the file ("file rejected: …") and deleted it: nothing to retry.
      dropPending(st, ref);
      if (isCurrent(roomId)) renderMessages();
      toast(message || 'That file could not be shared.', { title: `${p.file.name}:`, kind: 'error' });
      return;
    }
    if (p) {
      p.status = 'failed';
      p.error =
        code === 'rate_limited'
          ? 'Not sent: too many messages.'
          : `Not sent: ${code === 'muted' && message ? message : friendly(code, message)}`;
      if (isCurrent(roomId)) renderMessages();
    }
  }
  if (editing?.saving && ['forbidden', 'not_found', 'bad_request', 'too_large', 'muted', 'rate_limited'].includes(code)) {
    editing.saving = false;
    clearTimeout(editing.timer);
    if (current) renderMessages();
  }
  if (code === 'rate_limited' && retryAfterMs > 0) {
    startRateLimit(retryAfterMs);
  } else if (code === 'insufficient_funds') {
    showComposerError(ERROR_TEXT.insufficient_funds, { label: 'Open wallet', action: () => hooks.openWallet(), kind: code });
  } else if (code === 'onboarding_incomplete') {
    showComposerError(ERROR_TEXT.onboarding_incomplete, { label: 'Finish setup', action: () => hooks.finishOnboarding(), kind: code });
  } else if (code === 'muted') {
    // The server's text names the time ("You are muted until 14:05").
    showComposerError(message || ERROR_TEXT.muted, { kind: code });
  } else {
    showComposerError(friendly(code, message), { kind: code || '' });
  }
}

function onConnection({ state: connection, resumed }) {
  const banner = $('connection-status');
  clearTimeout(connectionTimer);
  if (connection === 'open') {
    everConnected = true;
    banner.hidden = true;
    resendFileMessages();
    if (resumed) resume();
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

/** Stores (or replaces) a message by id; bumps its revision when what is shown changed. */
function storeMessage(st, message) {
  if (!message || message.id == null) return;
  st.messages.set(message.id, message);
  const signature = JSON.stringify([
    message.seq,
    message.body,
    Boolean(message.deleted),
    message.edited_at || null,
    message.reactions || [],
    message.reply_to || null,
    Boolean(message.stopped),
    message.attachment || null,
  ]);
  const known = revisions.get(message.id);
  if (!known) revisions.set(message.id, [0, signature]);
  else if (known[1] !== signature) revisions.set(message.id, [known[0] + 1, signature]);
  if (message.client_msg_id && st.pending.has(message.client_msg_id)) {
    dropPending(st, message.client_msg_id);
  }
}

function bump(id) {
  const known = revisions.get(id);
  if (known) revisions.set(id, [known[0] + 1, known[1]]);
}

function dropPending(st, cmid) {
  st.pending.delete(cmid);
  pendingRoom.delete(cmid);
}

function isCurrent(roomId) {
  return current !== null && current.id === roomId;
}

function isMine(message) {
  return Boolean(message?.author && me && message.author.id === me.id);
}

function sortedMessages(st) {
  return [...st.messages.values()].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0) || cmp(a.id, b.id));
}

function cmp(a, b) {
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

// ---- 2. resume after a reconnect, and filling gaps ---------------------------------------------

function resume() {
  for (const [roomId, st] of rooms) {
    // A stream that was cut off cannot be completed from chunks any more; the stored reply comes
    // with the catch-up (or with its ai_stream_end if it is still going).
    for (const [streamId, s] of st.streams) {
      if (Date.now() - s.lastAt > STREAM_STALE_MS) st.streams.delete(streamId);
      else s.resync = true;
    }
    const last = sortedMessages(st).at(-1);
    if (last) catchUp(roomId, last.id);
    if (isCurrent(roomId)) renderMessages();
  }
}

/** Fetches every message after `afterId`, following `next_after` until it is null. */
async function catchUp(roomId, afterId) {
  const st = state(roomId);
  if (st.catchingUp) {
    st.catchUpQueued = true;
    return;
  }
  st.catchingUp = true;
  let after = afterId;
  try {
    for (let pages = 0; after != null && pages < CATCHUP_MAX_PAGES; pages++) {
      const page = await get(
        `/api/rooms/${encodeURIComponent(roomId)}/messages?after=${encodeURIComponent(after)}&limit=${CATCHUP_PAGE}`,
      );
      const got = Array.isArray(page?.messages) ? page.messages : [];
      if (got.length > 0) {
        const stick = isCurrent(roomId) && isNearBottom();
        for (const m of got) storeMessage(st, m);
        dropStreamsAnsweredBy(st, got);
        if (isCurrent(roomId)) {
          renderMessages();
          if (stick) scrollToBottom();
        }
      }
      const next = page?.next_after ?? null;
      if (next == null || got.length === 0 || next === after) break;
      after = next;
    }
  } catch (err) {
    // Not fatal: the next reconnect or gap check tries again.
    console.warn('catching up failed', err?.message || err);
  } finally {
    st.catchingUp = false;
  }
  if (st.catchUpQueued) {
    st.catchUpQueued = false;
    const last = sortedMessages(st).at(-1);
    if (last) catchUp(roomId, last.id);
    return;
  }
  checkGaps(roomId);
}

/** A jump in `seq` means messages were missed: fetch from the last one before the jump. */
function checkGaps(roomId) {
  const st = state(roomId);
  if (st.catchingUp || st.messages.size < 2) return;
  const list = sortedMessages(st);
  for (let i = 0; i + 1 < list.length; i++) {
    const a = list[i].seq;
    const b = list[i + 1].seq;
    if (typeof a !== 'number' || typeof b !== 'number' || b <= a + 1) continue;
    if (st.gapTried === a) return; // tried this one already; do not loop
    st.gapTried = a;
    catchUp(roomId, list[i].id);
    return;
  }
}

// ---- 3. AI streams --------------------------------------------------------------------------

function onStreamStart({ room_id: roomId, stream_id: streamId, reply_to: replyTo }) {
  if (streamId == null || endedStreams.has(streamId)) return;
  const st = state(roomId);
  if (!st.streams.has(streamId)) st.streams.set(streamId, newStream(roomId, streamId, replyTo, 0));
  if (isCurrent(roomId)) {
    const stick = isNearBottom();
    renderMessages();
    if (stick) scrollToBottom();
  }
}

function newStream(roomId, streamId, replyTo, firstSeq) {
  return {
    roomId,
    id: streamId,
    replyTo: replyTo ?? null,
    buffer: new Map(), // seq -> delta, chunks that came early
    next: firstSeq, // the seq we need next
    text: '', // everything received in order
    shown: 0, // how much of `text` is on screen
    partial: firstSeq > 0, // we joined late: the start is missing
    stopping: false,
    resync: false,
    lastAt: Date.now(),
  };
}

function onStreamChunk({ room_id: roomId, stream_id: streamId, seq, delta }) {
  if (streamId == null || endedStreams.has(streamId) || typeof seq !== 'number') return;
  const st = state(roomId);
  let s = st.streams.get(streamId);
  if (!s) {
    // We missed the start (joined or reconnected mid-stream): show from here on.
    s = newStream(roomId, streamId, null, seq);
    st.streams.set(streamId, s);
    if (isCurrent(roomId)) renderMessages();
  }
  s.lastAt = Date.now();
  if (s.resync && seq > s.next && !s.buffer.has(s.next)) {
    // Chunks were lost while disconnected: mark the hole and carry on from here.
    s.text += ' … ';
    s.next = seq;
    s.buffer.clear();
  }
  s.resync = false;
  if (seq < s.next) return; // a duplicate
  s.buffer.set(seq, typeof delta === 'string' ? delta : '');
  while (s.buffer.has(s.next)) {
    s.text += s.buffer.get(s.next);
    s.buffer.delete(s.next);
    s.next += 1;
  }
  if (isCurrent(roomId)) ensureAnimation();
}

function onStreamEnd({ room_id: roomId, stream_id: streamId, message }) {
  const st = state(roomId || message?.room_id);
  endedStreams.add(streamId);
  if (endedStreams.size > 500) endedStreams.delete(endedStreams.values().next().value);
  st.streams.delete(streamId);
  const id = roomId || message?.room_id;
  const stick = isCurrent(id) && isNearBottom();
  if (message) storeMessage(st, message);
  if (isCurrent(id)) {
    renderMessages();
    if (stick) scrollToBottom();
  }
  if (message) checkGaps(id);
}

/** Drops placeholders whose stream went silent (its end was lost); the stored reply still comes. */
function sweepIdleStreams() {
  for (const [roomId, st] of rooms) {
    let changed = false;
    for (const [streamId, s] of st.streams) {
      if (Date.now() - s.lastAt > STREAM_IDLE_MS) {
        st.streams.delete(streamId);
        changed = true;
      }
    }
    if (changed && isCurrent(roomId)) renderMessages();
  }
}

/** A stored AI reply that answers a message replaces the placeholder streaming it. */
function dropStreamsAnsweredBy(st, messages) {
  if (st.streams.size === 0) return;
  for (const m of messages) {
    if (m?.kind !== 'ai' || !m.reply_to) continue;
    for (const [streamId, s] of st.streams) {
      if (s.replyTo != null && s.replyTo === m.reply_to.id) {
        st.streams.delete(streamId);
        endedStreams.add(streamId);
      }
    }
  }
}

function ensureAnimation() {
  if (document.hidden || reducedMotion.matches) {
    revealAllStreams();
    return;
  }
  if (animFrame == null) animFrame = requestAnimationFrame(typeOut);
}

/** One frame of typing out: a character at a time, faster the further behind the screen is. */
function typeOut() {
  animFrame = null;
  if (!current) return;
  const st = state(current.id);
  const stick = isNearBottom();
  let more = false;
  for (const s of st.streams.values()) {
    const behind = s.text.length - s.shown;
    if (behind <= 0) continue;
    const step = behind > 400 ? Math.ceil(behind / 4) : behind > 80 ? Math.ceil(behind / 12) : behind > 24 ? 2 : 1;
    let next = Math.min(s.text.length, s.shown + step);
    const code = s.text.charCodeAt(next - 1);
    if (next < s.text.length && code >= 0xd800 && code <= 0xdbff) next += 1; // keep surrogate pairs whole
    s.shown = next;
    paintStream(s);
    if (s.shown < s.text.length) more = true;
  }
  if (stick) scrollToBottom();
  if (more) animFrame = requestAnimationFrame(typeOut);
}

function revealAllStreams() {
  if (!current) return;
  for (const s of state(current.id).streams.values()) {
    if (s.shown !== s.text.length) {
      s.shown = s.text.length;
      paintStream(s);
    }
  }
}

function paintStream(s) {
  const el = nodes.get(`s:${s.id}`);
  const bodyEl = el?.querySelector('.message-body');
  if (!bodyEl) return;
  const visible = (s.partial ? '… ' : '') + s.text.slice(0, s.shown);
  bodyEl.replaceChildren(renderMarkdown(visible));
  el.dataset.length = String(s.shown);
}

function stopStream(s, button) {
  if (s.stopping) return;
  const sent = socket.send({ action: 'stop_ai', room_id: s.roomId, stream_id: s.id });
  if (!sent) {
    showComposerError('You are offline, so the reply cannot be stopped right now.');
    return;
  }
  s.stopping = true;
  button.disabled = true;
  button.textContent = 'Stopping…';
}

// ---- 4. rendering ---------------------------------------------------------------------------

function renderAll({ scroll } = {}) {
  renderMessages();
  renderOnline();
  renderTyping();
  if (scroll === 'bottom') scrollToBottom();
}

function messageKey(m) {
  let key = `m:${m.id}:${revisions.get(m.id)?.[0] ?? 0}`;
  if (editing && editing.id === m.id) key += editing.saving ? ':es' : ':e';
  if (confirming === m.id) key += ':d';
  if (picker === m.id) key += ':p';
  return key;
}

function orderedItems(st) {
  const messages = sortedMessages(st);
  const streams = [...st.streams.values()];
  const pending = [...st.pending.values()].sort((a, b) => a.createdAt - b.createdAt);
  return [
    ...messages.map((m) => ({ key: messageKey(m), id: m.id, build: () => buildMessage(m, st) })),
    ...streams.map((s) => ({ key: `s:${s.id}`, build: () => buildStream(s) })),
    ...pending.map((p) => ({ key: `p:${p.client_msg_id}:${p.status}`, build: () => buildPending(p) })),
  ];
}

function renderMessages() {
  const list = $('message-list');
  const st = current ? state(current.id) : null;
  const items = st ? orderedItems(st) : [];

  // Remember what had focus, to put it back on the rebuilt node.
  const focused = document.activeElement;
  let focusInfo = null;
  if (focused && focused !== list && list.contains(focused)) {
    const holder = focused.closest('[data-id]');
    if (holder) {
      focusInfo = {
        id: holder.dataset.id,
        testid: focused.dataset?.testid || null,
        emoji: focused.dataset?.emoji || null,
      };
    }
  }

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
  syncRovingFocus();

  if (focusInfo && !list.contains(document.activeElement)) {
    const holder = list.querySelector(`.message[data-id="${CSS.escape(focusInfo.id)}"]`);
    let target = holder;
    if (holder && focusInfo.testid) {
      let selector = `[data-testid="${CSS.escape(focusInfo.testid)}"]`;
      if (focusInfo.emoji) selector += `[data-emoji="${CSS.escape(focusInfo.emoji)}"]`;
      target = holder.querySelector(selector) || holder;
    }
    target?.focus({ preventScroll: true });
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

/** One message takes Tab focus in the list; arrows move between messages (roving tabindex). */
function syncRovingFocus() {
  const list = $('message-list');
  const articles = [...list.querySelectorAll(':scope > .message[data-id]')];
  if (articles.length === 0) return;
  let active = activeMessageId ? articles.find((a) => a.dataset.id === activeMessageId) : null;
  if (!active) active = articles[articles.length - 1];
  for (const a of articles) setTabbable(a, a === active);
}

function setTabbable(article, on) {
  article.tabIndex = on ? 0 : -1;
  for (const b of article.querySelectorAll('button, textarea')) b.tabIndex = on ? 0 : -1;
}

function setActiveMessage(id) {
  if (activeMessageId === id) return;
  activeMessageId = id;
  syncRovingFocus();
}

function onListKeydown(event) {
  if (!['ArrowUp', 'ArrowDown', 'Home', 'End'].includes(event.key)) return;
  if (event.target.closest('textarea, input')) return;
  const articles = [...$('message-list').querySelectorAll(':scope > .message[data-id]')];
  const currentEl = event.target.closest('.message[data-id]');
  let i = articles.indexOf(currentEl);
  if (i < 0) i = articles.length - 1;
  if (event.key === 'ArrowUp') i = Math.max(0, i - 1);
  if (event.key === 'ArrowDown') i = Math.min(articles.length - 1, i + 1);
  if (event.key === 'Home') i = 0;
  if (event.key === 'End') i = articles.length - 1;
  const target = articles[i];
  if (!target) return;
  event.preventDefault();
  setActiveMessage(target.dataset.id);
  target.focus();
}

function buildMessage(m, st) {
  const mine = isMine(m);
  const el = document.createElement('article');
  el.className = `message kind-${m.kind}${mine ? ' mine' : ''}${m.deleted ? ' deleted' : ''}`;
  el.dataset.testid = 'message';
  el.dataset.seq = String(m.seq);
  el.dataset.id = String(m.id);
  el.dataset.kind = m.kind;
  if (m.client_msg_id) el.dataset.clientMsgId = m.client_msg_id;
  if (m.deleted) el.dataset.deleted = 'true';
  if (m.edited_at) el.dataset.edited = 'true';
  if (m.stopped) el.dataset.stopped = 'true';
  el.tabIndex = -1;

  if (m.kind === 'system') {
    el.append(plainBody(m.deleted ? 'message deleted' : m.body));
    const time = timeEl(m.created_at);
    if (time) el.append(time);
    return el;
  }

  const authorName = m.kind === 'ai' ? 'Mathia' : m.author?.display_name || 'Unknown';
  el.setAttribute('aria-label', `${authorName}${m.deleted ? ', deleted message' : ''}`);
  el.append(avatar(authorName, m.kind === 'ai' ? 'mathia' : m.author?.id || m.kind));
  const main = document.createElement('div');
  main.className = 'message-main';
  main.append(meta(m, authorName));
  if (m.reply_to && !m.deleted) main.append(quote(m.reply_to, st));

  const isEditing = editing && editing.id === m.id && !m.deleted;
  if (m.deleted) {
    const gone = plainBody('message deleted');
    gone.classList.add('deleted-body');
    main.append(gone);
  } else if (isEditing) {
    main.append(editor(m));
  } else if (!(m.attachment && (m.body || '').trim() === String(m.attachment.name || '').trim())) {
    // A file message without a caption has the file's name as its body: the card shows it.
    main.append(markdownBody(m.body));
  }

  if (!m.deleted && m.attachment) {
    const file = attachmentEl(m.attachment, { onResize: keepPinned });
    if (file) main.append(file);
  }
  if (!m.deleted && Array.isArray(m.reactions) && m.reactions.some((r) => r.count > 0)) {
    main.append(reactionsEl(m));
  }
  if (confirming === m.id && !m.deleted) main.append(deleteConfirm(m));
  if (picker === m.id && !m.deleted) main.append(emojiPicker(m));
  el.append(main);
  if (!m.deleted && !isEditing) el.append(menu(m, mine));
  return el;
}

function meta(m, authorName) {
  const row = document.createElement('div');
  row.className = 'message-meta';
  const author = document.createElement('span');
  author.className = 'message-author';
  author.dataset.testid = 'message-author';
  author.textContent = authorName;
  row.append(author);
  if (m.kind === 'ai') {
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = 'AI';
    row.append(tag);
  }
  const time = timeEl(m.created_at);
  if (time) row.append(time);
  if (m.edited_at && !m.deleted) {
    const edited = document.createElement('span');
    edited.className = 'message-edited';
    edited.dataset.testid = 'message-edited';
    edited.textContent = '(edited)';
    const at = session.formatTime(m.edited_at, { dateStyle: 'full', timeStyle: 'short' });
    if (at) edited.title = `Edited ${at}`;
    row.append(edited);
  }
  if (m.stopped && !m.deleted) {
    const stopped = document.createElement('span');
    stopped.className = 'message-status';
    stopped.dataset.testid = 'message-stopped';
    stopped.textContent = 'stopped';
    row.append(stopped);
  }
  return row;
}

function quote(ref, st) {
  const original = st.messages.get(ref.id);
  const who = ref.author?.display_name || (original?.kind === 'ai' ? 'Mathia' : original?.author?.display_name) || 'Someone';
  const deleted = Boolean(original?.deleted);
  const excerpt = deleted ? 'message deleted' : excerptOf(ref.excerpt ?? original?.body ?? '');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'message-quote';
  button.dataset.testid = 'message-quote';
  button.dataset.replyTo = String(ref.id);
  button.tabIndex = -1;
  button.setAttribute('aria-label', `In reply to ${who}: ${excerpt}. Show that message.`);
  const name = document.createElement('strong');
  name.textContent = who;
  const text = document.createElement('span');
  text.className = `quote-text${deleted ? ' deleted-body' : ''}`;
  text.dataset.testid = 'message-quote-text';
  text.textContent = excerpt;
  button.append(name, text);
  button.addEventListener('click', () => jumpTo(ref.id));
  return button;
}

function excerptOf(text) {
  const flat = String(text || '').replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT_MAX ? `${flat.slice(0, EXCERPT_MAX - 1)}…` : flat;
}

function jumpTo(id) {
  const el = $('message-list').querySelector(`.message[data-id="${CSS.escape(String(id))}"]`);
  if (!el) return;
  el.scrollIntoView({ block: 'center', behavior: reducedMotion.matches ? 'auto' : 'smooth' });
  el.classList.remove('highlight');
  void el.offsetWidth; // restart the highlight animation
  el.classList.add('highlight');
  setActiveMessage(String(id));
  el.focus({ preventScroll: true });
}

function reactionsEl(m) {
  const row = document.createElement('div');
  row.className = 'reactions';
  row.setAttribute('role', 'group');
  row.setAttribute('aria-label', 'Reactions');
  for (const r of m.reactions) {
    if (!r || !(r.count > 0)) continue;
    const mine = Boolean(me && Array.isArray(r.user_ids) && r.user_ids.includes(me.id));
    const chip = document.createElement('button');
    chip.type = 'button';
    chip.className = `reaction${mine ? ' mine' : ''}`;
    chip.dataset.testid = 'reaction';
    chip.dataset.emoji = r.emoji;
    chip.dataset.count = String(r.count);
    chip.tabIndex = -1;
    chip.setAttribute('aria-pressed', String(mine));
    chip.setAttribute('aria-label', `${r.emoji} ${r.count}${mine ? ', including you' : ''}`);
    const emoji = document.createElement('span');
    emoji.setAttribute('aria-hidden', 'true');
    emoji.textContent = r.emoji;
    const count = document.createElement('span');
    count.className = 'reaction-count';
    count.dataset.testid = 'reaction-count';
    count.textContent = String(r.count);
    chip.append(emoji, count);
    chip.addEventListener('click', () => react(m, r.emoji, !mine));
    row.append(chip);
  }
  return row;
}

function menu(m, mine) {
  const bar = document.createElement('div');
  bar.className = 'message-menu';
  bar.dataset.testid = 'message-menu';
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', 'Message actions');
  const add = (testid, glyph, label, onClick) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'menu-button';
    b.dataset.testid = testid;
    b.tabIndex = -1;
    b.title = label;
    b.setAttribute('aria-label', label);
    if (glyph.startsWith('svg:')) b.append(icon(glyph.slice(4)));
    else b.textContent = glyph;
    b.addEventListener('click', onClick);
    bar.append(b);
    return b;
  };
  add('message-reply', '↩', 'Reply', () => startReply(m));
  const reactButton = add('message-react', '☺', 'React', () => {
    picker = picker === m.id ? null : m.id;
    renderMessages();
    focusIn(m.id, '[data-testid="react-emoji"]');
  });
  reactButton.setAttribute('aria-expanded', String(picker === m.id));
  if (mine && m.kind === 'user') {
    add('message-edit', '✎', 'Edit', () => startEditing(m));
  }
  if (mine || isOwnerHere()) {
    add('message-delete', 'svg:trash', 'Delete', () => {
      confirming = m.id;
      renderMessages();
      focusIn(m.id, '[data-testid="delete-confirm"]');
    });
  }
  return bar;
}

function focusIn(id, selector) {
  const holder = $('message-list').querySelector(`.message[data-id="${CSS.escape(String(id))}"]`);
  holder?.querySelector(selector)?.focus();
}

function isOwnerHere() {
  return Boolean(current && current.workspace_id != null && session.roleIn(current.workspace_id) === 'owner');
}

function emojiPicker(m) {
  const box = document.createElement('div');
  box.className = 'react-picker';
  box.dataset.testid = 'react-picker';
  box.setAttribute('role', 'group');
  box.setAttribute('aria-label', 'Pick a reaction');
  for (const emoji of REACTIONS) {
    const already = (m.reactions || []).some((r) => r.emoji === emoji && me && r.user_ids?.includes(me.id));
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `react-option${already ? ' mine' : ''}`;
    b.dataset.testid = 'react-emoji';
    b.dataset.emoji = emoji;
    b.setAttribute('aria-pressed', String(already));
    b.setAttribute('aria-label', `React with ${emoji}`);
    b.textContent = emoji;
    b.addEventListener('click', () => {
      picker = null;
      react(m, emoji, !already);
      renderMessages();
      focusIn(m.id, '[data-testid="message-react"]');
    });
    box.append(b);
  }
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      picker = null;
      renderMessages();
      focusIn(m.id, '[data-testid="message-react"]');
    }
  });
  return box;
}

function deleteConfirm(m) {
  const bar = document.createElement('div');
  bar.className = 'delete-confirm';
  bar.setAttribute('role', 'group');
  bar.setAttribute('aria-label', 'Confirm delete');
  const text = document.createElement('span');
  text.textContent = 'Delete this message for everyone?';
  const yes = document.createElement('button');
  yes.type = 'button';
  yes.className = 'button button-danger';
  yes.dataset.testid = 'delete-confirm';
  yes.textContent = 'Delete';
  const no = document.createElement('button');
  no.type = 'button';
  no.className = 'button button-quiet';
  no.dataset.testid = 'delete-cancel';
  no.textContent = 'Cancel';
  const cancel = () => {
    confirming = null;
    renderMessages();
    focusIn(m.id, '[data-testid="message-delete"]');
  };
  yes.addEventListener('click', () => {
    confirming = null;
    const sent = socket.send({ action: 'delete_message', room_id: m.room_id || current?.id, message_id: m.id });
    if (!sent) showComposerError('You are offline. Try again once reconnected.');
    renderMessages();
  });
  no.addEventListener('click', cancel);
  bar.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      cancel();
    }
  });
  bar.append(text, yes, no);
  return bar;
}

function editor(m) {
  const form = document.createElement('form');
  form.className = 'message-editor';
  form.noValidate = true;
  const id = `edit-${m.id}`;
  const label = document.createElement('label');
  label.htmlFor = id;
  label.className = 'visually-hidden';
  label.textContent = 'Edit message';
  const input = document.createElement('textarea');
  input.id = id;
  input.dataset.testid = 'edit-input';
  input.rows = Math.min(8, Math.max(2, (editing.draft.match(/\n/g) || []).length + 1));
  input.value = editing.draft;
  input.disabled = editing.saving;
  input.addEventListener('input', () => {
    if (editing) editing.draft = input.value;
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      saveEdit(m);
    } else if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      cancelEditing();
    }
  });
  const actions = document.createElement('div');
  actions.className = 'editor-actions';
  const save = document.createElement('button');
  save.type = 'submit';
  save.className = 'button button-primary';
  save.dataset.testid = 'edit-save';
  save.disabled = editing.saving;
  save.textContent = editing.saving ? 'Saving…' : 'Save';
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'button button-quiet';
  cancel.dataset.testid = 'edit-cancel';
  cancel.textContent = 'Cancel';
  cancel.addEventListener('click', cancelEditing);
  const hint = document.createElement('span');
  hint.className = 'muted small';
  hint.textContent = 'Enter to save · Esc to cancel';
  actions.append(save, cancel, hint);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    saveEdit(m);
  });
  form.append(label, input, actions);
  return form;
}

function startEditing(m) {
  if (editing) clearTimeout(editing.timer);
  editing = { roomId: current?.id, id: m.id, draft: m.body || '', saving: false, timer: null };
  confirming = null;
  picker = null;
  renderMessages();
  const input = $('message-list').querySelector('[data-testid="edit-input"]');
  if (input) {
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }
}

function cancelEditing() {
  if (!editing) return;
  const id = editing.id;
  finishEditing();
  renderMessages();
  focusIn(id, '[data-testid="message-edit"]');
}

function finishEditing() {
  if (editing) clearTimeout(editing.timer);
  editing = null;
}

function saveEdit(m) {
  if (!editing || editing.saving) return;
  const body = editing.draft.trim();
  if (!body) {
    showComposerError('A message cannot be empty. Delete it instead.');
    return;
  }
  if ([...body].length > BODY_MAX) {
    showComposerError(`Messages are at most ${BODY_MAX.toLocaleString()} characters.`);
    return;
  }
  if (body === (m.body || '').trim()) {
    cancelEditing();
    return;
  }
  const sent = socket.send({ action: 'edit_message', room_id: m.room_id || current?.id, message_id: m.id, body });
  if (!sent) {
    showComposerError('You are offline. Your edit is kept; save again once reconnected.');
    return;
  }
  clearComposerError();
  editing.saving = true;
  editing.timer = setTimeout(() => {
    // No answer: let the person try again.
    if (editing && editing.id === m.id) {
      editing.saving = false;
      renderMessages();
    }
  }, EDIT_TIMEOUT_MS);
  renderMessages();
}

function react(m, emoji, on) {
  const sent = socket.send({ action: 'react', room_id: m.room_id || current?.id, message_id: m.id, emoji, on });
  if (!sent) showComposerError('You are offline. Try again once reconnected.');
}

function startReply(m) {
  const who = m.kind === 'ai' ? 'Mathia' : m.author?.display_name || 'Someone';
  setReply({ id: m.id, author: { id: m.author?.id ?? null, display_name: who }, excerpt: excerptOf(m.body) });
  $('composer').focus();
}

function setReply(ref, roomId = current?.id) {
  if (!roomId) return;
  state(roomId).replyTo = ref;
  if (isCurrent(roomId)) renderReplyBanner();
}

function renderReplyBanner() {
  const ref = current ? state(current.id).replyTo : null;
  $('reply-banner').hidden = !ref;
  $('reply-banner-author').textContent = ref ? ref.author?.display_name || 'Someone' : '';
  $('reply-banner-excerpt').textContent = ref ? ref.excerpt : '';
}

function buildStream(s) {
  const el = document.createElement('article');
  el.className = 'message kind-ai streaming';
  el.dataset.testid = 'ai-streaming';
  el.dataset.streamId = String(s.id);
  el.dataset.kind = 'ai';
  el.dataset.length = '0';
  el.setAttribute('aria-label', 'Mathia is replying');
  el.append(avatar('Mathia', 'mathia'));
  const main = document.createElement('div');
  main.className = 'message-main';
  const row = document.createElement('div');
  row.className = 'message-meta';
  const author = document.createElement('span');
  author.className = 'message-author';
  author.dataset.testid = 'message-author';
  author.textContent = 'Mathia';
  const tag = document.createElement('span');
  tag.className = 'tag';
  tag.textContent = 'AI';
  const status = document.createElement('span');
  status.className = 'message-status';
  status.textContent = 'writing…';
  row.append(author, tag, status);
  const bodyEl = document.createElement('div');
  bodyEl.className = 'message-body stream-body';
  bodyEl.dataset.testid = 'message-body';
  bodyEl.setAttribute('aria-live', 'polite');
  bodyEl.setAttribute('aria-atomic', 'false');
  const actions = document.createElement('div');
  actions.className = 'message-actions';
  const stop = document.createElement('button');
  stop.type = 'button';
  stop.className = 'button button-small';
  stop.dataset.testid = 'ai-stop';
  stop.textContent = s.stopping ? 'Stopping…' : 'Stop';
  stop.disabled = s.stopping;
  stop.setAttribute('aria-label', 'Stop Mathia’s reply');
  stop.addEventListener('click', () => stopStream(s, stop));
  actions.append(stop);
  main.append(row, bodyEl, actions);
  el.append(main);
  if (s.shown > 0) {
    bodyEl.replaceChildren(renderMarkdown((s.partial ? '… ' : '') + s.text.slice(0, s.shown)));
    el.dataset.length = String(s.shown);
  }
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
  const row = meta({ kind: 'user' }, name);
  const status = document.createElement('span');
  status.className = 'message-status';
  status.textContent =
    p.status === 'failed' ? p.error || 'Not sent.' : p.status === 'sent' ? 'Sent' : p.file ? 'Checking the file…' : 'Sending…';
  row.append(status);
  main.append(row);
  if (p.replyTo) {
    const q = document.createElement('div');
    q.className = 'message-quote';
    const who = document.createElement('strong');
    who.textContent = p.replyTo.author?.display_name || 'Someone';
    const text = document.createElement('span');
    text.className = 'quote-text';
    text.textContent = p.replyTo.excerpt || '';
    q.append(who, text);
    main.append(q);
  }
  if (!p.file || p.body) main.append(markdownBody(p.body));
  if (p.file) main.append(pendingAttachmentEl(p.file));

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

function markdownBody(text) {
  const el = document.createElement('div');
  el.className = 'message-body markdown';
  el.dataset.testid = 'message-body';
  el.append(renderMarkdown(text ?? ''));
  return el;
}

function plainBody(text) {
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

/** A message's time, in the user's time zone (the one from their profile). */
function timeEl(iso) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return null;
  const el = document.createElement('time');
  el.className = 'message-time';
  el.dateTime = date.toISOString();
  el.textContent = session.formatClock(date);
  el.title = session.formatTime(date, { dateStyle: 'full', timeStyle: 'short' });
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
  pinned = true;
}

/** A thumbnail grew: stay at the bottom if that is where the reader was. */
function keepPinned() {
  if (pinned) scrollToBottom();
}

// ---- history -------------------------------------------------------------------------------

async function loadOlder() {
  if (!current) return;
  const roomId = current.id;
  const st = state(roomId);
  if (st.loadingOlder) return;
  const oldest = sortedMessages(st)[0];
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

// ---- 6. composer ---------------------------------------------------------------------------

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
  if (st.mutedUntil > Date.now()) return;

  const cmid = newId();
  const replyTo = st.replyTo;
  st.pending.set(cmid, { client_msg_id: cmid, body: text, status: 'pending', createdAt: Date.now(), replyTo });
  pendingRoom.set(cmid, roomId);
  socket.sendMessage(roomId, text, cmid, { replyTo: replyTo?.id ?? null });

  composer.value = '';
  st.draft = '';
  setReply(null, roomId);
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
  if (p.frame) socket.send(p.frame); // a file message (sent again on reconnect if offline now)
  else socket.sendMessage(roomId, p.body, cmid, { replyTo: p.replyTo?.id ?? null });
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

/** Enables or disables the composer for the current room (muted, rate limited) and its notice. */
function applyComposerState() {
  const composer = $('composer');
  const st = current ? state(current.id) : null;
  const muted = Boolean(st && st.mutedUntil > Date.now());
  composer.disabled = !current || muted;
  composer.placeholder = !current ? 'Message' : muted ? 'You are muted in this room' : `Message #${current.name}`;
  $('send-button').disabled = !current || muted || Date.now() < rateLimitUntil;
  $('attach-button').disabled = !current || muted;
  $('composer-form').dataset.muted = String(muted);
  renderComposerNotice();
}

function muteText(st) {
  if (st.mutedUntil === Infinity) return 'You are muted in this room.';
  return `You are muted until ${session.formatClock(new Date(st.mutedUntil))}.`;
}

/** The line above the composer: mute first, then the rate-limit countdown, then other errors. */
function renderComposerNotice() {
  const st = current ? state(current.id) : null;
  let text = '';
  let action = null;
  if (st && st.mutedUntil > Date.now()) {
    text = muteText(st);
  } else if (Date.now() < rateLimitUntil) {
    const left = Math.max(1, Math.ceil((rateLimitUntil - Date.now()) / 1000));
    text = `You are sending messages too quickly. You can send again in ${left} s.`;
  } else if (notice) {
    text = notice.text;
    action = notice.action ? notice : null;
  }
  const el = $('composer-error');
  const textEl = $('composer-error-text');
  if (textEl.textContent !== text) textEl.textContent = text; // unchanged text is not re-announced
  const button = $('composer-error-action');
  button.hidden = !action;
  button.textContent = action ? action.label : '';
  el.hidden = !text;
  el.dataset.kind = st && st.mutedUntil > Date.now() ? 'muted' : Date.now() < rateLimitUntil ? 'rate_limited' : notice?.kind || '';
}

function showComposerError(text, { label = '', action = null, kind = '' } = {}) {
  notice = text ? { text, label, action, kind } : null;
  renderComposerNotice();
}

function clearComposerError() {
  notice = null;
  renderComposerNotice();
}

function startRateLimit(ms) {
  rateLimitUntil = Date.now() + ms;
  clearInterval(rateLimitTimer);
  const tick = () => {
    if (Date.now() >= rateLimitUntil) {
      clearInterval(rateLimitTimer);
      rateLimitTimer = null;
      rateLimitUntil = 0;
    }
    applyComposerState();
  };
  tick();
  rateLimitTimer = setInterval(tick, 250);
}

// ---- 7. files ------------------------------------------------------------------------------
//
// Text in the composer when files are attached becomes the caption of the first one (and leaves
// the composer, as a sent message would). Each file gets a row above the composer with its
// progress and a cancel button; once its bytes are up, `file_message` goes out and the row
// becomes a pending message ("Checking the file…") until the room's `new_message` replaces it.
// A file the server refuses is dropped with its reason in a toast.

function initFiles() {
  const input = $('file-input');
  input.accept = ACCEPT;
  $('attach-button').addEventListener('click', () => {
    if (canAttach()) input.click();
  });
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = ''; // choosing the same file again fires `change` again
    if (files.length > 0) startUploads(files);
  });
  $('composer').addEventListener('paste', (event) => {
    const data = event.clipboardData;
    const files = [...(data?.files || [])];
    // Rich text copied from a document may carry a picture of itself too: paste the text then.
    if (files.length === 0 || [...(data.types || [])].includes('text/plain')) return;
    event.preventDefault();
    startUploads(files);
  });

  const view = $('chat-view');
  view.addEventListener('dragenter', (event) => {
    if (!hasFiles(event) || !current) return;
    event.preventDefault();
    dragDepth += 1;
    showDropZone(true);
  });
  view.addEventListener('dragover', (event) => {
    if (!hasFiles(event) || !current) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  view.addEventListener('dragleave', (event) => {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) showDropZone(false);
  });
  view.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.stopPropagation();
    showDropZone(false);
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length > 0) startUploads(files);
  });
  // Files dropped anywhere else must not replace the app with the file.
  window.addEventListener('dragover', (event) => {
    if (!hasFiles(event) || view.contains(event.target)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'none';
  });
  window.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    showDropZone(false);
  });
  window.addEventListener('dragend', () => showDropZone(false));
}

function hasFiles(event) {
  const types = event.dataTransfer?.types;
  return Boolean(types && [...types].includes('Files'));
}

function showDropZone(on) {
  if (!on) dragDepth = 0;
  const zone = $('drop-zone');
  if (zone.hidden === !on) return;
  zone.hidden = !on;
  if (on && current) $('drop-zone-room').textContent = current.name;
}

/** Whether files may be attached in the current room now; says why not when they may not. */
function canAttach() {
  if (!current) return false;
  const st = state(current.id);
  if (st.mutedUntil > Date.now()) {
    toast(muteText(st), { kind: 'error' });
    return false;
  }
  return true;
}

function startUploads(list) {
  if (!canAttach()) return;
  const roomId = current.id;
  const st = state(roomId);
  let files = [...list];
  if (files.length > FILES_AT_ONCE) {
    toast(`You can share up to ${FILES_AT_ONCE} files at once; the first ${FILES_AT_ONCE} are being sent.`);
    files = files.slice(0, FILES_AT_ONCE);
  }
  const accepted = [];
  for (const file of files) {
    const problem = checkFile(file);
    if (problem) toast(problem, { kind: 'error' });
    else accepted.push(file);
  }
  if (accepted.length === 0) return;

  const composer = $('composer');
  const caption = composer.value.trim();
  if ([...caption].length > BODY_MAX) {
    showComposerError(`A caption is at most ${BODY_MAX.toLocaleString()} characters. Shorten the message, then attach the file again.`);
    return;
  }
  if (caption) {
    composer.value = '';
    st.draft = '';
    autosize();
    updateCounter();
    stopTyping();
  }
  clearComposerError();
  accepted.forEach((file, i) => beginUpload(roomId, file, i === 0 ? caption : ''));
  renderUploads();
  composer.focus();
}

function beginUpload(roomId, file, caption) {
  const u = { id: newId(), roomId, file, caption, progress: null, handle: null, el: null };
  uploads.set(u.id, u);
  u.handle = uploadFile(roomId, file, {
    onProgress(fraction) {
      u.progress = fraction;
      paintUpload(u);
    },
  });
  u.handle.done.then(
    (fileId) => {
      if (!uploads.delete(u.id)) return; // cancelled, or signed out, meanwhile
      renderUploads();
      sendFileMessage(roomId, fileId, file, caption);
    },
    (err) => {
      const known = uploads.delete(u.id);
      renderUploads();
      if (!known || err?.code === 'cancelled' || err?.status === 401) return;
      toast(err?.message || 'The upload failed. Please try again.', { title: `${file.name}:`, kind: 'error' });
      if (caption && isCurrent(roomId) && $('composer').value.trim() === '') {
        // Give the caption back rather than lose it.
        $('composer').value = caption;
        autosize();
        updateCounter();
      }
    },
  );
}

function cancelUpload(id) {
  const u = uploads.get(id);
  if (!u) return;
  uploads.delete(id);
  u.handle?.abort();
  renderUploads();
  if (u.caption && isCurrent(u.roomId) && $('composer').value.trim() === '') {
    $('composer').value = u.caption;
    autosize();
    updateCounter();
  }
  $('composer').focus();
}

/** The upload rows of the current room, above the composer. */
function renderUploads() {
  const list = $('upload-list');
  const rows = current ? [...uploads.values()].filter((u) => u.roomId === current.id) : [];
  list.replaceChildren(...rows.map((u) => (u.el ||= buildUpload(u))));
  list.hidden = rows.length === 0;
}

function buildUpload(u) {
  const name = u.file.name;
  const li = document.createElement('li');
  li.className = 'upload-row';
  li.dataset.testid = 'upload-row';
  li.dataset.name = name;
  const info = document.createElement('div');
  info.className = 'upload-info';
  const line = document.createElement('div');
  line.className = 'upload-line';
  const nameEl = document.createElement('span');
  nameEl.className = 'upload-name';
  nameEl.dataset.testid = 'upload-name';
  nameEl.title = name;
  nameEl.textContent = name;
  const percent = document.createElement('span');
  percent.className = 'upload-percent';
  line.append(nameEl, percent);
  const bar = document.createElement('progress');
  bar.className = 'upload-progress';
  bar.dataset.testid = 'upload-progress';
  bar.max = 100;
  bar.setAttribute('aria-label', `Uploading ${name}`);
  info.append(line, bar);
  if (u.caption) {
    const caption = document.createElement('span');
    caption.className = 'upload-caption';
    caption.textContent = `“${excerptOf(u.caption)}”`;
    info.append(caption);
  }
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'icon-button upload-cancel';
  cancel.dataset.testid = 'upload-cancel';
  cancel.setAttribute('aria-label', `Cancel uploading ${name}`);
  cancel.title = 'Cancel upload';
  cancel.textContent = '✕';
  cancel.addEventListener('click', () => cancelUpload(u.id));
  li.append(fileBadge(name), info, cancel);
  u.el = li;
  paintUpload(u);
  return li;
}

function paintUpload(u) {
  if (!u.el) return;
  const bar = u.el.querySelector('progress');
  const percent = u.el.querySelector('.upload-percent');
  if (u.progress == null) {
    bar.removeAttribute('value'); // indeterminate while the upload is declared
    percent.textContent = `${formatSize(u.file.size)} · starting…`;
  } else {
    const pct = Math.round(u.progress * 100);
    bar.value = pct;
    percent.textContent = pct >= 100 ? 'Finishing…' : `${pct}%`;
  }
}

/** Sends `file_message` for an uploaded file, shown as a pending message until it is stored. */
function sendFileMessage(roomId, fileId, file, caption) {
  const cmid = newId();
  const frame = { action: 'file_message', room_id: roomId, file_id: fileId, client_msg_id: cmid };
  if (caption) frame.caption = caption;
  const st = state(roomId);
  st.pending.set(cmid, {
    client_msg_id: cmid,
    body: caption,
    status: 'pending',
    createdAt: Date.now(),
    replyTo: null,
    file: { name: file.name, size: file.size },
    frame,
  });
  pendingRoom.set(cmid, roomId);
  socket.send(frame); // if offline now, resendFileMessages sends it once connected
  if (isCurrent(roomId)) {
    renderMessages();
    scrollToBottom();
  }
}

/**
 * After (re)connecting, sends again the file messages not yet stored; the server keeps one
 * message per `client_msg_id`, so a duplicate is harmless.
 */
function resendFileMessages() {
  for (const st of rooms.values()) {
    for (const p of st.pending.values()) {
      if (p.frame && p.status === 'pending') socket.send(p.frame);
    }
  }
}
