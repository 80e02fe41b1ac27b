// Sign-in / sign-up panel and sign-out.
//
// One form serves both modes; `auth-toggle` switches between them. Errors (client-side checks
// and the server's `error.message`) are shown beside the form in `auth-error`.

import { post, setToken, clearToken } from './api.js';
import { $ } from './dom.js';

let mode = 'signin';
let onSignedIn = () => {};
let busy = false;

export function initAuth({ signedIn }) {
  onSignedIn = signedIn;
  $('auth-form').addEventListener('submit', submit);
  $('auth-toggle').addEventListener('click', () => {
    setMode(mode === 'signin' ? 'signup' : 'signin');
    showError('');
    (mode === 'signup' ? $('auth-name') : $('auth-email')).focus();
  });
}

/** Shows the auth panel. `notice` is an optional line above the form (e.g. "session ended"). */
export function showAuth({ mode: wanted = 'signin', notice = '' } = {}) {
  setMode(wanted);
  showError('');
  $('auth-password').value = '';
  const noticeEl = $('auth-notice');
  noticeEl.textContent = notice;
  noticeEl.hidden = !notice;
  $('app-view').hidden = true;
  $('boot-view').hidden = true;
  $('auth-view').hidden = false;
  setBusy(false);
  (mode === 'signup' ? $('auth-name') : $('auth-email')).focus();
}

export function hideAuth() {
  $('auth-view').hidden = true;
}

function setMode(next) {
  mode = next;
  const signup = mode === 'signup';
  $('auth-title').textContent = signup ? 'Create your account' : 'Sign in';
  $('auth-name-field').hidden = !signup;
  $('auth-name').disabled = !signup;
  $('auth-password').autocomplete = signup ? 'new-password' : 'current-password';
  $('auth-submit').textContent = signup ? 'Create account' : 'Sign in';
  $('auth-toggle-prompt').textContent = signup ? 'Already have an account?' : 'New to Mathia?';
  $('auth-toggle').textContent = signup ? 'Sign in instead' : 'Create an account';
  $('auth-form').dataset.mode = mode;
}

function showError(message) {
  const el = $('auth-error');
  el.textContent = message;
  el.hidden = !message;
}

function setBusy(value) {
  busy = value;
  $('auth-submit').disabled = value;
  $('auth-form').setAttribute('aria-busy', String(value));
}

async function submit(event) {
  event.preventDefault();
  if (busy) return;
  const email = $('auth-email').value.trim();
  const password = $('auth-password').value;
  const displayName = $('auth-name').value.trim();

  if (mode === 'signup' && !displayName) return fail('Please enter your name.', 'auth-name');
  if (!email || !email.includes('@')) return fail('Please enter a valid email address.', 'auth-email');
  if (!password) return fail('Please enter your password.', 'auth-password');

  showError('');
  setBusy(true);
  try {
    const result =
      mode === 'signup'
        ? await post('/api/auth/register', { email, password, display_name: displayName })
        : await post('/api/auth/login', { email, password });
    setToken(result.token);
    $('auth-password').value = '';
    await onSignedIn(result.user);
  } catch (err) {
    if (err.code === 'invalid_credentials') {
      showError('That email and password do not match.');
    } else {
      showError(err.message || 'Something went wrong. Please try again.');
    }
  } finally {
    setBusy(false);
  }
}

function fail(message, fieldId) {
  showError(message);
  $(fieldId).focus();
}

/** Ends the session on the server (best effort) and forgets the token locally. */
export async function signOut() {
  try {
    await post('/api/auth/logout');
  } catch {
    // The token is dropped either way.
  }
  clearToken();
}
