// End-to-end test of the chat core against a running Mathia server.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test chat.test.mjs
//
// Two browser contexts (A on a desktop viewport, B on a phone-sized one) walk through: sign-up,
// room creation, invite link, presence, messages both ways in order, typing indicator, history
// after reload, and sign-out. Waits are bounded polls, never fixed sleeps. Screenshots go to
// e2e/screenshots/ (git-ignored).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.MATHIA_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT_MS = 10_000;
const SHOTS_DIR = fileURLToPath(new URL('./screenshots/', import.meta.url));

const run = `${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
const alice = { name: `Alice ${run.slice(-6)}`, email: `alice-${run}@example.com`, password: `pw-A-${run}-correct-horse` };
const bob = { name: `Bob ${run.slice(-6)}`, email: `bob-${run}@example.com`, password: `pw-B-${run}-battery-staple` };
const roomName = `e2e room ${run.slice(-6)}`;

/** Polls `check` until it returns a truthy value, or fails after `timeout` ms. */
async function eventually(check, { timeout = WAIT_MS, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`${what}: not met within ${timeout} ms (last: ${detail})`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** The rendered messages of a page, in DOM order. */
function messages(page) {
  return page.getByTestId('message').evaluateAll((els) =>
    els.map((el) => ({
      id: el.dataset.id ?? null,
      seq: el.dataset.seq == null ? null : Number(el.dataset.seq),
      status: el.dataset.status ?? null,
      author: el.querySelector('[data-testid="message-author"]')?.textContent ?? null,
      body: el.querySelector('[data-testid="message-body"]')?.textContent ?? null,
    })),
  );
}

/** Waits until the stored (not pending) messages with the given bodies appear in that order. */
async function expectBodiesInOrder(page, bodies, what) {
  return eventually(
    async () => {
      const all = await messages(page);
      const stored = all.filter((m) => m.id !== null);
      const seqs = stored.map((m) => m.seq);
      const ascending = seqs.every((s, i) => i === 0 || s > seqs[i - 1]);
      const ours = stored.filter((m) => bodies.includes(m.body)).map((m) => m.body);
      return ascending && JSON.stringify(ours) === JSON.stringify(bodies) ? stored : false;
    },
    { what },
  );
}

async function signUp(page, person) {
  await page.getByTestId('auth-email').waitFor({ state: 'visible', timeout: WAIT_MS });
  if (!(await page.getByTestId('auth-name').isVisible())) await page.getByTestId('auth-toggle').click();
  await page.getByTestId('auth-name').fill(person.name);
  await page.getByTestId('auth-email').fill(person.email);
  await page.getByTestId('auth-password').fill(person.password);
  await page.getByTestId('auth-submit').click();
  await eventually(async () => (await page.getByTestId('current-user').textContent()) === person.name, {
    what: `${person.name} is signed in`,
  });
}

async function send(page, text) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
  await eventually(async () => (await composer.inputValue()) === '', { what: 'composer cleared after send' });
}

describe('Mathia chat core', () => {
  let browser;
  let contextA;
  let contextB;
  let pageA;
  let pageB;
  let roomId;
  let inviteLink;
  let broken = false;
  const pageErrors = [];

  /** A sequential step: skipped once an earlier one failed, with a screenshot on failure. */
  function step(name, fn) {
    it(name, async (t) => {
      if (broken) {
        t.skip('an earlier step failed');
        return;
      }
      try {
        await fn();
      } catch (err) {
        broken = true;
        const slug = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
        await pageA?.screenshot({ path: `${SHOTS_DIR}failed-${slug}-A.png` }).catch(() => {});
        await pageB?.screenshot({ path: `${SHOTS_DIR}failed-${slug}-B.png` }).catch(() => {});
        throw err;
      }
    });
  }

  before(async () => {
    await mkdir(SHOTS_DIR, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    contextA = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contextB = await browser.newContext({ viewport: { width: 375, height: 740 } });
    pageA = await contextA.newPage();
    pageB = await contextB.newPage();
    for (const [who, page] of [['A', pageA], ['B', pageB]]) {
      page.on('pageerror', (err) => pageErrors.push(`${who}: ${err.message}`));
    }
  });

  after(async () => {
    await browser?.close();
  });

  step('A signs up and sees the app', async () => {
    await pageA.goto(`${BASE}/`);
    await signUp(pageA, alice);
    await pageA.getByTestId('new-room-name').waitFor({ state: 'visible', timeout: WAIT_MS });
  });

  step('A creates a room and opens it', async () => {
    await pageA.getByTestId('new-room-name').fill(roomName);
    await pageA.getByTestId('new-room-submit').click();
    const item = pageA.locator('[data-testid="room-item"][aria-current="true"]', { hasText: roomName });
    await item.waitFor({ state: 'visible', timeout: WAIT_MS });
    roomId = await item.getAttribute('data-room-id');
    assert.ok(roomId, 'the room item carries data-room-id');
    await eventually(async () => (await pageA.getByTestId('room-title').textContent()) === roomName, {
      what: 'A sees the room title',
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
    await signUp(pageB, bob);
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

  step('screenshots (desktop and mobile)', async () => {
    await pageA.screenshot({ path: `${SHOTS_DIR}desktop-chat.png` });
    await pageB.screenshot({ path: `${SHOTS_DIR}mobile-chat.png` });
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
    await expectBodiesInOrder(pageA, ['hello B', 'hi A'], 'history after reload');
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
    const fresh = await browser.newContext({ viewport: { width: 375, height: 740 } });
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
