// Chat section 1: per-room state fed by socket events (`room_joined`, `new_message`, `ack`,
// `typing`, `presence_update`, `message_edited`, `message_deleted`, `reaction`, `message_pinned`,
// `message_unpinned`, `moderation`,
// `error`, and the connection state).

import { $ } from '../dom.js';
import * as socket from '../socket.js';
import { toast } from '../toast.js';
import { finishEditing, setReply } from './actions.js';
import { applyComposerState, clearComposerError, showComposerError, startRateLimit } from './composer.js';
import { checkGaps, resume } from './history.js';
import {
  isNearBottom,
  renderAll,
  renderMessages,
  renderOnline,
  renderTyping,
  scrollToBottom,
} from './render.js';
import {
  S,
  bump,
  dropPending,
  ERROR_TEXT,
  friendly,
  HISTORY_PAGE,
  isCurrent,
  isMine,
  state,
  storeMessage,
  TYPING_SHOW_MS,
} from './state.js';
import { dropStreamsAnsweredBy } from './stream.js';
import { joinedRoom } from './unread.js';
import { resendFileMessages } from './uploads.js';

export function onRoomJoined({
  room_id: roomId,
  messages = [],
  online = [],
  online_count: onlineCount,
  presence_seq: presenceSeq,
}) {
  const st = state(roomId);
  const incoming = Array.isArray(messages) ? messages : [];
  const stick = isCurrent(roomId) && isNearBottom();
  if (st.messages.size === 0) st.hasMore = incoming.length >= HISTORY_PAGE;
  for (const m of incoming) storeMessage(st, m);
  dropStreamsAnsweredBy(st, incoming);
  st.loaded = true;
  if (isCurrent(roomId)) joinedRoom(roomId);
  if (isCurrent(roomId) && S.notice?.kind === 'join_wait') {
    clearInterval(joinWaitTicker);
    clearComposerError({ joinWait: true });
  }

  st.online = new Map();
  for (const person of Array.isArray(online) ? online : []) {
    st.online.set(person.user_id, person.display_name);
  }
  // A crowded room names a hundred people; the others are counted, not listed.
  st.onlineCount = Number.isInteger(onlineCount) ? onlineCount : null;
  // What this list was read at: an announcement numbered below it is already in it.
  st.presenceFloor = Number.isInteger(presenceSeq) ? presenceSeq : null;
  st.countSeq = st.presenceFloor;
  st.presenceSeqOf = new Map();
  if (isCurrent(roomId)) {
    renderAll();
    if (stick) scrollToBottom();
  }
  checkGaps(roomId);
}

export function onNewMessage({ room_id: roomId, message }) {
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

export function onAck({ client_msg_id: cmid, message_id: messageId }) {
  const roomId = S.pendingRoom.get(cmid);
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

export function onTyping({ room_id: roomId, user_id: userId, display_name: name, typing }) {
  if (S.me && userId === S.me.id) return;
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

// Announcements of a room overtake one another on the way (each is sent by whoever made its
// change), so each carries the room's presence number, `presence_seq`: a person's change counts
// when it is newer than what this client knows of them, and the count is the one of the highest
// number heard (the server read it after every change numbered below). One without a number is
// taken as it comes.
export function onPresence({
  room_id: roomId,
  user_id: userId,
  display_name: name,
  status,
  online_count: onlineCount,
  presence_seq: presenceSeq,
}) {
  const st = state(roomId);
  const seq = Number.isInteger(presenceSeq) ? presenceSeq : null;
  const known = Math.max(st.presenceSeqOf.get(userId) ?? -1, st.presenceFloor ?? -1);
  if (seq === null || seq > known) {
    if (status === 'online') st.online.set(userId, name);
    else if (status === 'offline') st.online.delete(userId);
    if (seq !== null) st.presenceSeqOf.set(userId, seq);
  }
  // The server's count after this change, not a step: a departure heard twice, or a change it
  // did not announce, does not leave the count wrong.
  if (Number.isInteger(onlineCount) && (seq === null || st.countSeq === null || seq > st.countSeq)) {
    st.onlineCount = onlineCount;
    if (seq !== null) st.countSeq = seq;
  }
  if (isCurrent(roomId)) renderOnline();
}

export function onMessageEdited({ room_id: roomId, message }) {
  if (!message || message.id == null) return;
  const st = state(roomId || message.room_id);
  storeMessage(st, message);
  if (S.editing && S.editing.id === message.id) finishEditing();
  if (isCurrent(roomId || message.room_id)) renderMessages();
}

export function onMessageDeleted({ room_id: roomId, message_id: messageId }) {
  const st = state(roomId);
  const m = st.messages.get(messageId);
  if (m) storeMessage(st, { ...m, deleted: true, body: '', reactions: [] });
  // Replies quoting it now show "message deleted" in their quote.
  for (const other of st.messages.values()) {
    if (other.reply_to && other.reply_to.id === messageId) bump(other.id);
  }
  if (S.editing && S.editing.id === messageId) finishEditing();
  if (S.confirming === messageId) S.confirming = null;
  if (S.picker === messageId) S.picker = null;
  if (st.replyTo && st.replyTo.id === messageId) setReply(null, roomId);
  if (isCurrent(roomId)) renderMessages();
}

export function onReaction({ room_id: roomId, message_id: messageId, reactions }) {
  const st = state(roomId);
  const m = st.messages.get(messageId);
  if (!m || !Array.isArray(reactions)) return;
  storeMessage(st, { ...m, reactions });
  if (isCurrent(roomId)) renderMessages();
}

export function onMessagePinned({ room_id: roomId, message_id: messageId, pinned }) {
  const st = state(roomId);
  const m = st.messages.get(messageId);
  if (!m) return;
  storeMessage(st, { ...m, pinned: pinned || null });
  if (isCurrent(roomId)) renderMessages();
}

export function onMessageUnpinned({ room_id: roomId, message_id: messageId }) {
  const st = state(roomId);
  const m = st.messages.get(messageId);
  if (!m) return;
  storeMessage(st, { ...m, pinned: null });
  if (isCurrent(roomId)) renderMessages();
}

export function onModeration({ room_id: roomId, user_id: userId, action, until }) {
  if (!S.me || userId !== S.me.id) return;
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

export function onSocketError({ code, message, ref, retry_after_ms: retryAfterMs, room_id: roomId }) {
  if (roomId && !ref) {
    joinRefused(roomId, code, message, retryAfterMs);
    return;
  }
  if (ref && S.pendingRoom.has(ref)) {
    const roomId = S.pendingRoom.get(ref);
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
  if (S.editing?.saving && ['forbidden', 'not_found', 'bad_request', 'too_large', 'muted', 'rate_limited'].includes(code)) {
    S.editing.saving = false;
    clearTimeout(S.editing.timer);
    if (S.current) renderMessages();
  }
  if (code === 'rate_limited' && retryAfterMs > 0) {
    startRateLimit(retryAfterMs);
  } else if (code === 'insufficient_funds') {
    showComposerError(ERROR_TEXT.insufficient_funds, { label: 'Open wallet', action: () => S.hooks.openWallet(), kind: code });
  } else if (code === 'onboarding_incomplete') {
    showComposerError(ERROR_TEXT.onboarding_incomplete, { label: 'Finish setup', action: () => S.hooks.finishOnboarding(), kind: code });
  } else if (code === 'muted') {
    // The server's text names the time ("You are muted until 14:05").
    showComposerError(message || ERROR_TEXT.muted, { kind: code });
  } else {
    showComposerError(friendly(code, message), { kind: code || '' });
  }
}

const rejoins = new Map(); // roomId -> { timer, until } of a refused join asked again
let joinWaitTicker = null;

/**
 * A refused `join_room` (the error names its room): the room stays unloaded. One refused because
 * the person read too many pages this minute, or because a dependency was down, is asked for
 * again when the server says; the composer is not locked, since sending was never refused.
 */
function joinRefused(roomId, code, message, retryAfterMs) {
  const again = code === 'rate_limited' || code === 'unavailable';
  if (again && !rejoins.has(roomId)) {
    const wait = code === 'rate_limited' && retryAfterMs > 0 ? retryAfterMs : 3000;
    const timer = setTimeout(() => {
      rejoins.delete(roomId);
      socket.rejoinRoom(roomId);
    }, wait);
    rejoins.set(roomId, { timer, until: Date.now() + wait });
  }
  if (!isCurrent(roomId)) return;
  if (code === 'rate_limited') {
    showJoinWait(roomId, rejoins.get(roomId).until);
  } else {
    showComposerError(friendly(code, message), { kind: again ? 'join_wait' : code || '' });
  }
}

/** "… loads in N s" above the composer, counting down while the room is shown and unloaded. */
function showJoinWait(roomId, until) {
  clearInterval(joinWaitTicker);
  const render = () => {
    const replaced = S.notice && S.notice.kind !== 'join_wait';
    if (!isCurrent(roomId) || replaced || Date.now() >= until) {
      clearInterval(joinWaitTicker);
      return;
    }
    const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
    showComposerError(`Too many rooms opened this minute; this one loads in ${seconds} s.`, { kind: 'join_wait' });
  };
  render();
  joinWaitTicker = setInterval(render, 1000);
}

export function onConnection({ state: connection, resumed, reason }) {
  const banner = $('connection-status');
  clearTimeout(S.connectionTimer);
  if (connection === 'open') {
    S.everConnected = true;
    banner.hidden = true;
    resendFileMessages();
    if (resumed) resume();
    return;
  }
  const show = () => {
    banner.textContent = reason || (S.everConnected ? 'Connection lost. Reconnecting…' : 'Connecting…');
    banner.hidden = false;
  };
  // The server's reason at once; otherwise wait a moment so a quick reconnect does not flash a
  // banner.
  if (reason) show();
  else S.connectionTimer = setTimeout(show, 1000);
}
