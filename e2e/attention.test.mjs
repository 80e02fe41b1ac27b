// End-to-end test of attention: mentions, read markers, notifications and "Catch me up".
//
//   E2E_FILES="attention.test.mjs" bash scripts/e2e local
//
// Alice mentions Bob with the composer's @ suggestions. Bob has two pages open in one browser
// context (two devices that share a sign-in): while his pages are hidden the mention raises a
// browser notification (the permission is granted in the context and `window.Notification` is
// wrapped to record what is shown), both pages badge the room and put the count in the title;
// when one page reads the room, the other's badge clears (`read_marker`). Then "Catch me up"
// summarises what arrived after the marker. Waits are bounded polls, never fixed sleeps.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createRoom,
  BASE,
  WAIT_MS,
  LONG_WAIT_MS,
  DESKTOP,
  launchBrowser,
  person,
  runId,
  eventually,
  stepper,
  signUpAndOnboard,
  send,
  messageByBody,
} from './helpers.mjs';

const run = runId();
const alice = person('Alice', run);
const bob = person('Bob', run);
const roomName = `attention ${run.slice(-6)}`;
const quietName = `quiet ${run.slice(-6)}`;

/** Records every notification the page shows, and whether the page asked for the permission. */
function recordNotifications() {
  window.__notifications = [];
  window.__permissionAsked = 0;
  const Real = window.Notification;
  if (!Real) return;
  function Recorded(title, options = {}) {
    window.__notifications.push({ title, body: options.body || '', tag: options.tag || '' });
    this.close = () => {};
  }
  Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
  Recorded.requestPermission = (...args) => {
    window.__permissionAsked += 1;
    return Real.requestPermission(...args);
  };
  window.Notification = Recorded;
}

/** Makes the page report itself hidden (or visible again) as a background tab would. */
async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

function badge(page, roomId) {
  return page.locator(`[data-testid="room-item"][data-room-id="${roomId}"] [data-testid="unread-badge"]`);
}

async function badgeState(page, roomId) {
  const b = badge(page, roomId);
  return {
    hidden: await b.isHidden(),
    unread: Number(await b.getAttribute('data-unread')),
    mentions: Number(await b.getAttribute('data-mentions')),
  };
}

describe('Mathia attention', () => {
  let browser;
  let contextA;
  let contextB;
  let pageA;
  let bob1;
  let bob2;
  let roomId;
  let inviteLink;
  const pageErrors = [];
  const step = stepper(() => ({ A: pageA, B1: bob1, B2: bob2 }));

  before(async () => {
    browser = await launchBrowser();
    contextA = await browser.newContext({ viewport: DESKTOP });
    contextB = await browser.newContext({ viewport: DESKTOP });
    await contextB.grantPermissions(['notifications'], { origin: new URL(BASE).origin });
    await contextA.addInitScript(recordNotifications);
    await contextB.addInitScript(recordNotifications);
    pageA = await contextA.newPage();
    bob1 = await contextB.newPage();
    for (const [who, page] of [['A', pageA], ['B1', bob1]]) {
      page.on('pageerror', (err) => pageErrors.push(`${who}: ${err.message}`));
    }
  });

  after(async () => {
    await browser?.close();
  });

  /** A new page of Bob's that reads as hidden from the start, so it never marks anything read. */
  async function hiddenBobPage() {
    const page = await contextB.newPage();
    page.on('pageerror', (err) => pageErrors.push(`B3: ${err.message}`));
    await page.addInitScript(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    });
    return page;
  }

  /**
   * Routes the page's sockets through the test (call it before the page opens): the first
   * `type` frame for the room is held back until the room's next `new_message` has been passed
   * on, then let through.
   */
  async function holdBackUntilNextMessage(page, type) {
    const held = { frame: null, released: false };
    await page.routeWebSocket(/.*/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((raw) => {
        let frame = null;
        try {
          frame = JSON.parse(raw);
        } catch {}
        if (!held.released && !held.frame && frame?.type === type && frame.room_id === roomId) {
          held.frame = raw;
          return;
        }
        ws.send(raw);
        if (held.frame && !held.released && frame?.type === 'new_message' && frame.room_id === roomId) {
          ws.send(held.frame);
          held.released = true;
        }
      });
    });
    return held;
  }

  /** Sets `window.__takenIn` once the page's own socket module has handled a `type` frame for the room. */
  async function noticeTakenIn(page, type) {
    await page.evaluate(
      async ([t, id]) => {
        window.__takenIn = false;
        const socket = await import('/js/socket.js');
        socket.on(t, (frame) => {
          if (frame.room_id === id) window.__takenIn = true;
        });
      },
      [type, roomId],
    );
  }

  step('Alice signs up, creates a room and invites Bob', async () => {
    await pageA.goto(`${BASE}/`);
    await signUpAndOnboard(pageA, alice);
    const item = await createRoom(pageA, roomName);
    roomId = await item.getAttribute('data-room-id');
    await pageA.getByTestId('invite-button').click();
    inviteLink = await eventually(
      async () => {
        const value = await pageA.getByTestId('invite-link').inputValue();
        return /[?&]invite=[^&]+/.test(value) ? value : false;
      },
      { what: 'invite link is shown' },
    );
    assert.equal(await pageA.evaluate(() => window.__permissionAsked), 0, 'no permission is asked on load');
    assert.equal(await pageA.evaluate(() => Notification.permission), 'default');
  });

  step('Bob joins, makes a quiet room of his own and opens a second page', async () => {
    await bob1.goto(inviteLink);
    await signUpAndOnboard(bob1, bob, { join: true });
    await eventually(async () => (await bob1.getByTestId('room-title').textContent()) === roomName, {
      what: 'Bob is in the room',
    });
    await bob1.getByTestId('new-room-name').fill(quietName);
    await bob1.getByTestId('new-room-submit').click();
    await eventually(async () => (await bob1.getByTestId('room-title').textContent()) === quietName, {
      what: 'Bob is in his quiet room',
    });
    bob2 = await contextB.newPage();
    bob2.on('pageerror', (err) => pageErrors.push(`B2: ${err.message}`));
    await bob2.goto(`${BASE}/`);
    await eventually(async () => (await bob2.getByTestId('room-title').textContent()) === quietName, {
      what: "Bob's second page opens the quiet room too",
    });
    await badge(bob2, roomId).waitFor({ state: 'attached', timeout: WAIT_MS });
    assert.equal(await bob1.evaluate(() => window.__permissionAsked), 0, 'no permission is asked on load');
  });

  step('Settings shows notifications as on (granted), with no button to ask', async () => {
    await bob1.getByTestId('settings-button').click();
    await eventually(async () => /^On/.test(await bob1.getByTestId('notifications-status').textContent()), {
      what: 'notifications read as on',
    });
    assert.ok(await bob1.getByTestId('notifications-enable').isHidden());
    await bob1.getByTestId('settings-close').click();
  });

  step('Alice mentions Bob with the @ suggestions', async () => {
    for (const page of [bob1, bob2]) await setHidden(page, true);
    const composer = pageA.getByTestId('composer');
    await composer.fill('');
    await composer.pressSequentially('@Bo');
    const option = pageA.getByTestId('mention-option').filter({ hasText: bob.name });
    await option.waitFor({ state: 'visible', timeout: WAIT_MS });
    await composer.press('Enter'); // picks, does not send
    await eventually(async () => (await composer.inputValue()) === `@${bob.name} `, { what: 'the pick is in the composer' });
    await composer.pressSequentially('please review the plan');
    await composer.press('Enter');
    await eventually(async () => (await composer.inputValue()) === '', { what: 'sent' });
    const sent = await messageByBody(pageA, `@${bob.name} please review the plan`);
    const chip = sent.getByTestId('mention');
    assert.equal(await chip.textContent(), `@${bob.name}`, 'the mention reads as the name');
  });

  step('Bob, in the background, gets a notification, badges and a title count on both pages', async () => {
    const note = await eventually(
      async () => (await bob1.evaluate(() => window.__notifications)).find((n) => /mentioned you/.test(n.title)),
      { what: 'a notification on a hidden page' },
    );
    assert.match(note.title, new RegExp(`${alice.name} mentioned you in #${roomName}`));
    assert.equal(note.body, `@${bob.name} please review the plan`);
    for (const page of [bob1, bob2]) {
      await eventually(async () => {
        const s = await badgeState(page, roomId);
        return !s.hidden && s.unread === 1 && s.mentions === 1;
      }, { what: 'the room is badged with one mention' });
      await eventually(async () => (await page.title()) === `(1) ${quietName} · Mathia`, { what: 'the title counts it' });
    }
  });

  step('Bob reads the room on one page; the other page agrees', async () => {
    await setHidden(bob1, false);
    await bob1.bringToFront();
    await bob1.locator(`[data-testid="room-item"][data-room-id="${roomId}"]`).click();
    const mine = await messageByBody(bob1, `@${bob.name} please review the plan`);
    assert.equal(await mine.getAttribute('data-mentioned'), 'true', 'the mention is highlighted');
    await bob1.getByTestId('unread-divider').waitFor({ state: 'visible', timeout: WAIT_MS });
    for (const page of [bob1, bob2]) {
      await eventually(async () => (await badgeState(page, roomId)).hidden, { what: 'the badge clears', timeout: LONG_WAIT_MS });
    }
    await eventually(async () => (await bob2.title()) === `${quietName} · Mathia`, { what: 'the count leaves the title' });
  });

  step('Counts survive a reload', async () => {
    await bob2.reload();
    await eventually(async () => (await bob2.getByTestId('room-title').textContent()) !== 'No room yet', { what: 'reloaded' });
    await badge(bob2, roomId).waitFor({ state: 'attached', timeout: WAIT_MS });
    assert.ok((await badgeState(bob2, roomId)).hidden, 'still read after a reload');
  });

  step('Catch me up summarises what came after the marker', async () => {
    // Bob looks away on both pages (the reloaded one reopened the last room he read): what
    // comes next stays unread.
    for (const page of [bob1, bob2]) await setHidden(page, true);
    await send(pageA, 'we moved the launch to Friday');
    await send(pageA, 'the checklist is in the notes');
    await eventually(async () => (await badgeState(bob2, roomId)).unread === 2, { what: 'two unread' });
    await bob1.getByTestId('notes-toggle').click();
    await bob1.getByTestId('catch-up-button').click();
    await bob1.getByTestId('catch-up-result').waitFor({ state: 'visible', timeout: LONG_WAIT_MS });
    await eventually(async () => (await bob1.getByTestId('catch-up-meta').textContent()).startsWith('2 messages since you last read'), {
      what: 'the summary covers the two new messages',
      timeout: LONG_WAIT_MS,
    });
    assert.ok((await bob1.getByTestId('catch-up-summary').textContent()).trim().length > 0);
    const modelPort = process.env.MATHIA_FAKE_MODEL_PORT;
    if (modelPort) {
      const requests = await (await fetch(`http://127.0.0.1:${modelPort}/__requests`)).json();
      const asked = JSON.stringify(requests.filter((r) => JSON.stringify(r).includes('Catch ')).at(-1) ?? null);
      assert.ok(asked.includes('we moved the launch to Friday'), 'the new messages are summarised');
      assert.ok(!asked.includes('please review the plan'), 'messages before the marker are left out');
    }
    assert.equal((await badgeState(bob2, roomId)).unread, 2, 'catching up does not mark read');
  });

  step('A join answered before a message but delivered after it still counts the message', async () => {
    // `room_joined` counts up to its page's newest message; a message stored just after can reach
    // the page first (another function instance pushes it). Bob's third page holds the room's
    // `room_joined` back until that message has passed, then lets it through.
    const bob3 = await hiddenBobPage();
    const held = await holdBackUntilNextMessage(bob3, 'room_joined');
    await bob3.goto(`${BASE}/`);
    await eventually(async () => held.frame !== null, { what: "the room's room_joined is held back" });
    await badge(bob3, roomId).waitFor({ state: 'attached', timeout: WAIT_MS });
    assert.equal((await badgeState(bob3, roomId)).unread, 2, 'the room list counts two unread');
    await noticeTakenIn(bob3, 'room_joined');
    await send(pageA, 'one more thing before Friday');
    await eventually(async () => bob3.evaluate(() => window.__takenIn === true), { what: 'the held room_joined arrived after the message' });
    assert.ok(held.released);
    assert.equal((await badgeState(bob3, roomId)).unread, 3, 'the message that overtook the join is still counted');
    await eventually(async () => (await badgeState(bob2, roomId)).unread === 3, { what: 'the other page agrees' });
    await bob3.close();
  });

  step('A read marker overtaken by the next message still leaves that message unread', async () => {
    // Bob reads the room on his first page; his other page gets `read_marker` only after
    // Alice's next message, which the marker's counts do not cover (`counted_to_seq`).
    const bob3 = await hiddenBobPage();
    const held = await holdBackUntilNextMessage(bob3, 'read_marker');
    await bob3.goto(`${BASE}/`);
    await badge(bob3, roomId).waitFor({ state: 'attached', timeout: WAIT_MS });
    await eventually(async () => (await badgeState(bob3, roomId)).unread === 3, { what: 'three unread on the new page' });
    await noticeTakenIn(bob3, 'read_marker');
    await setHidden(bob1, false);
    await bob1.bringToFront();
    await eventually(async () => held.frame !== null, { what: "Bob's read_marker is held back", timeout: LONG_WAIT_MS });
    await setHidden(bob1, true);
    await send(pageA, 'and the venue is booked');
    await eventually(async () => bob3.evaluate(() => window.__takenIn === true), { what: 'the held read_marker arrived after the message' });
    assert.ok(held.released);
    const after = await badgeState(bob3, roomId);
    assert.equal(after.unread, 1, 'read up to the marker, and the message after it still unread');
    await bob3.close();
  });

  step('no page errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
