// Chat section 4: rendering. Items are reconciled by key so unchanged nodes are reused; a
// message's key carries a revision, so an edit, delete or reaction rebuilds just that node. Also
// the roving focus in the list, who is online, who is typing, and scrolling.

import { $, el } from '../dom.js';
import { buildMessage, buildPending } from './message.js';
import { S, NEAR_BOTTOM_PX, reducedMotion, sortedMessages, state } from './state.js';
import { buildStream } from './stream.js';
import { afterRender, dividerItem } from './unread.js';

export function renderAll({ scroll } = {}) {
  renderMessages();
  renderOnline();
  renderTyping();
  if (scroll === 'bottom') scrollToBottom();
}

export function messageKey(m) {
  let key = `m:${m.id}:${S.revisions.get(m.id)?.[0] ?? 0}`;
  if (S.editing && S.editing.id === m.id) key += S.editing.saving ? ':es' : ':e';
  if (S.confirming === m.id) key += ':d';
  if (S.picker === m.id) key += ':p';
  return key;
}

export function orderedItems(st) {
  const messages = sortedMessages(st);
  const streams = [...st.streams.values()];
  const pending = [...st.pending.values()].sort((a, b) => a.createdAt - b.createdAt);
  // A regeneration streams in the place of the reply it replaces.
  const replacing = new Map(streams.filter((s) => s.replaces != null && st.messages.has(s.replaces)).map((s) => [s.replaces, s]));
  const streamItem = (s) => ({ key: `s:${s.id}`, build: () => buildStream(s) });
  const divider = dividerItem(st);
  const items = [];
  for (const m of messages) {
    if (divider && divider.beforeId === m.id) items.push(divider.item);
    items.push(replacing.has(m.id) ? streamItem(replacing.get(m.id)) : { key: messageKey(m), id: m.id, build: () => buildMessage(m, st) });
  }
  return [
    ...items,
    ...streams.filter((s) => !replacing.has(s.replaces)).map(streamItem),
    ...pending.map((p) => ({ key: `p:${p.client_msg_id}:${p.status}`, build: () => buildPending(p) })),
  ];
}

export function renderMessages() {
  const list = $('message-list');
  const st = S.current ? state(S.current.id) : null;
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
    let node = S.nodes.get(item.key);
    if (!node) {
      node = item.build();
      S.nodes.set(item.key, node);
    }
    if (node === cursor) {
      cursor = cursor.nextSibling;
    } else {
      list.insertBefore(node, cursor);
    }
  }
  for (const [key, node] of S.nodes) {
    if (!seen.has(key)) {
      node.remove();
      S.nodes.delete(key);
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
  afterRender();
}

/** One message takes Tab focus in the list; arrows move between messages (roving tabindex). */
export function syncRovingFocus() {
  const list = $('message-list');
  const articles = [...list.querySelectorAll(':scope > .message[data-id]')];
  if (articles.length === 0) return;
  let active = S.activeMessageId ? articles.find((a) => a.dataset.id === S.activeMessageId) : null;
  if (!active) active = articles[articles.length - 1];
  for (const a of articles) setTabbable(a, a === active);
}

export function setTabbable(article, on) {
  article.tabIndex = on ? 0 : -1;
  for (const b of article.querySelectorAll('button, textarea')) b.tabIndex = on ? 0 : -1;
}

export function setActiveMessage(id) {
  if (S.activeMessageId === id) return;
  S.activeMessageId = id;
  syncRovingFocus();
}

export function onListKeydown(event) {
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

export function jumpTo(id) {
  const node = $('message-list').querySelector(`.message[data-id="${CSS.escape(String(id))}"]`);
  if (!node) return;
  node.scrollIntoView({ block: 'center', behavior: reducedMotion.matches ? 'auto' : 'smooth' });
  node.classList.remove('highlight');
  void node.offsetWidth; // restart the highlight animation
  node.classList.add('highlight');
  setActiveMessage(String(id));
  node.focus({ preventScroll: true });
}

export function focusIn(id, selector) {
  const holder = $('message-list').querySelector(`.message[data-id="${CSS.escape(String(id))}"]`);
  holder?.querySelector(selector)?.focus();
}

export function renderOnline() {
  const list = $('online-list');
  list.replaceChildren();
  if (!S.current) return;
  const st = state(S.current.id);
  const people = [...st.online.entries()].sort((a, b) => String(a[1]).localeCompare(String(b[1])));
  for (const [userId, name] of people) {
    list.append(
      el(
        'li',
        { class: 'online-user', dataset: { testid: 'online-user', userId } },
        el('span', { class: 'dot', 'aria-hidden': 'true' }),
        el('span', { text: S.me && userId === S.me.id ? `${name} (you)` : name }),
      ),
    );
  }
  // A crowded room names a hundred people; the others are counted, not listed.
  const unlisted = Number.isInteger(st.onlineCount) ? Math.max(0, st.onlineCount - people.length) : 0;
  if (unlisted > 0) {
    list.append(el('li', { class: 'online-more', dataset: { testid: 'online-more' }, text: `and ${unlisted} more` }));
  }
  const count = people.length + unlisted;
  $('online-count').textContent = count ? `${count} online` : '';
}

export function renderTyping() {
  const node = $('typing-indicator');
  if (!S.current) {
    node.textContent = '';
    return;
  }
  const names = [...state(S.current.id).typing.values()].map((t) => t.name);
  if (names.length === 0) node.textContent = '';
  else if (names.length === 1) node.textContent = `${names[0]} is typing…`;
  else if (names.length === 2) node.textContent = `${names[0]} and ${names[1]} are typing…`;
  else node.textContent = 'Several people are typing…';
}

export function scroller() {
  return $('message-scroller');
}

export function isNearBottom() {
  const s = scroller();
  return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
}

export function scrollToBottom() {
  const s = scroller();
  s.scrollTop = s.scrollHeight;
  S.pinned = true;
}

/** A thumbnail grew: stay at the bottom if that is where the reader was. */
export function keepPinned() {
  if (S.pinned) scrollToBottom();
}
