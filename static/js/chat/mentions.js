// Mentions. A body names a person as `<@their-id>`, so a rename does not break it; it is shown as
// `@Their current name` (the room's members, `GET /api/rooms/{id}/members`). `@room` mentions
// everyone in the room, and `@mathia` still asks the assistant.
//
// The composer suggests members when `@` is typed (filtered by name; ↑/↓, Enter or Tab, a click;
// Escape closes). A picked person reads `@Name` in the composer and becomes `<@id>` when sent.

import { get } from '../api.js';
import { $, el } from '../dom.js';
import { S } from './state.js';

const TOKEN = /<@([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})>/g;
const SPECIAL = [
  { id: 'room', display_name: 'room', hint: 'everyone in this room' },
  { id: 'mathia', display_name: 'mathia', hint: 'ask the assistant' },
];
const MAX_SUGGESTIONS = 8;

const members = new Map(); // roomId -> Map(id -> display_name)
const loading = new Map(); // roomId -> Promise
const loadedAt = new Map(); // roomId -> when its names arrived
const STALE_MS = 5000; // typing @ fetches the names again when older than this
const asked = new Set(); // `${roomId}:${id}` names looked up again once after a miss
let rerender = () => {};
let suggest = null; // {start, query, items, index}

/** `onNames(roomId)` runs when a room's member names arrive (to re-render its mentions). */
export function initMentions({ onNames }) {
  rerender = onNames;
  const composer = $('composer');
  // Capture on the form, so the list's keys are handled before Enter sends the message.
  $('composer-form').addEventListener('keydown', onKeydown, { capture: true });
  composer.addEventListener('input', updateSuggestions);
  composer.addEventListener('click', updateSuggestions);
  composer.addEventListener('blur', () => setTimeout(closeSuggestions, 150));
}

/** Fetches (again) the room's member names. */
export function loadMembers(roomId, { force = false } = {}) {
  if (!roomId) return Promise.resolve();
  if (loading.has(roomId)) return loading.get(roomId);
  if (!force && members.has(roomId)) return Promise.resolve();
  const p = get(`/api/rooms/${roomId}/members`)
    .then((list) => {
      members.set(roomId, new Map((Array.isArray(list) ? list : []).map((m) => [m.id, m.display_name])));
      loadedAt.set(roomId, Date.now());
      rerender(roomId);
      if (S.current?.id === roomId && document.activeElement === $('composer')) updateSuggestions();
    })
    .catch(() => {})
    .finally(() => loading.delete(roomId));
  loading.set(roomId, p);
  return p;
}

/** The name a mention of `id` shows in a room (`someone` while unknown). */
export function nameOf(roomId, id) {
  const name = members.get(roomId)?.get(id);
  if (name) return name;
  if (S.me && S.me.id === id) return S.me.display_name;
  const key = `${roomId}:${id}`;
  if (roomId && !asked.has(key)) {
    asked.add(key); // someone who joined since, or a room not shown yet: ask once
    loadMembers(roomId, { force: true });
  }
  return 'someone';
}

/** A body with its mentions as `@Name`: for excerpts, notifications and summaries. */
export function plainText(roomId, text) {
  return String(text ?? '').replace(TOKEN, (_, id) => `@${nameOf(roomId, id.toLowerCase())}`);
}

/** Turns `<@id>` in rendered markdown (outside code) into mention chips. */
export function decorate(root, roomId) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const hits = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement?.closest('code, pre')) continue;
    if (node.textContent.includes('<@')) hits.push(node);
  }
  for (const node of hits) {
    const parts = [];
    let last = 0;
    const text = node.textContent;
    // A fresh regex: matchAll starts where the shared one's lastIndex was left.
    for (const match of text.matchAll(new RegExp(TOKEN.source, 'g'))) {
      if (match.index > last) parts.push(text.slice(last, match.index));
      const id = match[1].toLowerCase();
      const me = Boolean(S.me && S.me.id === id);
      parts.push(el('span', { class: `mention${me ? ' mention-me' : ''}`, dataset: { testid: 'mention', userId: id }, text: `@${nameOf(roomId, id)}` }));
      last = match.index + match[0].length;
    }
    if (last < text.length) parts.push(text.slice(last));
    node.replaceWith(...parts);
  }
  return root;
}

/** The composer's text as sent: each picked `@Name` becomes `<@id>`. */
export function toWire(text) {
  const picks = [...(S.mentionPicks || new Map()).entries()].sort((a, b) => b[0].length - a[0].length);
  let out = text;
  for (const [name, id] of picks) {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(`(^|[^\\w<])@${escaped}(?![\\w])`, 'g'), (_, lead) => `${lead}<@${id}>`);
  }
  return out;
}

export function clearPicks() {
  S.mentionPicks = new Map();
  closeSuggestions();
}

export function reset() {
  members.clear();
  loading.clear();
  loadedAt.clear();
  asked.clear();
  clearPicks();
}

// ---- suggestions ------------------------------------------------------------------------------

function candidates(roomId, query) {
  const q = query.toLowerCase();
  const people = [...(members.get(roomId) || new Map()).entries()]
    .filter(([id]) => !(S.me && id === S.me.id))
    .map(([id, name]) => ({ id, display_name: name }));
  const all = [...people, ...SPECIAL];
  const starts = all.filter((m) => m.display_name.toLowerCase().startsWith(q));
  const contains = all.filter((m) => !starts.includes(m) && m.display_name.toLowerCase().includes(q));
  return [...starts, ...contains].slice(0, MAX_SUGGESTIONS);
}

function updateSuggestions() {
  const composer = $('composer');
  if (!S.current || composer.selectionStart !== composer.selectionEnd) return closeSuggestions();
  const before = composer.value.slice(0, composer.selectionStart);
  const match = /(^|\s)@([^\s@<>]{0,30})$/.exec(before);
  if (!match) return closeSuggestions();
  const roomId = S.current.id;
  const age = Date.now() - (loadedAt.get(roomId) || 0);
  const items = candidates(roomId, match[2]);
  // Someone who joined since the names were fetched is not in them: a query that finds nobody
  // fetches them again (at most every half second), and the answer runs this again.
  const nobody = !items.some((m) => !SPECIAL.includes(m));
  loadMembers(roomId, { force: age > STALE_MS || (nobody && age > 500) });
  if (items.length === 0) return closeSuggestions();
  const index = suggest && suggest.query === match[2] ? Math.min(suggest.index, items.length - 1) : 0;
  suggest = { start: before.length - match[2].length - 1, query: match[2], items, index };
  renderSuggestions();
}

function renderSuggestions() {
  const list = $('mention-list');
  const composer = $('composer');
  if (!suggest) {
    list.hidden = true;
    list.replaceChildren();
    composer.removeAttribute('aria-activedescendant');
    composer.setAttribute('aria-expanded', 'false');
    return;
  }
  list.replaceChildren(
    ...suggest.items.map((m, i) =>
      el(
        'li',
        {
          id: `mention-option-${i}`,
          role: 'option',
          class: `mention-option${i === suggest.index ? ' active' : ''}`,
          dataset: { testid: 'mention-option', userId: m.id },
          'aria-selected': String(i === suggest.index),
          // mousedown, not click: the composer must not lose its caret first
          onmousedown: (event) => {
            event.preventDefault();
            pick(i);
          },
        },
        el('span', { class: 'mention-option-name', text: `@${m.display_name}` }),
        m.hint && el('span', { class: 'muted small', text: ` ${m.hint}` }),
      ),
    ),
  );
  list.hidden = false;
  composer.setAttribute('aria-expanded', 'true');
  composer.setAttribute('aria-activedescendant', `mention-option-${suggest.index}`);
}

function closeSuggestions() {
  if (!suggest) return;
  suggest = null;
  renderSuggestions();
}

function pick(i) {
  if (!suggest) return;
  const m = suggest.items[i];
  const composer = $('composer');
  const value = composer.value;
  const end = suggest.start + 1 + suggest.query.length;
  const inserted = `@${m.display_name} `;
  composer.value = value.slice(0, suggest.start) + inserted + value.slice(end);
  const caret = suggest.start + inserted.length;
  composer.setSelectionRange(caret, caret);
  if (!SPECIAL.includes(m)) {
    if (!S.mentionPicks) S.mentionPicks = new Map();
    S.mentionPicks.set(m.display_name, m.id);
  }
  closeSuggestions();
  composer.dispatchEvent(new Event('input'));
  composer.focus();
}

function onKeydown(event) {
  if (!suggest || event.target !== $('composer') || event.isComposing) return;
  const n = suggest.items.length;
  if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    suggest.index = (suggest.index + (event.key === 'ArrowDown' ? 1 : n - 1)) % n;
    renderSuggestions();
  } else if (event.key === 'Enter' || event.key === 'Tab') {
    pick(suggest.index);
  } else if (event.key === 'Escape') {
    closeSuggestions();
  } else {
    return;
  }
  event.preventDefault();
  event.stopPropagation();
}
