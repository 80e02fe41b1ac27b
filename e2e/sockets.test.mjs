// End-to-end test of the bound on one person's sockets, against a running Mathia server.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test sockets.test.mjs
//
// A person may have 16 sockets open at once (MATHIA_SOCKETS_PER_PERSON, the default here). A
// signs in on one page and holds 15 more sockets from another; a third page signed in as A is
// refused a ticket and says why in its connection banner, while A's first page chats on. Once one
// of the sockets closes, the third page connects by itself and chats. Waits are bounded polls.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE,
  DESKTOP,
  LONG_WAIT_MS,
  SHOTS_DIR,
  createRoom,
  eventually,
  expectBodiesInOrder,
  launchBrowser,
  person,
  runId,
  send,
  signUpAndOnboard,
  stepper,
} from './helpers.mjs';

const run = runId();
const alice = person('Alice', run);
const roomName = `tabs ${run.slice(-6)}`;
const BOUND = 16;
const REFUSAL = 'Mathia is open in too many tabs or devices; close one to connect here';

/** In the helper page: opens `n` sockets for `token`, kept on `window.extra`. */
function openSockets(page, token, n) {
  return page.evaluate(
    async ({ token, n }) => {
      window.extra ??= [];
      const config = await (await fetch('/api/config')).json();
      for (let i = 0; i < n; i++) {
        const res = await fetch('/api/ws-ticket', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
        if (res.status !== 200) throw new Error(`ticket ${i}: ${res.status}`);
        const { ticket } = await res.json();
        const url = new URL(config.ws_url || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
        url.searchParams.set('ticket', ticket);
        const ws = new WebSocket(url);
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error(`socket ${i}`));
        });
        window.extra.push(ws);
      }
      return window.extra.length;
    },
    { token, n },
  );
}

async function banner(page) {
  const el = page.getByTestId('connection-status');
  return (await el.isVisible()) ? await el.textContent() : null;
}

describe('Mathia: one person in too many places', () => {
  let browser;
  let pageA;
  let helperPage;
  let pageC;
  let token;
  const pageErrors = [];
  const step = stepper(() => ({ A: pageA, helper: helperPage, C: pageC }));

  before(async () => {
    browser = await launchBrowser();
    pageA = await (await browser.newContext({ viewport: DESKTOP })).newPage();
    helperPage = await (await browser.newContext()).newPage();
    pageA.on('pageerror', (err) => pageErrors.push(`A: ${err.message}`));
  });

  after(async () => {
    await browser?.close();
  });

  step('A signs up and creates a room', async () => {
    await pageA.goto(`${BASE}/`);
    await signUpAndOnboard(pageA, alice);
    await createRoom(pageA, roomName);
    token = await pageA.evaluate(() => localStorage.getItem('mathia.token'));
    assert.ok(token, 'signed in');
  });

  step(`A holds ${BOUND - 1} more sockets elsewhere`, async () => {
    await helperPage.goto(`${BASE}/`);
    assert.equal(await openSockets(helperPage, token, BOUND - 1), BOUND - 1);
  });

  step('a third place is told why it cannot connect; the first chats on', async () => {
    const context = await browser.newContext({ viewport: DESKTOP });
    await context.addInitScript((t) => localStorage.setItem('mathia.token', t), token);
    pageC = await context.newPage();
    pageC.on('pageerror', (err) => pageErrors.push(`C: ${err.message}`));
    await pageC.goto(`${BASE}/`);
    await eventually(
      async () => {
        const text = await banner(pageC);
        if (text !== REFUSAL) throw new Error(`banner: ${JSON.stringify(text)}`);
        return true;
      },
      { what: 'the refusal is shown', timeout: LONG_WAIT_MS },
    );
    await pageC.screenshot({ path: `${SHOTS_DIR}sockets-too-many-places.png` });
    await send(pageA, `still chatting ${run}`);
    await expectBodiesInOrder(pageA, [`still chatting ${run}`], 'A chats on');
    // It stays refused while the sockets stay open (no other socket of A's was closed for it).
    assert.equal(await helperPage.evaluate(() => window.extra.filter((ws) => ws.readyState === 1).length), BOUND - 1);
    assert.equal(await banner(pageC), REFUSAL);
  });

  step('one socket closes: the third place connects by itself and chats', async () => {
    await helperPage.evaluate(() => window.extra.pop().close());
    await eventually(async () => (await banner(pageC)) === null, {
      what: 'the third place connected',
      timeout: 30_000,
    });
    await pageC.locator('[data-testid="room-item"]', { hasText: roomName }).click();
    await send(pageC, `from the third place ${run}`);
    await expectBodiesInOrder(pageA, [`still chatting ${run}`, `from the third place ${run}`], 'A hears it');
  });

  step('the extra sockets close', async () => {
    await helperPage.evaluate(() => {
      for (const ws of window.extra) ws.close();
    });
  });

  step('no page errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
