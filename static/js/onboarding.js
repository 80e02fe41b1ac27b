// Onboarding wizard: shown instead of the app while `GET /api/me` says onboarding is unfinished.
//
// Three steps, each saved with its own call and resumed where the server says the user is:
//   profile    PUT /api/onboarding/profile    {display_name, timezone, role?, bio?}
//   goals      PUT /api/onboarding/goals      {goals: [string], focus?, tone?}
//   workspace  PUT /api/onboarding/workspace  {name} to create, or {invite_code} to join
// Every answer is the onboarding state (the `/api/me` shape); the last one has `completed: true`.
// Back only moves the view; going forward again saves that step again. Server errors are shown
// beside the field named by `error.field`.

import { put, get } from './api.js';
import * as session from './session.js';
import { fillTimeZones, goalsEditor, showError, clearErrors } from './forms.js';
import { inviteCodeFrom } from './rooms.js';
import { $ } from './dom.js';

const STEPS = ['profile', 'goals', 'workspace'];
const TITLES = { profile: 'Profile', goals: 'Goals', workspace: 'Workspace' };

let view = 'profile'; // the step on screen
let furthest = 'profile'; // the step the server expects next
let busy = false;
let goals = null;
let onDone = () => {};
let initialized = false;

export function initOnboarding({ done, signOut }) {
  onDone = done;
  if (initialized) return;
  initialized = true;
  goals = goalsEditor({ input: $('onb-goal-input'), addButton: $('onb-goal-add'), list: $('onb-goal-list') });
  $('onb-form').addEventListener('submit', (event) => {
    event.preventDefault();
    next();
  });
  $('onb-back').addEventListener('click', back);
  $('onb-signout').addEventListener('click', () => signOut());
  // Typing into (or clicking) one option's input chooses that option.
  for (const [id, mode] of [['onb-workspace-name', 'create'], ['onb-invite-code', 'join']]) {
    $(id).addEventListener('input', () => setMode(mode));
    $(id).addEventListener('click', () => setMode(mode));
  }
}

/** Shows the wizard for this onboarding state; `inviteCode` pre-fills "join". */
export function showOnboarding(state, { inviteCode = '' } = {}) {
  const step = state?.onboarding?.step;
  furthest = STEPS.includes(step) ? step : 'profile';
  prefill(state, inviteCode);
  $('boot-view').hidden = true;
  $('auth-view').hidden = true;
  $('app-view').hidden = true;
  $('onboarding-view').hidden = false;
  setBusy(false);
  go(furthest);
}

export function hideOnboarding() {
  $('onboarding-view').hidden = true;
}

function prefill(state, inviteCode) {
  const profile = state?.profile || {};
  $('onb-display-name').value = profile.display_name || state?.user?.display_name || '';
  fillTimeZones($('onb-timezone'), profile.timezone);
  $('onb-role').value = profile.role || '';
  $('onb-bio').value = profile.bio || '';

  const g = state?.goals || {};
  goals.set(g.goals || []);
  $('onb-goal-input').value = '';
  $('onb-focus').value = g.focus || '';
  if (g.tone && [...$('onb-tone').options].some((o) => o.value === g.tone)) $('onb-tone').value = g.tone;

  if (inviteCode) {
    $('onb-invite-code').value = inviteCode;
    setMode('join');
  } else {
    setMode('create');
  }
}

function setMode(mode) {
  $('onb-ws-create').checked = mode === 'create';
  $('onb-ws-join').checked = mode === 'join';
}

function go(step) {
  view = step;
  const index = STEPS.indexOf(step);
  for (const name of STEPS) $(`onb-step-${name}`).hidden = name !== step;
  $('onboarding-view').dataset.step = step;
  for (const li of $('onb-progress').children) {
    const i = STEPS.indexOf(li.dataset.step);
    li.classList.toggle('done', i < index);
    li.classList.toggle('current', i === index);
    if (i === index) li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
  }
  $('onb-step-label').textContent = `Step ${index + 1} of ${STEPS.length}: ${TITLES[step]}`;
  $('onb-back').hidden = index === 0;
  $('onb-next').textContent = index === STEPS.length - 1 ? 'Finish' : 'Next';
  clearErrors($('onb-form'), $('onb-error'));
  const first =
    step === 'workspace'
      ? $($('onb-ws-join').checked ? 'onb-invite-code' : 'onb-workspace-name')
      : $(`onb-step-${step}`).querySelector('input:not([type="radio"]), select, textarea');
  first?.focus();
}

function back() {
  const index = STEPS.indexOf(view);
  if (index > 0 && !busy) go(STEPS[index - 1]);
}

function setBusy(value) {
  busy = value;
  $('onb-next').disabled = value;
  $('onb-back').disabled = value;
  $('onb-form').setAttribute('aria-busy', String(value));
}

function fail(error) {
  showError($('onb-form'), $('onb-error'), error, 'onb-error');
}

function bodyFor(step) {
  if (step === 'profile') {
    const displayName = $('onb-display-name').value.trim();
    if (!displayName) return { error: { field: 'display_name', message: 'Please enter your name.' } };
    const body = { display_name: displayName, timezone: $('onb-timezone').value };
    const role = $('onb-role').value.trim();
    const bio = $('onb-bio').value.trim();
    if (role) body.role = role;
    if (bio) body.bio = bio;
    return { body };
  }
  if (step === 'goals') {
    goals.commit(); // a goal typed but not yet added counts
    const list = goals.get();
    if (list.length === 0) return { error: { field: 'goals', message: 'Add at least one goal.' } };
    const body = { goals: list, tone: $('onb-tone').value };
    const focus = $('onb-focus').value.trim();
    if (focus) body.focus = focus;
    return { body };
  }
  if ($('onb-ws-join').checked) {
    const code = inviteCodeFrom($('onb-invite-code').value);
    if (!code) return { error: { field: 'invite_code', message: 'Paste the invite link or code you were sent.' } };
    return { body: { invite_code: code } };
  }
  const name = $('onb-workspace-name').value.trim();
  if (!name) return { error: { field: 'name', message: 'Give your workspace a name.' } };
  return { body: { name } };
}

async function next() {
  if (busy) return;
  const step = view;
  clearErrors($('onb-form'), $('onb-error'));
  const { body, error } = bodyFor(step);
  if (error) return fail(error);

  setBusy(true);
  let state;
  try {
    state = await put(`/api/onboarding/${step}`, body);
  } catch (err) {
    setBusy(false);
    if (err.status === 401) return; // main.js shows sign-in
    if (err.code === 'onboarding_out_of_order') {
      if (STEPS.indexOf(step) < STEPS.indexOf(furthest)) {
        // Redoing an earlier step the server will not take again: keep what it has and move on.
        return go(STEPS[STEPS.indexOf(step) + 1]);
      }
      return resync(err);
    }
    return fail(err);
  }
  setBusy(false);
  if (state && typeof state === 'object' && state.user) session.set(state);
  const nextStep = state?.onboarding?.step;
  if (state?.onboarding?.completed || nextStep === 'done') {
    hideOnboarding();
    onDone(state, { joinedWith: body.invite_code || null });
    return;
  }
  if (STEPS.includes(nextStep) && STEPS.indexOf(nextStep) > STEPS.indexOf(furthest)) furthest = nextStep;
  const following = STEPS[STEPS.indexOf(step) + 1];
  if (following) go(following);
}

/** The server is at another step than we thought: ask it, and go there. */
async function resync(err) {
  try {
    const state = await get('/api/me');
    session.set(state);
    if (session.onboarded(state)) {
      hideOnboarding();
      onDone(state, { joinedWith: null });
      return;
    }
    furthest = STEPS.includes(state.onboarding?.step) ? state.onboarding.step : 'profile';
    go(furthest);
    fail({ message: 'Let’s pick up where you left off.' });
  } catch {
    fail(err);
  }
}
