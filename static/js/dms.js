// Direct messages: the sidebar's "New message" picker. It lists the people of the current
// room's workspace (or of every workspace the user is in), and `POST /api/dms` gets or creates
// the DM with the one chosen; the room list (rooms.js) shows DMs in their own section.

import { get, post } from './api.js';
import * as rooms from './rooms.js';
import * as session from './session.js';
import { $, el } from './dom.js';

let initialized = false;

export function initDms() {
  if (initialized) return;
  initialized = true;
  $('dm-new').addEventListener('click', () => ($('dm-picker').hidden ? openPicker() : closePicker()));
  $('dm-picker').addEventListener('submit', (event) => {
    event.preventDefault();
    start();
  });
  $('dm-picker').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      closePicker();
      $('dm-new').focus();
    }
  });
}

export function reset() {
  closePicker();
}

/** The workspaces to offer people from: the current room's first, then the others. */
function workspaceIds() {
  const here = rooms.currentRoom()?.workspace_id;
  const all = session.workspaces().map((w) => w.id);
  return here ? [here, ...all.filter((id) => id !== here)] : all;
}

async function openPicker() {
  $('dm-picker').hidden = false;
  $('dm-new').setAttribute('aria-expanded', 'true');
  showError('');
  const select = $('dm-person');
  select.replaceChildren(el('option', { value: '', text: 'Loading people…' }));
  select.disabled = true;
  const me = session.user()?.id;
  const seen = new Set();
  const options = [];
  try {
    const many = session.workspaces().length > 1;
    for (const workspaceId of workspaceIds()) {
      const people = await get(`/api/workspaces/${encodeURIComponent(workspaceId)}/members`);
      const ws = session.workspace(workspaceId);
      for (const person of Array.isArray(people) ? people : []) {
        if (person.id === me || seen.has(person.id)) continue;
        seen.add(person.id);
        const label = many && ws ? `${person.display_name} — ${ws.name}` : person.display_name;
        options.push(el('option', { value: person.id, dataset: { workspaceId }, text: label }));
      }
    }
  } catch (err) {
    showError(err.message);
  }
  select.replaceChildren(...(options.length ? options : [el('option', { value: '', text: 'Nobody else here yet' })]));
  select.disabled = options.length === 0;
  $('dm-start').disabled = options.length === 0;
  if (options.length) select.focus();
}

function closePicker() {
  $('dm-picker').hidden = true;
  $('dm-new').setAttribute('aria-expanded', 'false');
  showError('');
}

async function start() {
  const select = $('dm-person');
  const option = select.selectedOptions[0];
  if (!option?.value) return;
  const button = $('dm-start');
  button.disabled = true;
  try {
    const room = await post('/api/dms', { user_id: option.value, workspace_id: option.dataset.workspaceId });
    rooms.addRoom(room);
    closePicker();
    rooms.selectRoom(room.id);
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

function showError(message) {
  const node = $('dm-error');
  node.textContent = message;
  node.hidden = !message;
}
