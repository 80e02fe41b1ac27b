// Reminders panel: the user's upcoming reminders (`GET /api/reminders`, pending ones, soonest
// first, due times in the user's time zone), each cancellable (`DELETE /api/reminders/{id}`).
//
// A `reminder` event (one came due) shows a toast and refreshes the list. Reminders are often set
// by chatting ("@mathia remind me to …"), so the list is also refreshed when an AI reply ends.

import { get, del, asList } from './api.js';
import * as socket from './socket.js';
import * as session from './session.js';
import { toast } from './toast.js';
import { $, el } from './dom.js';

const AFTER_AI_REFRESH_MS = [0, 1500, 4000];

let list = [];
let loaded = false;
let loading = false;
let again = false;
let error = '';
let visible = false;
let stale = true;
let initialized = false;
let afterAiTimers = [];
let tickTimer = null;

export function initReminders() {
  if (initialized) return;
  initialized = true;
  socket.on('reminder', ({ reminder }) => {
    if (reminder) {
      toast(reminder.text || 'Reminder', { title: '⏰ Reminder:', timeout: 15000 });
      list = list.filter((r) => r.id !== reminder.id);
    }
    invalidate();
  });
  socket.on('ai_stream_end', () => {
    // The reply may have set a reminder; the server may store it just after the stream ends.
    for (const t of afterAiTimers) clearTimeout(t);
    afterAiTimers = AFTER_AI_REFRESH_MS.map((ms) => setTimeout(invalidate, ms));
  });
  socket.on('connection', ({ state, resumed }) => {
    if (state === 'open' && resumed) invalidate();
  });
}

export function show() {
  visible = true;
  render();
  refresh();
  clearInterval(tickTimer);
  tickTimer = setInterval(render, 30_000); // keeps "in 5 min" current
}

export function hide() {
  visible = false;
  clearInterval(tickTimer);
  tickTimer = null;
}

export function reset() {
  hide();
  for (const t of afterAiTimers) clearTimeout(t);
  afterAiTimers = [];
  list = [];
  loaded = false;
  stale = true;
  error = '';
  $('reminder-list').replaceChildren();
}

export function invalidate() {
  stale = true;
  if (visible) refresh();
}

async function refresh() {
  if (loading) {
    again = true;
    return;
  }
  loading = true;
  try {
    const all = asList(await get('/api/reminders'), 'reminders');
    list = all.filter((r) => r && r.id != null && (r.status == null || r.status === 'pending'));
    loaded = true;
    stale = false;
    error = '';
  } catch (err) {
    error = err.message;
  } finally {
    loading = false;
  }
  if (visible) render();
  if (again) {
    again = false;
    refresh();
  }
}

function render() {
  const ul = $('reminder-list');
  const status = $('reminders-status');
  const upcoming = [...list].sort((a, b) => String(a.due_at).localeCompare(String(b.due_at)));
  if (!loaded) status.textContent = error ? `Could not load reminders: ${error}` : 'Loading reminders…';
  else if (error) status.textContent = `Could not refresh reminders: ${error}`;
  else status.textContent = upcoming.length ? `Times in ${session.timeZone().replace(/_/g, ' ')}.` : 'No upcoming reminders.';
  ul.replaceChildren(...upcoming.map(buildReminder));
}

function buildReminder(reminder) {
  const date = new Date(reminder.due_at);
  const time = el('time', {
    dataset: { testid: 'reminder-due' },
    dateTime: Number.isNaN(date.getTime()) ? null : date.toISOString(),
    text: session.formatTime(reminder.due_at, {
      weekday: 'short',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
    }),
  });
  const cancel = el('button', {
    type: 'button',
    class: 'button button-quiet item-action',
    dataset: { testid: 'reminder-cancel' },
    text: 'Cancel',
    'aria-label': `Cancel reminder: ${reminder.text || ''}`.slice(0, 120),
    onclick: () => cancelReminder(reminder, cancel),
  });
  return el(
    'li',
    { class: 'item reminder', dataset: { testid: 'reminder', reminderId: String(reminder.id) } },
    el('p', { class: 'item-text', dataset: { testid: 'reminder-text' }, text: reminder.text || '' }),
    el('p', { class: 'item-meta small' }, time, el('span', { class: 'muted', text: ` · ${session.relative(reminder.due_at)}` })),
    cancel,
  );
}

async function cancelReminder(reminder, button) {
  button.disabled = true;
  try {
    await del(`/api/reminders/${encodeURIComponent(reminder.id)}`);
  } catch (err) {
    if (err.status !== 404) {
      button.disabled = false;
      $('reminders-status').textContent = `Could not cancel: ${err.message}`;
      return;
    }
  }
  list = list.filter((r) => r.id !== reminder.id);
  render();
  $('ctx-tab-reminders').focus();
}
