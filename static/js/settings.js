// Settings dialog: Profile and Goals (the onboarding answers, saved again with
// `PUT /api/onboarding/profile|goals`; Profile also turns on browser notifications, asking for
// the permission only on that click), Wallet (wallet.js, with the owners' model picker:
// aimodel.js) and Calendly (calendly.js). A native modal <dialog>: Escape
// closes it and focus returns to what opened it.

import { put } from './api.js';
import * as attention from './attention.js';
import * as session from './session.js';
import * as wallet from './wallet.js';
import * as aiModel from './aimodel.js';
import * as mcpServers from './mcpservers.js';
import * as calendly from './calendly.js';
import { fillTimeZones, goalsEditor, showError, clearErrors } from './forms.js';
import { $ } from './dom.js';

const TABS = ['profile', 'goals', 'wallet', 'calendly'];

let active = 'profile';
let goals = null;
let initialized = false;

export function initSettings() {
  if (initialized) return;
  initialized = true;
  goals = goalsEditor({ input: $('set-goal-input'), addButton: $('set-goal-add'), list: $('set-goal-list'), testidPrefix: 'set' });
  const dialog = $('settings-dialog');
  $('settings-close').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    wallet.hide();
    calendly.inSettings.hide();
    aiModel.hide();
    mcpServers.hide();
  });
  // A click on the backdrop (the dialog element itself, outside its content) closes it.
  dialog.addEventListener('click', (event) => {
    if (event.target !== dialog) return;
    const r = dialog.getBoundingClientRect();
    const inside = event.clientX >= r.left && event.clientX <= r.right && event.clientY >= r.top && event.clientY <= r.bottom;
    if (!inside) dialog.close();
  });
  const tabs = [...dialog.querySelectorAll('[role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => select(tab.dataset.panel));
    tab.addEventListener('keydown', (event) => {
      if (!['ArrowLeft', 'ArrowRight'].includes(event.key)) return;
      event.preventDefault();
      const i = tabs.indexOf(tab);
      const next = tabs[(i + (event.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      select(next.dataset.panel);
      next.focus();
    });
  }
  $('settings-profile').addEventListener('submit', (event) => {
    event.preventDefault();
    saveProfile();
  });
  $('notifications-enable').addEventListener('click', async () => {
    await attention.askPermission();
    renderNotifications();
  });
  $('settings-goals').addEventListener('submit', (event) => {
    event.preventDefault();
    saveGoals();
  });
}

export function openSettings(tab = active) {
  const dialog = $('settings-dialog');
  prefill();
  if (!dialog.open) dialog.showModal();
  select(TABS.includes(tab) ? tab : 'profile');
  $(`settings-tab-${active}`).focus();
}

export function closeSettings() {
  const dialog = $('settings-dialog');
  if (dialog.open) dialog.close();
}

function select(tab) {
  active = tab;
  for (const name of TABS) {
    const on = name === tab;
    $(`settings-tab-${name}`).setAttribute('aria-selected', String(on));
    $(`settings-tab-${name}`).tabIndex = on ? 0 : -1;
    $(`settings-${name}`).hidden = !on;
  }
  if (tab === 'wallet') {
    wallet.show();
    aiModel.show();
    mcpServers.show();
  } else {
    wallet.hide();
    aiModel.hide();
    mcpServers.hide();
  }
  if (tab === 'calendly') calendly.inSettings.show();
  else calendly.inSettings.hide();
}

function prefill() {
  const me = session.current() || {};
  const profile = me.profile || {};
  $('set-display-name').value = profile.display_name || me.user?.display_name || '';
  fillTimeZones($('set-timezone'), profile.timezone);
  $('set-role').value = profile.role || '';
  $('set-bio').value = profile.bio || '';
  const g = me.goals || {};
  goals.set(g.goals || []);
  $('set-goal-input').value = '';
  $('set-focus').value = g.focus || '';
  $('set-tone').value = ['concise', 'friendly', 'formal'].includes(g.tone) ? g.tone : 'friendly';
  for (const name of ['profile', 'goals']) {
    clearErrors($(`settings-${name}`), $(`settings-${name}-error`));
    $(`settings-${name}-status`).textContent = '';
  }
  renderNotifications();
}

const NOTIFICATIONS_TEXT = {
  granted: 'On: mentions of you, replies to you and your reminders notify you while Mathia is in the background.',
  denied: 'Blocked in this browser. Allow notifications for this site in the browser’s settings to turn them on.',
  default: 'Off. Get a notification for mentions, replies and reminders while Mathia is in the background.',
  unsupported: 'This browser cannot show notifications.',
};

function renderNotifications() {
  const state = attention.permission();
  $('notifications-status').textContent = NOTIFICATIONS_TEXT[state] || NOTIFICATIONS_TEXT.default;
  $('notifications-enable').hidden = state !== 'default';
}

async function save(name, body) {
  const form = $(`settings-${name}`);
  const general = $(`settings-${name}-error`);
  const status = $(`settings-${name}-status`);
  clearErrors(form, general);
  status.textContent = '';
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const state = await put(`/api/onboarding/${name}`, body);
    if (state && typeof state === 'object' && state.user) session.set(state);
    else await session.refresh();
    status.textContent = 'Saved.';
  } catch (err) {
    showError(form, general, err, 'settings-error');
  } finally {
    button.disabled = false;
  }
}

function saveProfile() {
  const displayName = $('set-display-name').value.trim();
  if (!displayName) {
    showError($('settings-profile'), $('settings-profile-error'), { field: 'display_name', message: 'Please enter your name.' }, 'settings-error');
    return;
  }
  const body = { display_name: displayName, timezone: $('set-timezone').value };
  const role = $('set-role').value.trim();
  const bio = $('set-bio').value.trim();
  if (role) body.role = role;
  if (bio) body.bio = bio;
  save('profile', body);
}

function saveGoals() {
  goals.commit();
  const list = goals.get();
  if (list.length === 0) {
    showError($('settings-goals'), $('settings-goals-error'), { field: 'goals', message: 'Add at least one goal.' }, 'settings-error');
    return;
  }
  const body = { goals: list, tone: $('set-tone').value };
  const focus = $('set-focus').value.trim();
  if (focus) body.focus = focus;
  save('goals', body);
}
