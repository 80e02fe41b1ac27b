// Chat pane: the message list of the current room, the composer, typing and presence, AI replies.
//
// Sections:
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
//      upload itself and the checks are in files.js, the attachment DOM in attachment.js.
//
// Bodies are markdown rendered by markdown.js into sanitised DOM; everything else is textContent.
//
// The sections live in chat/: state.js (all mutable state, the per-room store and constants),
// events.js (1), history.js (2, and loading older pages), stream.js (3), render.js and
// message.js (4), actions.js (5), composer.js (6), uploads.js (7), and for attention: mentions.js
// (the `@` suggestions and how mentions read) and unread.js (the "New messages" divider, "Jump
// to first unread", marking read while reading). This file wires them up and keeps the pane's
// public entry points.

import { $ } from './dom.js';
import * as socket from './socket.js';
import { renderReplyBanner, setReply } from './chat/actions.js';
import {
  applyComposerState,
  autosize,
  onComposerInput,
  renderComposerNotice,
  sendCurrent,
  stopTyping,
  updateCounter,
} from './chat/composer.js';
import { closeSuggestions, initCommands, onSuggestionKey, updateSuggestions } from './chat/commands.js';
import {
  onAck,
  onConnection,
  onMessageDeleted,
  onMessageEdited,
  onMessagePinned,
  onMessageUnpinned,
  onModeration,
  onNewMessage,
  onPresence,
  onReaction,
  onRoomJoined,
  onSocketError,
  onTyping,
} from './chat/events.js';
import { loadAround, loadOlder } from './chat/history.js';
import * as mentions from './chat/mentions.js';
import { isNearBottom, onListKeydown, renderAll, renderMessages, scroller, setActiveMessage } from './chat/render.js';
import { S, bump, isCurrent, state } from './chat/state.js';
import * as unread from './chat/unread.js';
import {
  onStreamChunk,
  onStreamEnd,
  onStreamStart,
  onToolCall,
  onToolResult,
  revealAllStreams,
  sweepIdleStreams,
} from './chat/stream.js';
import { initFiles, renderUploads, showDropZone } from './chat/uploads.js';

export function initChat(options = {}) {
  S.hooks = { ...S.hooks, ...options };
  if (S.initialized) return;
  S.initialized = true;

  socket.on('room_joined', onRoomJoined);
  socket.on('new_message', onNewMessage);
  socket.on('ack', onAck);
  socket.on('typing', onTyping);
  socket.on('presence_update', onPresence);
  socket.on('message_edited', onMessageEdited);
  socket.on('message_deleted', onMessageDeleted);
  socket.on('reaction', onReaction);
  socket.on('message_pinned', onMessagePinned);
  socket.on('message_unpinned', onMessageUnpinned);
  socket.on('ai_stream_start', onStreamStart);
  socket.on('ai_stream_chunk', onStreamChunk);
  socket.on('ai_stream_end', onStreamEnd);
  socket.on('ai_tool_call', onToolCall);
  socket.on('ai_tool_result', onToolResult);
  socket.on('moderation', onModeration);
  socket.on('error', onSocketError);
  socket.on('connection', onConnection);

  const composer = $('composer');
  composer.addEventListener('keydown', (event) => {
    if (onSuggestionKey(event)) return;
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendCurrent();
    } else if (event.key === 'Escape' && S.current && state(S.current.id).replyTo) {
      event.preventDefault();
      event.stopPropagation();
      setReply(null);
    }
  });
  composer.addEventListener('input', () => {
    updateSuggestions();
    autosize();
    updateCounter();
    onComposerInput();
  });
  $('composer-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sendCurrent();
  });
  $('composer-error-action').addEventListener('click', () => S.notice?.action?.());
  $('reply-cancel').addEventListener('click', () => {
    setReply(null);
    $('composer').focus();
  });
  $('load-older').addEventListener('click', loadOlder);
  scroller().addEventListener('scroll', () => {
    S.pinned = isNearBottom();
  }, { passive: true });
  initFiles();
  mentions.initMentions({
    onNames: (roomId) => {
      for (const m of state(roomId).messages.values()) {
        if (/<@/.test(m.body || '') || /<@/.test(m.reply_to?.excerpt || '')) bump(m.id);
      }
      if (isCurrent(roomId)) renderMessages();
    },
  });
  unread.initUnread();
  initCommands({ openCalendly: () => S.hooks.openCalendly?.(), afterReminder: () => S.hooks.afterReminder?.() });
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
  S.me = user;
}

/** A body with its mentions as `@Name` (for notifications). */
export function plainText(roomId, text) {
  return mentions.plainText(roomId, text);
}

/** Shows a room in the pane (the socket is already joined via rooms.js; join again to refresh). */
export function showRoom(room) {
  if (S.current && S.current.id !== room.id) {
    stopTyping();
    state(S.current.id).draft = $('composer').value;
  }
  const switching = !S.current || S.current.id !== room.id;
  S.current = room;
  const st = state(room.id);

  $('room-title').textContent = room.name;
  $('chat-view').hidden = false;
  $('no-room').hidden = true;
  if (switching) {
    closeSuggestions();
    $('composer').value = st.draft || '';
    autosize();
    updateCounter();
    S.notice = null;
    S.editing = null;
    S.confirming = null;
    S.picker = null;
    S.activeMessageId = null;
    $('message-list').replaceChildren();
    S.nodes.clear();
    mentions.clearPicks();
    unread.openedRoom(room.id);
  }
  mentions.loadMembers(room.id, { force: true });
  socket.joinRoom(room.id);
  applyComposerState();
  renderReplyBanner();
  renderUploads();
  renderAll({ scroll: 'bottom' });
  if (window.matchMedia('(min-width: 769px)').matches && !$('composer').disabled && !typingElsewhere()) {
    $('composer').focus();
  }
}

/**
 * True while focus is in a text field outside the composer: a room that opens (or is shown again)
 * must not take the keystrokes of someone typing a room name, an invite code or a search.
 */
function typingElsewhere() {
  const el = document.activeElement;
  if (!el || el === $('composer')) return false;
  if (el.isContentEditable || el.tagName === 'TEXTAREA') return true;
  return el.tagName === 'INPUT' && !['button', 'submit', 'reset', 'checkbox', 'radio', 'file'].includes(el.type);
}

/**
 * Shows a message in its room's context: the history page around it is loaded, the room opened
 * (`select`, which ends in `showRoom`), and the message scrolled to and highlighted.
 */
export async function openMessage(roomId, messageId, select) {
  await loadAround(roomId, messageId);
  select(roomId);
  const list = $('message-list');
  for (const old of list.querySelectorAll('.message-highlight')) old.classList.remove('message-highlight');
  const node = list.querySelector(`.message[data-id="${CSS.escape(messageId)}"]`);
  if (!node) return false;
  node.classList.add('message-highlight');
  node.scrollIntoView({ block: 'center' });
  S.pinned = false;
  return true;
}

export function showNoRoom() {
  S.current = null;
  $('room-title').textContent = 'No room yet';
  $('chat-view').hidden = true;
  $('no-room').hidden = false;
  $('online-list').replaceChildren();
  $('online-count').textContent = '';
  $('typing-indicator').textContent = '';
}

export function reset() {
  stopTyping();
  mentions.reset();
  unread.reset();
  for (const st of S.rooms.values()) {
    for (const t of st.typing.values()) clearTimeout(t.timer);
    clearTimeout(st.muteTimer);
  }
  S.rooms.clear();
  S.pendingRoom.clear();
  S.nodes.clear();
  S.revisions.clear();
  S.endedStreams.clear();
  if (S.editing) clearTimeout(S.editing.timer);
  S.editing = null;
  S.confirming = null;
  S.picker = null;
  S.activeMessageId = null;
  S.current = null;
  S.me = null;
  S.everConnected = false;
  clearTimeout(S.connectionTimer);
  clearInterval(S.rateLimitTimer);
  S.rateLimitUntil = 0;
  S.notice = null;
  if (S.animFrame != null) cancelAnimationFrame(S.animFrame);
  S.animFrame = null;
  for (const u of S.uploads.values()) u.handle?.abort();
  S.uploads.clear();
  renderUploads();
  showDropZone(false);
  $('message-list').replaceChildren();
  $('composer').value = '';
  closeSuggestions();
  $('connection-status').hidden = true;
  renderComposerNotice();
  renderReplyBanner();
  showNoRoom();
}
