// Chat: acting on a message from its menu. "Remember this" keeps the message's text as a note
// of the room (`POST /api/rooms/{id}/notes`); "Remind me about this" opens a small dialog with
// presets (in 1 hour, tomorrow at 9am, another time in words) and sets a reminder that refers to
// the message (`POST /api/reminders {room_id, text, when, message_id}`).

import { post } from '../api.js';
import { $ } from '../dom.js';
import * as session from '../session.js';
import { toast } from '../toast.js';
import { showComposerError } from './composer.js';
import { excerptOf } from './message.js';
import { S } from './state.js';

let target = null; // {roomId, messageId}
let initialized = false;

function initDialog() {
  if (initialized) return;
  initialized = true;
  const dialog = $('remind-dialog');
  $('remind-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save();
  });
  $('remind-close').addEventListener('click', () => dialog.close());
  $('remind-cancel').addEventListener('click', () => dialog.close());
  $('remind-custom').addEventListener('focus', () => {
    $('remind-form').querySelector('[data-testid="remind-preset-custom"]').checked = true;
  });
}

/** "Remember this": the message's text becomes a note of its room. */
export async function rememberMessage(m) {
  const roomId = m.room_id || S.current?.id;
  const text = (m.body || '').trim();
  if (!roomId || !text) return;
  try {
    await post(`/api/rooms/${roomId}/notes`, { text: [...text].slice(0, 2000).join('') });
    toast(excerptOf(text), { title: '📝 Remembered:' });
  } catch (err) {
    showComposerError(`Could not remember that: ${err.message}`);
  }
}

/** "Remind me about this": the dialog, with the message's text as what to be reminded of. */
export function remindAbout(m) {
  initDialog();
  target = { roomId: m.room_id || S.current?.id, messageId: m.id };
  $('remind-text').value = excerptOf(m.body || '');
  $('remind-custom').value = '';
  $('remind-form').querySelector('[data-testid="remind-preset-hour"]').checked = true;
  showError('');
  $('remind-dialog').showModal();
  $('remind-text').focus();
}

async function save() {
  if (!target) return;
  const text = $('remind-text').value.trim();
  const preset = $('remind-form').querySelector('input[name="remind-when"]:checked')?.value ?? '';
  const when = preset || $('remind-custom').value.trim();
  if (!text) {
    showError('Say what to be reminded of.');
    $('remind-text').focus();
    return;
  }
  if (!when) {
    showError('Say when: "in 2 hours", "on Friday at 10".');
    $('remind-custom').focus();
    return;
  }
  const button = $('remind-save');
  button.disabled = true;
  try {
    const reminder = await post('/api/reminders', { room_id: target.roomId, text, when, message_id: target.messageId });
    $('remind-dialog').close();
    toast(`${reminder.text} — ${session.formatTime(reminder.due_at, { weekday: 'short', hour: '2-digit', minute: '2-digit' })}`, {
      title: '⏰ Reminder set:',
    });
    S.hooks.afterReminder?.();
  } catch (err) {
    showError(err.message);
    (err.field === 'text' ? $('remind-text') : $('remind-custom')).focus();
  } finally {
    button.disabled = false;
  }
}

function showError(message) {
  const node = $('remind-error');
  node.textContent = message;
  node.hidden = !message;
}
