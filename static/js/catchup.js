// "Catch me up" (top of the context panel): asks the assistant for a summary of what arrived in
// the current room since your read marker (`POST /api/rooms/{id}/catch-up`). The answer is yours
// alone — shown here, never posted to the room — and does not mark anything read.

import { post } from './api.js';
import { $ } from './dom.js';
import { renderMarkdown } from './markdown.js';

let room = null;
let serial = 0;
let initialized = false;
let plainText = (_roomId, text) => text;

export function initCatchUp(options = {}) {
  if (options.plainText) plainText = options.plainText;
  if (initialized) return;
  initialized = true;
  $('catch-up-button').addEventListener('click', catchUp);
  $('catch-up-close').addEventListener('click', clear);
}

/** The room shown changed: an answer about another room goes. */
export function setRoom(next) {
  if (room?.id === next?.id) return;
  room = next;
  clear();
  $('catch-up-button').disabled = !room;
}

async function catchUp() {
  if (!room) return;
  const asked = room;
  const mine = ++serial;
  const button = $('catch-up-button');
  button.disabled = true;
  button.textContent = 'Catching you up…';
  try {
    const answer = await post(`/api/rooms/${asked.id}/catch-up`, {});
    if (mine !== serial || room?.id !== asked.id) return;
    const n = answer.message_count || 0;
    $('catch-up-meta').textContent = n
      ? `${n} message${n === 1 ? '' : 's'} since you last read${answer.source === 'model' ? ' · summarised by Mathia' : ''}`
      : '';
    $('catch-up-summary').replaceChildren(renderMarkdown(plainText(asked.id, answer.summary || '')));
    $('catch-up-result').hidden = false;
  } catch (err) {
    if (mine !== serial) return;
    $('catch-up-meta').textContent = '';
    $('catch-up-summary').textContent = err.status === 429 ? 'Too many requests — try again in a moment.' : `Could not catch you up: ${err.message}`;
    $('catch-up-result').hidden = false;
  } finally {
    if (mine === serial) {
      button.disabled = !room;
      button.textContent = '✨ Catch me up';
    }
  }
}

function clear() {
  serial++;
  $('catch-up-result').hidden = true;
  $('catch-up-summary').replaceChildren();
  $('catch-up-meta').textContent = '';
  const button = $('catch-up-button');
  button.disabled = !room;
  button.textContent = '✨ Catch me up';
}

export function reset() {
  room = null;
  clear();
}
