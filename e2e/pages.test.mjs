// End-to-end test of a refused `join_room`, against a running Mathia server.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test pages.test.mjs
//
// A person reads at most 1,200 pages of history a minute (MATHIA_HISTORY_PAGES_PER_MIN, the
// default here): each `join_room` and each `GET /api/rooms/{id}/messages` is one. A reads the
// whole budget over HTTP, then reloads: the room's join is refused. The room says when it will
// load, the composer still sends (sending was never refused), and once the window frees the room
// loads by itself with what A sent meanwhile. Waits are bounded polls.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE,
  DESKTOP,
  SHOTS_DIR,
  createRoom,
  eventually,
  expectBodiesInOrder,
  launchBrowser,
  messages,
  person,
  runId,
  send,
  signUpAndOnboard,
  stepper,
} from './helpers.mjs';

const run = runId();
const alice = person('Alice', run);
const roomName = `pages ${run.slice(-6)}`;
const WAITING = /^Too many rooms opened this minute; this one loads in \d+ s\.$/;

/** In the page: reads pages of the room's history until one is refused; how many were read. */
function readUntilRefused(page, roomId) {
  return page.evaluate(async (roomId) => {
    const token = localStorage.getItem('mathia.token');
    const read = () =>
      fetch(`/api/rooms/${roomId}/messages`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    let served = 0;
    for (let batch = 0; batch < 40; batch++) {
      const statuses = await Promise.all(Array.from({ length: 50 }, read));
      served += statuses.filter((s) => s === 200).length;
      const other = statuses.find((s) => s !== 200 && s !== 429);
      if (other) throw new Error(`history read answered ${other}`);
      if (statuses.includes(429)) return served;
    }
    throw new Error(`never refused after ${served} pages`);
  }, roomId);
}

async function notice(page) {
  const el = page.getByTestId('composer-error');
  return (await el.isVisible()) ? (await el.textContent()).trim() : null;
}

describe('Mathia: a join refused for reading too much', () => {
  let browser;
  let page;
  let roomId;
  const pageErrors = [];
  const step = stepper(() => ({ A: page }));

  before(async () => {
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await browser?.close();
  });

  step('A signs up, creates a room and says something', async () => {
    await page.goto(`${BASE}/`);
    await signUpAndOnboard(page, alice);
    await createRoom(page, roomName);
    await send(page, `before the reload ${run}`);
    await expectBodiesInOrder(page, [`before the reload ${run}`], 'the first message');
    roomId = await page.evaluate(async (name) => {
      const token = localStorage.getItem('mathia.token');
      const rooms = await (await fetch('/api/rooms', { headers: { authorization: `Bearer ${token}` } })).json();
      return rooms.find((r) => r.name === name)?.id;
    }, roomName);
    assert.ok(roomId, 'the room is listed');
  });

  step("A reads the minute's pages, reloads, and the room says when it loads", async () => {
    const served = await readUntilRefused(page, roomId);
    // The budget less the pages the page itself read (joins, catch-up); never more than it.
    assert.ok(served > 1_000 && served <= 1_200, `served ${served}`);
    await page.reload();
    const item = page.locator('[data-testid="room-item"]', { hasText: roomName });
    await item.waitFor({ state: 'visible' });
    await item.click();
    await eventually(
      async () => {
        const text = await notice(page);
        if (!WAITING.test(text ?? '')) throw new Error(`notice: ${JSON.stringify(text)}`);
        return true;
      },
      { what: 'the room says when it loads' },
    );
    // It counts down.
    const seconds = async () => Number(/(\d+) s\.$/.exec((await notice(page)) ?? '')?.[1]);
    const first = await seconds();
    await eventually(async () => (await seconds()) < first, { what: 'the wait counts down' });
    await page.screenshot({ path: `${SHOTS_DIR}pages-join-refused.png` });
    assert.deepEqual(
      (await messages(page)).filter((m) => m.id !== null),
      [],
      'nothing of the room was read',
    );
    // Sending was never refused: the composer is not locked and the message is stored.
    assert.equal(await page.getByTestId('send-button').isDisabled(), false);
    await send(page, `while waiting ${run}`);
    await eventually(
      async () => {
        const mine = (await messages(page)).find((m) => m.body === `while waiting ${run}`);
        if (mine?.status === 'failed') throw new Error('the message failed');
        return mine?.status === 'sent';
      },
      { what: 'the message sent while waiting is acknowledged' },
    );
    // Typing it told nothing else (typing goes only to a room the socket is in).
    assert.match((await notice(page)) ?? '', WAITING);
  });

  step('once the window frees, the room loads by itself', async () => {
    await expectBodiesInOrder(page, [`before the reload ${run}`, `while waiting ${run}`], 'the room loaded', {
      timeout: 90_000,
    });
    await eventually(async () => (await notice(page)) === null, { what: 'the notice is gone' });
  });

  step('no page errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
