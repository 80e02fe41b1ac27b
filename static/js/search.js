// Message search: the box above the room list. `GET /api/search` answers the messages of the
// rooms one is in that hold every word, newest first; a result opens its room at the message
// (`chat.openMessage` loads the page around it, scrolls to it and highlights it).

import { get } from './api.js';
import { $, el } from './dom.js';
import * as chat from './chat.js';
import * as rooms from './rooms.js';

let query = '';
let nextBefore = null;
let busy = false;

export function initSearch() {
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    start($('search-input').value.trim());
  });
  $('search-input').addEventListener('input', () => {
    if ($('search-input').value.trim() === '') clear();
  });
  $('search-input').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      $('search-input').value = '';
      clear();
    }
  });
  $('search-more').addEventListener('click', () => fetchPage());
}

export function clear() {
  query = '';
  nextBefore = null;
  $('search-results').replaceChildren();
  $('search-results').hidden = true;
  $('search-more').hidden = true;
  status('');
}

function status(text) {
  $('search-status').textContent = text;
  $('search-status').hidden = !text;
}

function start(q) {
  clear();
  if (!q) return;
  query = q;
  fetchPage();
}

async function fetchPage() {
  if (busy || !query) return;
  busy = true;
  const asked = query;
  status('Searching…');
  try {
    let path = `/api/search?q=${encodeURIComponent(asked)}&limit=20`;
    if (nextBefore) path += `&before=${encodeURIComponent(nextBefore)}`;
    const page = await get(path);
    if (asked !== query) return;
    const results = Array.isArray(page?.results) ? page.results : [];
    const list = $('search-results');
    for (const hit of results) list.append(resultItem(hit));
    list.hidden = list.childElementCount === 0;
    nextBefore = page?.next_before ?? null;
    $('search-more').hidden = nextBefore == null;
    status(list.childElementCount === 0 ? 'No message has all these words.' : '');
  } catch (err) {
    status(err.code === 'rate_limited' ? 'Too many searches; wait a moment.' : err.message);
  } finally {
    busy = false;
  }
}

function resultItem({ message, room, excerpt }) {
  const author = message.author?.display_name || 'Mathia';
  const when = new Date(message.created_at);
  const button = el(
    'button',
    {
      type: 'button',
      class: 'search-result',
      dataset: { testid: 'search-result', messageId: message.id, roomId: room.id },
      onclick: () => open(room.id, message.id),
    },
    el('span', { class: 'search-result-where' }, `#${room.name} · ${author} · ${when.toLocaleString()}`),
    el('span', { class: 'search-result-excerpt', text: excerpt }),
  );
  return el('li', null, button);
}

async function open(roomId, messageId) {
  try {
    const shown = await chat.openMessage(roomId, messageId, rooms.selectRoom);
    if (!shown) status('That message is no longer there.');
  } catch (err) {
    status(err.message);
  }
}
