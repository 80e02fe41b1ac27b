// Where you left off: the "New messages" divider before the first message you had not read when
// you opened the room, a "Jump to first unread" control while that divider is above the screen,
// and marking the room read — only while you are reading it: the page visible and focused, and
// the list scrolled to the bottom. The marker itself is attention.js's (`mark_read`).

import * as attention from '../attention.js';
import { $, el } from '../dom.js';
import { isNearBottom, scroller } from './render.js';
import { S, isMine, reducedMotion, sortedMessages, state } from './state.js';

const MARK_EVERY_MS = 300;
let markTimer = null;

export function initUnread() {
  $('jump-unread').addEventListener('click', jumpToFirstUnread);
  scroller().addEventListener('scroll', () => {
    syncJump();
    scheduleMarkRead();
  }, { passive: true });
  window.addEventListener('focus', scheduleMarkRead);
  document.addEventListener('visibilitychange', scheduleMarkRead);
}

/** The room was opened: the divider goes where its marker is now (and stays while it is shown). */
export function openedRoom(roomId) {
  const st = state(roomId);
  st.dividerSeq = attention.known(roomId) ? attention.get(roomId).lastReadSeq : null;
}

/** `room_joined` for the shown room: the divider's place, if it had none yet. */
export function joinedRoom(roomId) {
  const st = state(roomId);
  if (st.dividerSeq == null && attention.known(roomId)) st.dividerSeq = attention.get(roomId).lastReadSeq;
}

/** The divider as a list item, placed before the first unread message of someone else. */
export function dividerItem(st) {
  if (st.dividerSeq == null) return null;
  const first = sortedMessages(st).find((m) => (m.seq ?? 0) > st.dividerSeq && !isMine(m) && !m.deleted);
  if (!first) return null;
  return {
    beforeId: first.id,
    item: {
      key: `divider:${st.dividerSeq}`,
      build: () =>
        el(
          'div',
          { class: 'unread-divider', dataset: { testid: 'unread-divider' }, role: 'separator', 'aria-label': 'New messages' },
          el('span', { text: 'New messages' }),
        ),
    },
  };
}

/** After the list was drawn: show or hide the jump control, and mark read if reading. */
export function afterRender() {
  syncJump();
  scheduleMarkRead();
}

export function scheduleMarkRead() {
  if (markTimer) return;
  markTimer = setTimeout(() => {
    markTimer = null;
    markReadIfReading();
  }, MARK_EVERY_MS);
}

function reading() {
  return Boolean(S.current) && document.visibilityState === 'visible' && document.hasFocus() && isNearBottom();
}

function markReadIfReading() {
  if (!reading()) return;
  const st = state(S.current.id);
  if (!st.loaded) return;
  let top = 0;
  for (const m of st.messages.values()) top = Math.max(top, m.seq ?? 0);
  if (top > 0) attention.markRead(S.current.id, top);
}

function divider() {
  return $('message-list').querySelector('.unread-divider');
}

function syncJump() {
  const button = $('jump-unread');
  const d = divider();
  if (!d) {
    button.hidden = true;
    return;
  }
  const above = d.getBoundingClientRect().bottom < scroller().getBoundingClientRect().top;
  button.hidden = !above;
}

function jumpToFirstUnread() {
  const d = divider();
  if (!d) return;
  d.scrollIntoView({ block: 'start', behavior: reducedMotion.matches ? 'auto' : 'smooth' });
  $('jump-unread').hidden = true;
  const next = d.nextElementSibling;
  if (next?.matches('.message[data-id]')) next.focus({ preventScroll: true });
}

export function reset() {
  clearTimeout(markTimer);
  markTimer = null;
}
