// Chat section 6: the composer — sending, pending/failed messages, typing, and the inline notice
// (rate-limit countdown, mute, out of credits, unfinished onboarding).

import { newId } from '../api.js';
import { $ } from '../dom.js';
import * as session from '../session.js';
import * as socket from '../socket.js';
import { setReply } from './actions.js';
import { clearPicks, toWire } from './mentions.js';
import { isCommand, runCommand } from './commands.js';
import { renderMessages, scrollToBottom } from './render.js';
import { S, BODY_MAX, dropPending, isCurrent, state, TYPING_IDLE_MS, TYPING_SEND_EVERY_MS } from './state.js';

export async function sendCurrent() {
  if (!S.current) return;
  const composer = $('composer');
  let text = composer.value.trim();
  if (isCommand(text)) {
    // A command is run, never posted as it is.
    if (S.commandRunning) return;
    const roomId = S.current.id;
    S.commandRunning = true;
    let outcome;
    try {
      outcome = await runCommand(text, roomId);
    } finally {
      S.commandRunning = false;
    }
    if (outcome === 'keep') return;
    if (composer.value.trim() === text) {
      composer.value = '';
      if (S.current?.id === roomId) state(roomId).draft = '';
      autosize();
      updateCounter();
    }
    if (outcome === 'done') return;
    text = outcome.send;
  } else if (text.startsWith('//')) {
    text = text.slice(1);
  }
  text = toWire(text);
  const length = [...text].length;
  if (length === 0) {
    composer.focus();
    return;
  }
  if (length > BODY_MAX) {
    showComposerError(`Messages are at most ${BODY_MAX.toLocaleString()} characters (this one has ${length.toLocaleString()}).`);
    return;
  }
  if (Date.now() < S.rateLimitUntil) return;
  const roomId = S.current.id;
  const st = state(roomId);
  if (st.mutedUntil > Date.now()) return;

  const cmid = newId();
  const replyTo = st.replyTo;
  st.pending.set(cmid, { client_msg_id: cmid, body: text, status: 'pending', createdAt: Date.now(), replyTo });
  S.pendingRoom.set(cmid, roomId);
  socket.sendMessage(roomId, text, cmid, { replyTo: replyTo?.id ?? null });

  composer.value = '';
  st.draft = '';
  clearPicks();
  setReply(null, roomId);
  autosize();
  updateCounter();
  stopTyping();
  clearComposerError();
  renderMessages();
  scrollToBottom();
  composer.focus();
}

export function retryPending(cmid) {
  const roomId = S.pendingRoom.get(cmid);
  if (!roomId) return;
  if (Date.now() < S.rateLimitUntil) return;
  const p = state(roomId).pending.get(cmid);
  if (!p) return;
  p.status = 'pending';
  p.error = null;
  if (p.frame) socket.send(p.frame); // a file message (sent again on reconnect if offline now)
  else socket.sendMessage(roomId, p.body, cmid, { replyTo: p.replyTo?.id ?? null });
  clearComposerError();
  if (isCurrent(roomId)) renderMessages();
}

export function discardPending(cmid) {
  const roomId = S.pendingRoom.get(cmid);
  if (!roomId) return;
  socket.forgetMessage(cmid);
  dropPending(state(roomId), cmid);
  if (isCurrent(roomId)) renderMessages();
  $('composer').focus();
}

export function onComposerInput() {
  if (!S.current) return;
  if ($('composer').value.trim() === '') {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (S.typingRoom !== S.current.id || now - S.lastTypingSentAt >= TYPING_SEND_EVERY_MS) {
    if (S.typingRoom && S.typingRoom !== S.current.id) stopTyping();
    socket.sendTyping(S.current.id, true);
    S.typingRoom = S.current.id;
    S.lastTypingSentAt = now;
  }
  clearTimeout(S.typingIdleTimer);
  S.typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

export function stopTyping() {
  clearTimeout(S.typingIdleTimer);
  S.typingIdleTimer = null;
  if (S.typingRoom) {
    socket.sendTyping(S.typingRoom, false);
    S.typingRoom = null;
    S.lastTypingSentAt = 0;
  }
}

export function autosize() {
  const composer = $('composer');
  composer.style.height = 'auto';
  composer.style.height = `${Math.min(composer.scrollHeight, 200)}px`;
}

export function updateCounter() {
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
export function applyComposerState() {
  const composer = $('composer');
  const st = S.current ? state(S.current.id) : null;
  const muted = Boolean(st && st.mutedUntil > Date.now());
  composer.disabled = !S.current || muted;
  composer.placeholder = !S.current ? 'Message' : muted ? 'You are muted in this room' : `Message #${S.current.name}`;
  $('send-button').disabled = !S.current || muted || Date.now() < S.rateLimitUntil;
  $('attach-button').disabled = !S.current || muted;
  $('composer-form').dataset.muted = String(muted);
  renderComposerNotice();
}

export function muteText(st) {
  if (st.mutedUntil === Infinity) return 'You are muted in this room.';
  return `You are muted until ${session.formatClock(new Date(st.mutedUntil))}.`;
}

/** The line above the composer: mute first, then the rate-limit countdown, then other errors. */
export function renderComposerNotice() {
  const st = S.current ? state(S.current.id) : null;
  let text = '';
  let action = null;
  if (st && st.mutedUntil > Date.now()) {
    text = muteText(st);
  } else if (Date.now() < S.rateLimitUntil) {
    const left = Math.max(1, Math.ceil((S.rateLimitUntil - Date.now()) / 1000));
    text = `You are sending messages too quickly. You can send again in ${left} s.`;
  } else if (S.notice) {
    text = S.notice.text;
    action = S.notice.action ? S.notice : null;
  }
  const el = $('composer-error');
  const textEl = $('composer-error-text');
  if (textEl.textContent !== text) textEl.textContent = text; // unchanged text is not re-announced
  const button = $('composer-error-action');
  button.hidden = !action;
  button.textContent = action ? action.label : '';
  el.hidden = !text;
  el.dataset.kind = st && st.mutedUntil > Date.now() ? 'muted' : Date.now() < S.rateLimitUntil ? 'rate_limited' : S.notice?.kind || '';
}

export function showComposerError(text, { label = '', action = null, kind = '' } = {}) {
  S.notice = text ? { text, label, action, kind } : null;
  renderComposerNotice();
}

/** Clears the notice of an earlier action; a room still waiting to load keeps saying so. */
export function clearComposerError({ joinWait = false } = {}) {
  if (S.notice?.kind === 'join_wait' && !joinWait) return;
  S.notice = null;
  renderComposerNotice();
}

export function startRateLimit(ms) {
  S.rateLimitUntil = Date.now() + ms;
  clearInterval(S.rateLimitTimer);
  const tick = () => {
    if (Date.now() >= S.rateLimitUntil) {
      clearInterval(S.rateLimitTimer);
      S.rateLimitTimer = null;
      S.rateLimitUntil = 0;
    }
    applyComposerState();
  };
  tick();
  S.rateLimitTimer = setInterval(tick, 250);
}
