// End-to-end test of the chat core against a running Mathia server.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test chat.test.mjs
//
// Two browser contexts (A on a desktop viewport, B on a phone-sized one) walk through: sign-up
// and onboarding (B joins with the invite from the link), room creation, invite link, presence,
// messages both ways in order, a long multi-byte message, typing indicator, history after reload, and sign-out. Waits are bounded polls, never fixed sleeps. Screenshots go to
// e2e/screenshots/ (git-ignored).

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createRoom,
  BASE,
  WAIT_MS,
  SHOTS_DIR,
  DESKTOP,
  PHONE,
  twoPeople,
  person,
  runId,
  eventually,
  stepper,
  messages,
  expectBodiesInOrder,
  signUpAndOnboard,
  send,
} from './helpers.mjs';

const run = runId();
const alice = person('Alice', run);
const bob = person('Bob', run);
const roomName = `e2e room ${run.slice(-6)}`;
// Over 4 KiB of UTF-8 with two- and four-byte characters: the server sends its events in frames
// of at most 1 KiB, cut between characters, and the browser joins them.
const long = `long ${'é🙂x'.repeat(600)} end`;

describe('Mathia chat core', () => {
  let browser;
  let contextA;
  let contextB;
  let pageA;
  let pageB;
  let roomId;
  let inviteLink;
  const pageErrors = [];
  const step = stepper(() => ({ A: pageA, B: pageB }));

  before(async () => {
    ({ browser, contextA, contextB, pageA, pageB } = await twoPeople(pageErrors));
  });

  after(async () => {
    await browser?.close();
  });

  step('A signs up and sees the app', async () => {
    await pageA.goto(`${BASE}/`);
    await signUpAndOnboard(pageA, alice);
    await pageA.getByTestId('new-room-name').waitFor({ state: 'visible', timeout: WAIT_MS });
  });

  step('A creates a room and opens it', async () => {
    const item = await createRoom(pageA, roomName);
    roomId = await item.getAttribute('data-room-id');
    assert.ok(roomId, 'the room item carries data-room-id');
    await eventually(async () => (await pageA.getByTestId('room-title').textContent()) === roomName, {
      what: 'A sees the room title',
    });
  });

  step('a room that opens while A types a room name leaves her keystrokes in that field', async () => {
    const field = pageA.getByTestId('new-room-name');
    await field.click();
    await pageA.keyboard.type('half a na');
    // Opened by the app, not by a click that moves the focus: as when the first room finishes
    // opening after sign-in while she is already typing.
    await pageA.evaluate(() => {
      const items = [...document.querySelectorAll('[data-testid="room-item"]')];
      items.find((item) => item.getAttribute('aria-current') !== 'true').click();
    });
    await eventually(async () => (await pageA.getByTestId('room-title').textContent()) !== roomName, {
      what: 'the other room opens',
    });
    await pageA.keyboard.type('me');
    assert.equal(await field.inputValue(), 'half a name', 'every keystroke stayed in the room-name field');
    assert.equal(await pageA.getByTestId('composer').inputValue(), '', 'none went to the composer');
    await field.fill('');
    await pageA.locator(`[data-testid="room-item"][data-room-id="${roomId}"]`).click();
    await eventually(async () => (await pageA.getByTestId('room-title').textContent()) === roomName, {
      what: 'A is back in her room',
    });
  });

  step('A gets an invite link', async () => {
    await pageA.getByTestId('invite-button').click();
    inviteLink = await eventually(
      async () => {
        const value = await pageA.getByTestId('invite-link').inputValue();
        return /[?&]invite=[^&]+/.test(value) ? value : false;
      },
      { what: 'invite link is shown' },
    );
    assert.ok(inviteLink.startsWith(new URL(BASE).origin), `link ${inviteLink} is on this origin`);
  });

  step('B opens the invite link, signs up and lands in the room', async () => {
    await pageB.goto(inviteLink);
    await signUpAndOnboard(pageB, bob, { join: true });
    await eventually(async () => (await pageB.getByTestId('room-title').textContent()) === roomName, {
      what: 'B sees the invited room',
    });
    await pageB
      .locator(`[data-testid="room-item"][data-room-id="${roomId}"]`)
      .waitFor({ state: 'attached', timeout: WAIT_MS });
    assert.ok(!pageB.url().includes('invite='), 'the invite code is cleaned from the URL');
  });

  step('A sees B online', async () => {
    await pageA
      .getByTestId('online-list')
      .getByTestId('online-user')
      .filter({ hasText: bob.name })
      .waitFor({ state: 'visible', timeout: WAIT_MS });
  });

  step('A says hello, B sees it', async () => {
    await send(pageA, 'hello B');
    await expectBodiesInOrder(pageB, ['hello B'], 'B sees "hello B"');
    await expectBodiesInOrder(pageA, ['hello B'], 'A sees "hello B" stored');
  });

  step('B answers, both see both messages in the same order', async () => {
    await send(pageB, 'hi A');
    const onA = await expectBodiesInOrder(pageA, ['hello B', 'hi A'], 'A sees both in order');
    const onB = await expectBodiesInOrder(pageB, ['hello B', 'hi A'], 'B sees both in order');
    const idsA = onA.filter((m) => ['hello B', 'hi A'].includes(m.body)).map((m) => m.id);
    const idsB = onB.filter((m) => ['hello B', 'hi A'].includes(m.body)).map((m) => m.id);
    assert.deepEqual(idsA, idsB, 'same message ids on both sides');
    const authorsA = onA.filter((m) => ['hello B', 'hi A'].includes(m.body)).map((m) => m.author);
    assert.deepEqual(authorsA, [alice.name, bob.name]);
    const pending = (await messages(pageA)).filter((m) => m.id === null);
    assert.equal(pending.length, 0, 'no message left pending on A');
  });

  step('message bodies are shown as text, not HTML', async () => {
    const markup = '<b id="injected">bold?</b><img src=x onerror="window.__pwned=1">';
    await send(pageB, markup);
    await expectBodiesInOrder(pageA, ['hello B', 'hi A', markup], 'A sees the markup as text');
    assert.equal(await pageA.locator('#injected').count(), 0);
    assert.equal(await pageA.evaluate(() => window.__pwned ?? null), null);
  });

  step('a long message with multi-byte characters arrives whole', async () => {
    await send(pageA, long);
    await expectBodiesInOrder(pageB, ['hello B', 'hi A', long], 'B sees the long message whole');
    await expectBodiesInOrder(pageA, ['hello B', 'hi A', long], 'A sees it stored');
  });

  step('B types and A sees the typing indicator, which then clears', async () => {
    await pageB.getByTestId('composer').pressSequentially('still typ', { delay: 40 });
    const indicator = pageA.getByTestId('typing-indicator');
    await eventually(async () => (await indicator.textContent()).includes(`${bob.name} is typing`), {
      what: 'A sees "Bob is typing…"',
    });
    // B stops: typing:false after 3 s idle (and A expires the indicator after 5 s anyway).
    await eventually(async () => (await indicator.textContent()).trim() === '', {
      what: 'typing indicator clears',
    });
    await pageB.getByTestId('composer').fill('');
  });

  step('B renames in Settings; A sees the new name online and on B typing, without a reload', async () => {
    const renamed = `${bob.name} R`;
    await pageB.getByRole('button', { name: 'Show rooms' }).click();
    await pageB.getByTestId('settings-button').click();
    await pageB.getByTestId('settings-dialog').waitFor({ state: 'visible', timeout: WAIT_MS });
    await pageB.getByTestId('settings-tab-profile').click();
    await pageB.getByTestId('set-display-name').fill(renamed);
    await pageB.getByTestId('settings-profile-save').click();
    await eventually(async () => (await pageB.locator('#settings-profile-status').textContent()) === 'Saved.', {
      what: 'B saved the new name',
    });
    await pageB.keyboard.press('Escape');
    await pageB.getByTestId('settings-dialog').waitFor({ state: 'hidden', timeout: WAIT_MS });
    await pageB.keyboard.press('Escape'); // and the drawer
    await eventually(async () => ((await pageB.locator('#sidebar').boundingBox())?.x ?? -1) < 0, {
      what: 'B is back in the room',
    });
    await pageA
      .getByTestId('online-list')
      .getByTestId('online-user')
      .filter({ hasText: renamed })
      .waitFor({ state: 'visible', timeout: WAIT_MS });
    await pageB.getByTestId('composer').pressSequentially('typ', { delay: 40 });
    const indicator = pageA.getByTestId('typing-indicator');
    await eventually(async () => (await indicator.textContent()).includes(`${renamed} is typing`), {
      what: 'A sees the new name typing',
    });
    await pageB.getByTestId('composer').fill('');
  });

  step('screenshots (desktop and mobile)', async () => {
    await pageA.screenshot({ path: `${SHOTS_DIR}desktop-chat.png` });
    await pageB.screenshot({ path: `${SHOTS_DIR}chat-mobile.png` });
    await pageB.getByRole('button', { name: 'Show rooms' }).click();
    await pageB.getByTestId('new-room-name').waitFor({ state: 'visible', timeout: WAIT_MS });
    // Let the slide-in transition finish before the picture.
    await eventually(async () => (await pageB.locator('#sidebar').boundingBox())?.x === 0, {
      what: 'drawer fully open',
    });
    await pageB.screenshot({ path: `${SHOTS_DIR}mobile-drawer.png` });
    await pageB.keyboard.press('Escape');
  });

  step('after a reload A still sees the history in order', async () => {
    await pageA.reload();
    await expectBodiesInOrder(pageA, ['hello B', 'hi A', long], 'history after reload');
    await eventually(async () => (await pageA.getByTestId('room-title').textContent()) === roomName, {
      what: 'A is back in the room',
    });
  });

  step('A signs out and sees the sign-in form', async () => {
    await pageA.getByTestId('signout-button').click();
    await pageA.getByTestId('auth-email').waitFor({ state: 'visible', timeout: WAIT_MS });
    await pageA.getByTestId('auth-password').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await pageA.getByTestId('auth-name').isVisible(), false, 'sign-in mode, not sign-up');
    assert.equal(await pageA.evaluate(() => localStorage.getItem('mathia.token')), null);
    await pageA.screenshot({ path: `${SHOTS_DIR}desktop-signed-out.png` });
    const fresh = await browser.newContext({ viewport: PHONE });
    try {
      const page = await fresh.newPage();
      page.on('pageerror', (err) => pageErrors.push(`fresh: ${err.message}`));
      await page.goto(`${BASE}/`);
      await page.getByTestId('auth-email').waitFor({ state: 'visible', timeout: WAIT_MS });
      await page.screenshot({ path: `${SHOTS_DIR}mobile-signin.png` });
    } finally {
      await fresh.close();
    }
  });

  step('no uncaught errors in either page', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
