// Boot and wiring: decides between sign-in, the onboarding wizard and the app, accepts invite
// links, and connects the panels (auth, onboarding, rooms, chat, the context panel and its
// tabs, settings) to each other and to the socket. Also the layout: the room list is a drawer on
// narrow screens, and Escape closes whichever drawer is open.

import * as api from './api.js';
import * as socket from './socket.js';
import * as session from './session.js';
import { initAuth, showAuth, hideAuth, signOut } from './auth.js';
import { initOnboarding, showOnboarding, hideOnboarding } from './onboarding.js';
import * as attention from './attention.js';
import * as catchup from './catchup.js';
import * as rooms from './rooms.js';
import * as chat from './chat.js';
import * as context from './context.js';
import * as notes from './notes.js';
import * as pins from './pins.js';
import * as dms from './dms.js';
import * as reminders from './reminders.js';
import * as calendly from './calendly.js';
import * as moderation from './moderation.js';
import * as wallet from './wallet.js';
import { initSearch, clear as clearSearch } from './search.js';
import { initSettings, openSettings, closeSettings } from './settings.js';
import { clearToasts } from './toast.js';
import { previewInvite, askToJoin } from './invite.js';
import { $ } from './dom.js';

const INVITE_KEY = 'mathia.invite';
const mobile = window.matchMedia('(max-width: 768px)');

let signingOut = false;
let pendingInviteFallback = null; // used only when sessionStorage is unavailable
let sessionSerial = 0;

function boot() {
  captureInvite();
  initAuth({ signedIn: () => startSession() });
  initOnboarding({
    done: (state, { joinedWith }) => enterApp(state, sessionSerial, { joinedWith }),
    signOut: onSignOut,
  });
  // Before the chat pane: its `room_joined` handling reads the counts attention.js just took.
  attention.initAttention({
    describe: (roomId) => ({ room: rooms.getRoom(roomId)?.name || null, text: (m) => chat.plainText(roomId, m?.body || '') }),
  });
  rooms.initRooms({
    select: (room) => {
      chat.showRoom(room);
      context.setRoom(room);
      catchup.setRoom(room);
      syncModerationTab();
      closeDrawer();
    },
  });
  chat.initChat({
    openWallet: () => openSettings('wallet'),
    finishOnboarding: () => startSession(),
    openCalendly: () => context.openPanel('calendly'),
    afterReminder: () => reminders.invalidate(),
  });
  initSearch();
  notes.initNotes();
  pins.initPins();
  dms.initDms();
  reminders.initReminders();
  calendly.initCalendly();
  moderation.initModeration();
  context.initContext({ notes, pins, reminders, calendly, moderation });
  catchup.initCatchUp({ plainText: (roomId, text) => chat.plainText(roomId, text) });
  initSettings();
  initLayout();

  session.onChange((state) => {
    const user = state?.user;
    if (user) {
      const label = $('current-user');
      label.textContent = user.display_name;
      label.title = user.email || '';
    }
    syncModerationTab();
  });

  api.onUnauthorized(() => {
    if (signingOut) return;
    endSession();
    showAuth({ notice: 'Your session has ended. Please sign in again.' });
  });
  $('signout-button').addEventListener('click', onSignOut);
  $('settings-button').addEventListener('click', () => openSettings());
  $('boot-retry').addEventListener('click', () => startSession());
  $('app-notice-close').addEventListener('click', () => showNotice(''));

  if (api.getToken()) startSession();
  else showAuthForVisitor();
}

/** Moves `?invite=<code>` from the URL into sessionStorage so it survives sign-up / sign-in. */
function captureInvite() {
  const url = new URL(location.href);
  const code = url.searchParams.get('invite');
  if (!code) return;
  try {
    sessionStorage.setItem(INVITE_KEY, code);
  } catch {
    // Without storage the invite can still be accepted if the user is already signed in.
    pendingInviteFallback = code;
  }
  url.searchParams.delete('invite');
  history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`);
}

function pendingInvite() {
  try {
    return sessionStorage.getItem(INVITE_KEY) || pendingInviteFallback;
  } catch {
    return pendingInviteFallback;
  }
}

function clearPendingInvite() {
  pendingInviteFallback = null;
  try {
    sessionStorage.removeItem(INVITE_KEY);
  } catch {
    // nothing stored
  }
}

function showAuthForVisitor(notice = '') {
  if (pendingInvite()) {
    showAuth({
      mode: 'signup',
      notice: notice || 'You have been invited to a room. Create an account or sign in to join it.',
    });
  } else {
    showAuth({ mode: 'signin', notice });
  }
}

async function startSession() {
  const serial = ++sessionSerial;
  showBoot();
  let state;
  try {
    state = await api.get('/api/me');
  } catch (err) {
    if (serial !== sessionSerial) return;
    if (err.status === 401) return; // the unauthorized handler has shown sign-in
    showBootError(err.message);
    return;
  }
  if (serial !== sessionSerial) return;
  session.set(state);
  if (!session.onboarded(state)) {
    // The app waits until the wizard is done; the socket is not opened before.
    socket.stop();
    $('app-view').hidden = true;
    showOnboarding(state, { inviteCode: pendingInvite() || '' });
    return;
  }
  await enterApp(state, serial);
}

async function enterApp(state, serial, { joinedWith = null } = {}) {
  if (serial !== sessionSerial) return;
  if (state?.user) session.set(state);
  const user = session.user();
  rooms.setMe(user);
  chat.setMe(user);
  attention.setMe(user);

  hideAuth();
  hideOnboarding();
  $('boot-view').hidden = true;
  $('app-view').hidden = false;
  chat.showNoRoom();
  socket.start();

  // Joining during onboarding may already have made us a member of the invited room; accepting
  // again is then only a way to learn which room it was, so its errors are not worth showing.
  // An invite link opened while signed in first shows what it would join, and joins only on Join.
  const invited = joinedWith
    ? await acceptPendingInvite({ code: pendingInvite() || joinedWith, quiet: true })
    : await confirmPendingInvite(serial);
  if (serial !== sessionSerial) return;
  try {
    await rooms.loadRooms();
  } catch (err) {
    if (serial !== sessionSerial || err.status === 401) return;
    showNotice(`Could not load your rooms: ${err.message}`);
  }
  if (serial !== sessionSerial) return;
  if (invited) rooms.addRoom(invited);
  if (invited || joinedWith) session.refresh().catch(() => {});
  const roomId = invited?.id ?? rooms.defaultRoomId();
  if (roomId) rooms.selectRoom(roomId);
  else {
    chat.showNoRoom();
    context.setRoom(null);
    catchup.setRoom(null);
  }
  context.restore();
}

/** The pending invite's preview, then Join (accept) or Decline (forget the code). */
async function confirmPendingInvite(serial) {
  const code = pendingInvite();
  if (!code) return null;
  let preview;
  try {
    preview = await previewInvite(code);
  } catch (err) {
    if (err.status === 401) return null; // keep the code for after sign-in
    clearPendingInvite();
    showNotice(`Could not open the invite: ${err.message}`);
    return null;
  }
  if (serial !== sessionSerial) return null;
  // Already in the room: nothing to decide, the accept only names the room (and spends nothing).
  if (preview.member) return acceptPendingInvite({ code, quiet: true });
  if (!(await askToJoin(preview))) {
    clearPendingInvite();
    return null;
  }
  return acceptPendingInvite({ code });
}

async function acceptPendingInvite({ code = pendingInvite(), quiet = false } = {}) {
  if (!code) return null;
  try {
    const room = await api.post(`/api/invites/${encodeURIComponent(code)}/accept`);
    clearPendingInvite();
    return room;
  } catch (err) {
    if (err.status === 401) return null; // keep the code for after sign-in
    clearPendingInvite();
    if (!quiet) showNotice(`Could not join the invited room: ${err.message}`);
    return null;
  }
}

function syncModerationTab() {
  const room = rooms.currentRoom();
  context.setModerationAvailable(Boolean(room && session.roleIn(room.workspace_id) === 'owner'));
}

function endSession() {
  sessionSerial++;
  socket.stop();
  closeSettings();
  context.reset();
  catchup.reset();
  chat.reset();
  rooms.reset();
  clearSearch();
  $('search-input').value = '';
  attention.reset();
  notes.reset();
  pins.reset();
  dms.reset();
  reminders.reset();
  calendly.reset();
  moderation.reset();
  wallet.reset();
  clearToasts();
  session.clear();
  showNotice('');
  closeDrawer();
  hideOnboarding();
  $('current-user').textContent = '';
  $('app-view').hidden = true;
}

async function onSignOut() {
  signingOut = true;
  $('signout-button').disabled = true;
  try {
    await signOut();
  } finally {
    signingOut = false;
    $('signout-button').disabled = false;
  }
  endSession();
  showAuth({ mode: 'signin' });
}

function showBoot() {
  $('auth-view').hidden = true;
  $('app-view').hidden = true;
  $('onboarding-view').hidden = true;
  $('boot-view').hidden = false;
  $('boot-message').textContent = 'Loading Mathia…';
  $('boot-retry').hidden = true;
}

function showBootError(message) {
  $('boot-view').hidden = false;
  $('boot-message').textContent = message || 'Could not reach Mathia.';
  $('boot-retry').hidden = false;
  $('boot-retry').focus();
}

function showNotice(message) {
  $('app-notice-text').textContent = message;
  $('app-notice').hidden = !message;
}

// ---- layout: the sidebar is a drawer on narrow screens ---------------------------------------

function initLayout() {
  $('drawer-toggle').addEventListener('click', () => {
    if ($('app-view').classList.contains('drawer-open')) closeDrawer();
    else openDrawer();
  });
  $('drawer-close').addEventListener('click', () => closeDrawer({ focusToggle: true }));
  $('drawer-backdrop').addEventListener('click', () => closeDrawer({ focusToggle: true }));
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || event.defaultPrevented) return;
    if ($('settings-dialog').open) return; // the dialog closes itself
    if (context.isOpen() && $('context-panel').classList.contains('is-drawer')) {
      context.close({ focusToggle: true });
    } else if ($('app-view').classList.contains('drawer-open')) {
      closeDrawer({ focusToggle: true });
    }
  });
  mobile.addEventListener('change', syncDrawer);
  syncDrawer();
}

function openDrawer() {
  $('app-view').classList.add('drawer-open');
  syncDrawer();
  const selected = $('room-list').querySelector('[aria-current="true"]');
  (selected || $('new-room-name')).focus();
}

function closeDrawer({ focusToggle = false } = {}) {
  const wasOpen = $('app-view').classList.contains('drawer-open');
  $('app-view').classList.remove('drawer-open');
  syncDrawer();
  if (wasOpen && focusToggle && mobile.matches) $('drawer-toggle').focus();
}

function syncDrawer() {
  const open = $('app-view').classList.contains('drawer-open');
  $('drawer-toggle').setAttribute('aria-expanded', String(open));
  $('drawer-backdrop').hidden = !(open && mobile.matches);
  // Off-screen drawer content must not take keyboard focus.
  $('sidebar').inert = mobile.matches && !open;
}

boot();
