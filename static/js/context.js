// The right-hand context panel: its tabs (Notes, Reminders, Calendly, Moderation), opening and
// closing it (a column on wide screens, a drawer at ≤ 900 px), and telling the panel modules when
// they are on screen and which room is current.
//
// A panel module is `{show(room), hide()}`: `show` is called when its tab becomes visible and
// again whenever the room changes while it is visible.

import { $ } from './dom.js';

const OPEN_KEY = 'mathia.context';
const narrow = window.matchMedia('(max-width: 900px)');

let panels = {};
let active = 'notes';
let open = false;
let room = null;
let moderationAvailable = false;
let initialized = false;

export function initContext(modules) {
  panels = modules;
  if (initialized) return;
  initialized = true;
  $('notes-toggle').addEventListener('click', () => (open ? close({ focusToggle: true }) : openPanel(active)));
  $('context-close').addEventListener('click', () => close({ focusToggle: true }));
  $('context-backdrop').addEventListener('click', () => close({ focusToggle: true }));
  const tabs = [...document.querySelectorAll('#context-panel [role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => select(tab.dataset.panel, { focusTab: false }));
    tab.addEventListener('keydown', (event) => {
      if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) return;
      event.preventDefault();
      const visible = tabs.filter((t) => !t.hidden);
      const i = visible.indexOf(tab);
      let j = i;
      if (event.key === 'ArrowLeft') j = (i - 1 + visible.length) % visible.length;
      if (event.key === 'ArrowRight') j = (i + 1) % visible.length;
      if (event.key === 'Home') j = 0;
      if (event.key === 'End') j = visible.length - 1;
      select(visible[j].dataset.panel, { focusTab: true });
    });
  }
  $('context-panel').addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !event.defaultPrevented) {
      event.preventDefault();
      close({ focusToggle: true });
    }
  });
  narrow.addEventListener('change', sync);
  sync();
}

/** Opens the panel on the remembered tab when it was left open on a wide screen. */
export function restore() {
  let remembered = null;
  try {
    remembered = localStorage.getItem(OPEN_KEY);
  } catch {
    remembered = null;
  }
  if (remembered && !narrow.matches && panels[remembered]) openPanel(remembered, { focus: false });
}

export function isOpen() {
  return open;
}

export function activeTab() {
  return open ? active : null;
}

export function openPanel(tab = active, { focus = true } = {}) {
  if (tab === 'moderation' && !moderationAvailable) tab = 'notes';
  open = true;
  $('context-panel').hidden = false;
  $('app-view').classList.add('context-open');
  select(tab, { focusTab: false });
  sync();
  remember();
  if (focus) $(`ctx-tab-${active}`).focus();
}

export function close({ focusToggle = false } = {}) {
  if (!open) return;
  open = false;
  panels[active]?.hide();
  $('context-panel').hidden = true;
  $('app-view').classList.remove('context-open');
  sync();
  remember();
  if (focusToggle) $('notes-toggle').focus();
}

/** Closes the panel when it is a drawer over the chat, so that the chat can take focus. */
export function closeIfDrawer() {
  if (narrow.matches) close();
}

function select(tab, { focusTab }) {
  if (!panels[tab]) return;
  if (tab === 'moderation' && !moderationAvailable) return;
  if (active !== tab) panels[active]?.hide();
  active = tab;
  for (const t of document.querySelectorAll('#context-panel [role="tab"]')) {
    const on = t.dataset.panel === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(`${t.dataset.panel}-panel`).hidden = !on;
  }
  if (focusTab) $(`ctx-tab-${tab}`).focus();
  remember();
  if (open) panels[tab].show(room);
}

/** The room shown in the chat pane changed (or null). */
export function setRoom(next) {
  room = next;
  if (open) panels[active]?.show(room);
}

/** Shows or hides the Moderation tab (only workspace owners have it). */
export function setModerationAvailable(available) {
  moderationAvailable = Boolean(available);
  $('ctx-tab-moderation').hidden = !moderationAvailable;
  if (!moderationAvailable && active === 'moderation') {
    if (open) select('notes', { focusTab: false });
    else active = 'notes';
  }
}

export function reset() {
  close();
  room = null;
  active = 'notes';
  setModerationAvailable(false);
}

function remember() {
  if (narrow.matches) return; // a drawer always starts closed
  try {
    if (open) localStorage.setItem(OPEN_KEY, active);
    else localStorage.removeItem(OPEN_KEY);
  } catch {
    // not remembered; fine
  }
}

function sync() {
  const drawer = narrow.matches;
  $('notes-toggle').setAttribute('aria-expanded', String(open));
  $('context-backdrop').hidden = !(open && drawer);
  $('context-panel').classList.toggle('is-drawer', drawer);
  if (drawer && open) $('context-panel').setAttribute('aria-modal', 'true');
  else $('context-panel').removeAttribute('aria-modal');
  // While the drawer covers the chat, the chat must not take keyboard focus.
  document.querySelector('.chat').inert = drawer && open;
}
