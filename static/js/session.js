// The signed-in person as the server describes them (`GET /api/me` and every onboarding answer):
// `{user, profile, goals, workspaces: [{id, name, role, personal}], onboarding: {step, completed}}`.
//
// Panels read from here (time zone, workspace roles) and subscribe with `onChange`; whoever gets a
// fresh answer from the server passes it to `set` (or calls `refresh`).

import { get } from './api.js';

let me = null;
const listeners = new Set();

export function current() {
  return me;
}

export function set(next) {
  me = next || null;
  for (const fn of [...listeners]) {
    try {
      fn(me);
    } catch (err) {
      console.error('session listener failed', err);
    }
  }
}

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export async function refresh() {
  const next = await get('/api/me');
  set(next);
  return next;
}

export function clear() {
  set(null);
}

export function user() {
  return me?.user || null;
}

/** True unless the server says onboarding is unfinished (an older server says nothing). */
export function onboarded(state = me) {
  return !(state && state.onboarding && state.onboarding.completed === false);
}

export function workspaces() {
  return Array.isArray(me?.workspaces) ? me.workspaces : [];
}

export function workspace(id) {
  return workspaces().find((w) => w.id === id) || null;
}

/** The user's role (`owner`, `member`, …) in a workspace, or null when not a member. */
export function roleIn(workspaceId) {
  return workspace(workspaceId)?.role || null;
}

export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** The user's time zone (from their profile), else the browser's. */
export function timeZone() {
  const zone = me?.profile?.timezone;
  if (zone) {
    try {
      new Intl.DateTimeFormat(undefined, { timeZone: zone });
      return zone;
    } catch {
      // an unknown zone name: fall back to the browser's
    }
  }
  return browserTimeZone();
}

/** Formats a timestamp in the user's time zone. */
export function formatTime(iso, options = { dateStyle: 'medium', timeStyle: 'short' }) {
  const date = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  try {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone: timeZone() }).format(date);
  } catch {
    return date.toLocaleString();
  }
}

/** "HH:MM" in the user's time zone (with the day when it is not today). */
export function formatClock(iso) {
  const date = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const zone = timeZone();
  const day = (d) => new Intl.DateTimeFormat('en-CA', { timeZone: zone, dateStyle: 'short' }).format(d);
  const sameDay = day(date) === day(new Date());
  return formatTime(date, sameDay ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** "in 10 min", "in 2 h", "now" — rough, for lists. */
export function relative(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  if (!Number.isFinite(ms)) return '';
  const fmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  const minutes = Math.round(ms / 60000);
  if (Math.abs(minutes) < 1) return 'now';
  if (Math.abs(minutes) < 60) return fmt.format(minutes, 'minute');
  const hours = Math.round(minutes / 60);
  if (Math.abs(hours) < 48) return fmt.format(hours, 'hour');
  return fmt.format(Math.round(hours / 24), 'day');
}
