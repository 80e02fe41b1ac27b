// Chat section 2: resume after a reconnect (and whenever `seq` shows a gap) by fetching what was
// missed with `GET …/messages?after=<last seen id>` until `next_after` is null; everything merges
// by message id, so nothing is lost or shown twice. Also "Load older messages".

import { get } from '../api.js';
import { $ } from '../dom.js';
import { showComposerError } from './composer.js';
import { isNearBottom, renderMessages, scroller, scrollToBottom } from './render.js';
import {
  S,
  CATCHUP_MAX_PAGES,
  CATCHUP_PAGE,
  HISTORY_PAGE,
  isCurrent,
  sortedMessages,
  state,
  storeMessage,
  STREAM_STALE_MS,
} from './state.js';
import { dropStreamsAnsweredBy } from './stream.js';

export function resume() {
  for (const [roomId, st] of S.rooms) {
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
export async function catchUp(roomId, afterId) {
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
export function checkGaps(roomId) {
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

export async function loadOlder() {
  if (!S.current) return;
  const roomId = S.current.id;
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

/**
 * Loads the page of history around a message (`?around=`) into its room's store, so that a
 * search result can be shown in its context even when it is older than the first page. The gap
 * between it and the newest messages is filled by the usual catch-up once the room is joined.
 */
export async function loadAround(roomId, messageId) {
  const st = state(roomId);
  const page = await get(
    `/api/rooms/${encodeURIComponent(roomId)}/messages` +
      `?around=${encodeURIComponent(messageId)}&limit=${HISTORY_PAGE}`,
  );
  const got = Array.isArray(page?.messages) ? page.messages : [];
  for (const m of got) storeMessage(st, m);
  // "Load older" continues from the oldest message held: if that is this page's, it knows.
  if (got.length > 0 && sortedMessages(st)[0]?.id === got[0].id) st.hasMore = page?.next_before != null;
  return got.some((m) => m.id === messageId);
}
