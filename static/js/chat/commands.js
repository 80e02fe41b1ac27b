// Chat: slash commands in the composer. Typing `/` opens a list of commands (filtered as you type;
// arrows move, Enter or Tab picks, a click picks, Escape closes). A composer text that starts
// with `/` is run as a command and never sent to the room as it is; `//` sends the text with one
// `/` less.
//
//   /remind <what and when>  → POST /api/reminders {room_id, text} (the server reads the time)
//   /note <text>             → POST /api/rooms/{id}/notes
//   /summarize [this week]   → sent as "@mathia summarize today": the assistant answers in the room
//   /calendly connect        → the Calendly tab of the context panel
//   /help                    → this list, in the composer's notice

import { post } from '../api.js';
import { $, el } from '../dom.js';
import * as session from '../session.js';
import { toast } from '../toast.js';
import { clearComposerError, showComposerError } from './composer.js';

export const COMMANDS = [
  { name: 'remind', fill: '/remind ', usage: '/remind at 5pm to check emails', hint: 'Set a reminder for yourself' },
  { name: 'note', fill: '/note ', usage: '/note We chose Postgres', hint: 'Save a note in this room' },
  { name: 'summarize', fill: '/summarize', usage: '/summarize', hint: 'Ask Mathia to summarize this room' },
  { name: 'calendly', fill: '/calendly connect', usage: '/calendly connect', hint: 'Connect your Calendly' },
  { name: 'help', fill: '/help', usage: '/help', hint: 'List the commands' },
];

const HELP = `Commands: ${COMMANDS.map((c) => c.usage).join(' · ')}. Start with // to send a message that begins with /.`;

let hooks = { openCalendly: () => {}, afterReminder: () => {} };
let open = false;
let matches = [];
let active = 0;
let picked = null; // the text a pick put in the composer: no list for it

/** `openCalendly()` shows the Calendly panel; `afterReminder()` refreshes the reminders list. */
export function initCommands(next) {
  hooks = { ...hooks, ...next };
  $('command-list').addEventListener('mousedown', (event) => event.preventDefault()); // keep the composer's focus
}

/** Whether the composer's text is a command (and so must not be sent as a message). */
export function isCommand(text) {
  return text.startsWith('/') && !text.startsWith('//');
}

/** Called on every composer input: shows, filters or hides the suggestions. */
export function updateSuggestions() {
  const value = $('composer').value;
  if (value !== picked) picked = null;
  const typing = /^\/[a-z]*$/i.exec(value);
  matches = typing && !picked ? COMMANDS.filter((c) => `/${c.name}`.startsWith(value.toLowerCase())) : [];
  if (!matches.length) {
    closeSuggestions();
    return;
  }
  active = 0;
  open = true;
  render();
}

export function closeSuggestions() {
  open = false;
  matches = [];
  active = 0;
  const list = $('command-list');
  list.hidden = true;
  list.replaceChildren();
  const composer = $('composer');
  composer.setAttribute('aria-expanded', 'false');
  composer.removeAttribute('aria-activedescendant');
}

/** The composer's keydown while suggestions show; true when the key was the list's. */
export function onSuggestionKey(event) {
  if (!open || event.isComposing) return false;
  if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    event.preventDefault();
    active = (active + (event.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length;
    render();
    return 'done';
  }
  if ((event.key === 'Enter' && !event.shiftKey) || event.key === 'Tab') {
    const whole = $('composer').value.toLowerCase() === matches[active].fill;
    if (event.key === 'Enter' && whole) {
      // "/help" typed in full: Enter runs it.
      closeSuggestions();
      return false;
    }
    event.preventDefault();
    pick(matches[active]);
    return 'done';
  }
  if (event.key === 'Escape') {
    event.preventDefault();
    event.stopPropagation();
    closeSuggestions();
    return 'done';
  }
  return false;
}

function render() {
  const list = $('command-list');
  list.replaceChildren(
    ...matches.map((c, i) =>
      el(
        'li',
        {
          id: `command-${c.name}`,
          class: `command-option${i === active ? ' active' : ''}`,
          role: 'option',
          dataset: { testid: 'command-option', command: c.name },
          'aria-selected': String(i === active),
          onclick: () => pick(c),
        },
        el('span', { class: 'command-name', text: c.usage }),
        el('span', { class: 'command-hint muted small', text: c.hint }),
      ),
    ),
  );
  list.hidden = false;
  const composer = $('composer');
  composer.setAttribute('aria-expanded', 'true');
  composer.setAttribute('aria-activedescendant', `command-${matches[active].name}`);
}

function pick(command) {
  const composer = $('composer');
  composer.value = command.fill;
  picked = command.fill;
  closeSuggestions();
  composer.focus();
  composer.setSelectionRange(composer.value.length, composer.value.length);
  composer.dispatchEvent(new Event('input'));
}

/**
 * Runs the command in `text` for the room. Resolves `'done'` (the composer may be cleared),
 * `'keep'` (the text stays for the person to fix) or `{send}`: a message to send instead.
 */
export async function runCommand(text, roomId) {
  closeSuggestions();
  const [, name = '', rest = ''] = /^\/(\S*)\s*([\s\S]*)$/.exec(text) || [];
  const args = rest.trim();
  switch (name.toLowerCase()) {
    case 'remind':
      return remind(args, roomId);
    case 'note':
      return note(args, roomId);
    case 'summarize':
    case 'summarise':
      return { send: `@mathia summarize ${args || 'today'}` };
    case 'calendly':
      if (args && args.toLowerCase() !== 'connect') {
        showComposerError('Try /calendly connect.');
        return 'keep';
      }
      clearComposerError();
      hooks.openCalendly();
      return 'done';
    case 'help':
      showComposerError(HELP, { kind: 'help' });
      return 'done';
    default:
      showComposerError(`There is no /${name} command. ${HELP}`, { kind: 'help' });
      return 'keep';
  }
}

async function remind(args, roomId) {
  if (!args) {
    showComposerError('Say what and when: /remind at 5pm to check emails, or /remind me to stretch in 10 mins.');
    return 'keep';
  }
  const text = args.replace(/^me\b\s*/i, '');
  try {
    const reminder = await post('/api/reminders', { room_id: roomId, text });
    clearComposerError();
    toast(`${reminder.text} — ${session.formatTime(reminder.due_at, { weekday: 'short', hour: '2-digit', minute: '2-digit' })}`, {
      title: '⏰ Reminder set:',
    });
    hooks.afterReminder();
    return 'done';
  } catch (err) {
    showComposerError(err.message);
    return 'keep';
  }
}

async function note(args, roomId) {
  if (!args) {
    showComposerError('Say what to note: /note We chose Postgres.');
    return 'keep';
  }
  try {
    await post(`/api/rooms/${roomId}/notes`, { text: args });
    clearComposerError();
    toast(args, { title: '📝 Noted:' });
    return 'done';
  } catch (err) {
    showComposerError(err.message);
    return 'keep';
  }
}
