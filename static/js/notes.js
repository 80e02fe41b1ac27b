// Notes panel: the notes Mathia keeps for the current room.
//
// `GET /api/rooms/{id}/notes` lists them (the user's high-priority notes from other rooms come
// along with `shared: true`); the form adds one (`POST`, `{text, priority, kind}`), each note can
// be deleted (`DELETE /api/notes/{id}`). `note_added` / `note_deleted` keep every open copy live.

import { get, post, del, asList } from './api.js';
import * as socket from './socket.js';
import * as session from './session.js';
import { icon } from './icons.js';
import { $, el } from './dom.js';

const KIND_LABEL = { decision: 'Decision', action_item: 'Action item', insight: 'Insight', reference: 'Reference' };

/** roomId -> {notes: Map(id -> note), loaded, loading, error, stale} */
const cache = new Map();
let room = null;
let visible = false;
let initialized = false;
/** The note a reply's source chip pointed at: marked and scrolled to when it is on screen. */
let highlighted = null;

export function initNotes() {
  if (initialized) return;
  initialized = true;
  $('note-form').addEventListener('submit', (event) => {
    event.preventDefault();
    addNote();
  });
  $('note-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      addNote();
    }
  });
  socket.on('note_added', ({ room_id: roomId, note }) => {
    if (!note || note.id == null) return;
    const entry = cache.get(roomId || note.room_id);
    if (entry?.loaded) entry.notes.set(note.id, note);
    // A high-priority note of mine also shows (shared) in my other rooms: reload those lazily.
    if (note.priority === 'high') {
      for (const [id, other] of cache) if (id !== (roomId || note.room_id)) other.stale = true;
    }
    if (visible && room && room.id === (roomId || note.room_id)) render();
    else if (visible) refreshIfStale();
  });
  socket.on('note_deleted', ({ note_id: noteId }) => {
    let changed = false;
    for (const entry of cache.values()) changed = entry.notes.delete(noteId) || changed;
    if (visible && changed) render();
  });
  socket.on('connection', ({ state, resumed }) => {
    // Events may have been missed while disconnected.
    if (state === 'open' && resumed) {
      for (const entry of cache.values()) entry.stale = true;
      if (visible) refreshIfStale();
    }
  });
}

export function show(next) {
  visible = true;
  room = next;
  $('notes-room-name').textContent = room ? `#${room.name}` : 'this room';
  const disabled = !room;
  for (const id of ['note-input', 'note-kind', 'note-priority', 'note-add']) $(id).disabled = disabled;
  showError('');
  render();
  if (room) refreshIfStale(true);
}

/** Marks a note (a reply's source) in the panel, and brings it into view once it is listed. */
export function highlight(noteId) {
  highlighted = noteId == null ? null : String(noteId);
  if (visible) {
    render();
    if (room) refreshIfStale();
  }
}

export function hide() {
  visible = false;
}

export function reset() {
  cache.clear();
  room = null;
  visible = false;
  $('note-list').replaceChildren();
  $('note-input').value = '';
  showError('');
}

function entryFor(roomId) {
  let entry = cache.get(roomId);
  if (!entry) {
    entry = { notes: new Map(), loaded: false, loading: false, error: '', stale: true };
    cache.set(roomId, entry);
  }
  return entry;
}

async function refreshIfStale(force = false) {
  if (!room) return;
  const roomId = room.id;
  const entry = entryFor(roomId);
  if (entry.loading) return;
  if (!force && entry.loaded && !entry.stale) return;
  entry.loading = true;
  if (!entry.loaded) render();
  try {
    const list = asList(await get(`/api/rooms/${encodeURIComponent(roomId)}/notes`), 'notes');
    entry.notes = new Map(list.filter((n) => n && n.id != null).map((n) => [n.id, n]));
    entry.loaded = true;
    entry.stale = false;
    entry.error = '';
  } catch (err) {
    entry.error = err.message;
  } finally {
    entry.loading = false;
  }
  if (visible && room?.id === roomId) render();
}

function sorted(notes) {
  return [...notes.values()].sort((a, b) => {
    const pa = a.priority === 'high' ? 0 : 1;
    const pb = b.priority === 'high' ? 0 : 1;
    if (pa !== pb) return pa - pb;
    return String(b.created_at || '').localeCompare(String(a.created_at || ''));
  });
}

function render() {
  const list = $('note-list');
  const status = $('notes-status');
  if (!room) {
    list.replaceChildren();
    status.textContent = 'Open a room to see its notes.';
    return;
  }
  const entry = entryFor(room.id);
  const notes = sorted(entry.notes);
  if (!entry.loaded) status.textContent = entry.error ? `Could not load notes: ${entry.error}` : 'Loading notes…';
  else if (entry.error) status.textContent = `Could not refresh notes: ${entry.error}`;
  else status.textContent = notes.length ? '' : 'No notes yet. Mathia adds decisions and action items as you chat, or add one above.';

  list.replaceChildren(...notes.map(buildNote));
  const marked = highlighted && list.querySelector('[data-highlighted="true"]');
  if (marked) marked.scrollIntoView({ block: 'nearest' });
}

function buildNote(note) {
  const who = note.author?.display_name || 'Mathia';
  const when = note.created_at ? session.formatTime(note.created_at, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : '';
  const li = el(
    'li',
    {
      class: `item note${note.priority === 'high' ? ' high' : ''}${note.shared ? ' shared' : ''}${
        highlighted === String(note.id) ? ' highlighted' : ''
      }`,
      dataset: {
        testid: 'note',
        noteId: String(note.id),
        priority: note.priority || 'normal',
        kind: note.kind || '',
        shared: String(Boolean(note.shared)),
        highlighted: highlighted === String(note.id) ? 'true' : null,
      },
    },
    el(
      'div',
      { class: 'item-head' },
      note.priority === 'high' && el('span', { class: 'badge badge-high', dataset: { testid: 'note-high' }, text: 'High priority' }),
      note.kind ? el('span', { class: 'badge', text: KIND_LABEL[note.kind] || note.kind }) : null,
      note.shared && el('span', { class: 'badge badge-shared', dataset: { testid: 'note-shared' }, text: 'from another room' }),
    ),
    el('p', { class: 'item-text', dataset: { testid: 'note-text' }, text: note.text || '' }),
    el('p', { class: 'item-meta muted small', text: [who, when].filter(Boolean).join(' · ') }),
  );
  if (!note.shared) {
    const remove = el(
      'button',
      {
        type: 'button',
        class: 'icon-button item-action',
        dataset: { testid: 'note-delete' },
        'aria-label': `Delete note: ${note.text || ''}`.slice(0, 120),
        onclick: () => deleteNote(note, remove),
      },
      icon('trash'),
    );
    li.append(remove);
  }
  return li;
}

async function addNote() {
  if (!room) return;
  const roomId = room.id;
  const input = $('note-input');
  const text = input.value.trim();
  if (!text) {
    showError('Write the note first.');
    input.focus();
    return;
  }
  showError('');
  const button = $('note-add');
  button.disabled = true;
  try {
    const body = { text, priority: $('note-priority').value, kind: $('note-kind').value };
    const note = await post(`/api/rooms/${encodeURIComponent(roomId)}/notes`, body);
    input.value = '';
    $('note-priority').value = 'normal';
    const entry = entryFor(roomId);
    if (note && note.id != null) entry.notes.set(note.id, note);
    if (visible && room?.id === roomId) render();
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = !room;
    input.focus();
  }
}

async function deleteNote(note, button) {
  button.disabled = true;
  try {
    await del(`/api/notes/${encodeURIComponent(note.id)}`);
    for (const entry of cache.values()) entry.notes.delete(note.id);
    render();
    $('note-input').focus();
  } catch (err) {
    button.disabled = false;
    if (err.status === 404) {
      for (const entry of cache.values()) entry.notes.delete(note.id);
      render();
      return;
    }
    showError(err.message);
  }
}

function showError(message) {
  const node = $('note-error');
  node.textContent = message;
  node.hidden = !message;
}
