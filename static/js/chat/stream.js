// Chat section 3: AI streams. `ai_stream_start` adds a placeholder with Stop, chunks are applied
// in `seq` order (early ones wait in a buffer) and typed out frame by frame, `ai_stream_end` swaps
// in the stored message.

import { el } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import * as socket from '../socket.js';
import { showComposerError } from './composer.js';
import { checkGaps } from './history.js';
import { avatar, toolsEl } from './message.js';
import { isNearBottom, renderMessages, scrollToBottom } from './render.js';
import { S, isCurrent, reducedMotion, state, storeMessage, STREAM_IDLE_MS } from './state.js';

export function onStreamStart({ room_id: roomId, stream_id: streamId, reply_to: replyTo, replaces }) {
  if (streamId == null || S.endedStreams.has(streamId)) return;
  const st = state(roomId);
  if (!st.streams.has(streamId)) st.streams.set(streamId, newStream(roomId, streamId, replyTo, 0, replaces));
  if (isCurrent(roomId)) {
    const stick = isNearBottom();
    renderMessages();
    if (stick) scrollToBottom();
  }
}

export function newStream(roomId, streamId, replyTo, firstSeq, replaces = null) {
  return {
    roomId,
    id: streamId,
    replyTo: replyTo ?? null,
    replaces: replaces ?? null, // a regeneration: the reply it takes the place of
    buffer: new Map(), // seq -> delta, chunks that came early
    next: firstSeq, // the seq we need next
    text: '', // everything received in order
    shown: 0, // how much of `text` is on screen
    partial: firstSeq > 0, // we joined late: the start is missing
    stopping: false,
    resync: false,
    lastAt: Date.now(),
    tools: [], // the calls made so far: {call_id, name, arguments, ok?, summary?}
  };
}

/** The stream an event belongs to; one we never saw start is joined from here on. */
function streamFor(roomId, streamId) {
  const st = state(roomId);
  let s = st.streams.get(streamId);
  if (!s) {
    s = newStream(roomId, streamId, null, 0);
    s.resync = true; // its first chunks may be gone: the chunk handler marks the hole
    st.streams.set(streamId, s);
    if (isCurrent(roomId)) renderMessages();
  }
  s.lastAt = Date.now();
  return s;
}

export function onToolCall({ room_id: roomId, stream_id: streamId, call_id: callId, name, arguments: args }) {
  if (streamId == null || S.endedStreams.has(streamId) || callId == null) return;
  const s = streamFor(roomId, streamId);
  if (!s.tools.some((t) => t.call_id === callId)) s.tools.push({ call_id: callId, name, arguments: args });
  paintTools(s);
}

export function onToolResult({ room_id: roomId, stream_id: streamId, call_id: callId, name, ok, summary }) {
  if (streamId == null || S.endedStreams.has(streamId) || callId == null) return;
  const s = streamFor(roomId, streamId);
  let call = s.tools.find((t) => t.call_id === callId);
  if (!call) {
    call = { call_id: callId, name, arguments: {} };
    s.tools.push(call);
  }
  call.ok = Boolean(ok);
  call.summary = summary || '';
  paintTools(s);
}

/** Redraws a live stream's tool lines, keeping open the ones a person opened. */
function paintTools(s) {
  const node = S.nodes.get(`s:${s.id}`);
  const holder = node?.querySelector('.stream-tools');
  if (!holder) return;
  const open = new Set([...holder.querySelectorAll('details[open]')].map((d) => d.dataset.callId));
  const list = toolsEl(s.tools);
  list.querySelectorAll('details').forEach((d, i) => {
    d.dataset.callId = String(s.tools[i].call_id);
    if (open.has(d.dataset.callId)) d.open = true;
  });
  holder.replaceChildren(...(s.tools.length ? [list] : []));
  if (isCurrent(s.roomId) && isNearBottom()) scrollToBottom();
}

export function onStreamChunk({ room_id: roomId, stream_id: streamId, seq, delta }) {
  if (streamId == null || S.endedStreams.has(streamId) || typeof seq !== 'number') return;
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

export function onStreamEnd({ room_id: roomId, stream_id: streamId, message }) {
  const st = state(roomId || message?.room_id);
  S.endedStreams.add(streamId);
  if (S.endedStreams.size > 500) S.endedStreams.delete(S.endedStreams.values().next().value);
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
export function sweepIdleStreams() {
  for (const [roomId, st] of S.rooms) {
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
export function dropStreamsAnsweredBy(st, messages) {
  if (st.streams.size === 0) return;
  for (const m of messages) {
    if (m?.kind !== 'ai' || !m.reply_to) continue;
    for (const [streamId, s] of st.streams) {
      // A regeneration answers the same question as the reply it replaces: only its end drops it.
      if (s.replaces == null && s.replyTo != null && s.replyTo === m.reply_to.id) {
        st.streams.delete(streamId);
        S.endedStreams.add(streamId);
      }
    }
  }
}

export function ensureAnimation() {
  if (document.hidden || reducedMotion.matches) {
    revealAllStreams();
    return;
  }
  if (S.animFrame == null) S.animFrame = requestAnimationFrame(typeOut);
}

/** One frame of typing out: a character at a time, faster the further behind the screen is. */
export function typeOut() {
  S.animFrame = null;
  if (!S.current) return;
  const st = state(S.current.id);
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
  if (more) S.animFrame = requestAnimationFrame(typeOut);
}

export function revealAllStreams() {
  if (!S.current) return;
  for (const s of state(S.current.id).streams.values()) {
    if (s.shown !== s.text.length) {
      s.shown = s.text.length;
      paintStream(s);
    }
  }
}

export function paintStream(s) {
  const node = S.nodes.get(`s:${s.id}`);
  const bodyEl = node?.querySelector('.message-body');
  if (!bodyEl) return;
  const visible = (s.partial ? '… ' : '') + s.text.slice(0, s.shown);
  bodyEl.replaceChildren(renderMarkdown(visible));
  node.dataset.length = String(s.shown);
}

export function stopStream(s, button) {
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

export function buildStream(s) {
  const stop = el('button', {
    type: 'button',
    class: 'button button-small',
    dataset: { testid: 'ai-stop' },
    text: s.stopping ? 'Stopping…' : 'Stop',
    disabled: s.stopping,
    'aria-label': 'Stop Mathia’s reply',
    onclick: () => stopStream(s, stop),
  });
  const bodyEl = el('div', {
    class: 'message-body stream-body',
    dataset: { testid: 'message-body' },
    'aria-live': 'polite',
    'aria-atomic': 'false',
  });
  const article = el(
    'article',
    {
      class: 'message kind-ai streaming',
      dataset: { testid: 'ai-streaming', streamId: String(s.id), kind: 'ai', length: '0', replaces: s.replaces ? String(s.replaces) : null },
      'aria-label': 'Mathia is replying',
    },
    avatar('Mathia', 'mathia'),
    el(
      'div',
      { class: 'message-main' },
      el(
        'div',
        { class: 'message-meta' },
        el('span', { class: 'message-author', dataset: { testid: 'message-author' }, text: 'Mathia' }),
        el('span', { class: 'tag', text: 'AI' }),
        el('span', { class: 'message-status', text: 'writing…' }),
      ),
      el('div', { class: 'stream-tools' }, ...(s.tools.length ? [toolsEl(s.tools)] : [])),
      bodyEl,
      el('div', { class: 'message-actions' }, stop),
    ),
  );
  if (s.shown > 0) {
    bodyEl.replaceChildren(renderMarkdown((s.partial ? '… ' : '') + s.text.slice(0, s.shown)));
    article.dataset.length = String(s.shown);
  }
  return article;
}
