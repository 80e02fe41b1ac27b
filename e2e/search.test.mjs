// End-to-end test of message search against a running Mathia server.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test search.test.mjs
//
// A says something distinctive, then A and B bury it under more than a page of other messages
// (sent from their browsers over a socket of their own, each under the per-person rate limit).
// After a reload A's room shows only the newest page; A searches the word, clicks the result,
// and the message is shown in its room, scrolled to and highlighted. A newer result in another
// room works the same way. Waits are bounded polls, never fixed sleeps.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createRoom,
  BASE,
  WAIT_MS,
  LONG_WAIT_MS,
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
const roomName = `search ${run.slice(-6)}`;
const otherRoom = `elsewhere ${run.slice(-6)}`;
const word = `marmalade${run.replace(/\D/g, '').slice(-8)}`;
const target = `the ${word} plan is on`;

/** Sends `n` messages to a room from this page's session over a socket of its own; waits for every ack. */
function fill(page, roomId, n, tag) {
  return page.evaluate(
    async ({ roomId, n, tag }) => {
      const token = localStorage.getItem('mathia.token');
      const auth = { authorization: `Bearer ${token}` };
      const config = await (await fetch('/api/config', { headers: auth })).json();
      const { ticket } = await (await fetch('/api/ws-ticket', { method: 'POST', headers: auth })).json();
      const url = new URL(config.ws_url || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
      url.searchParams.set('ticket', ticket);
      const ws = new WebSocket(url);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      const acked = new Set();
      let failed = null;
      let joined = false;
      ws.onmessage = (event) => {
        const frame = JSON.parse(event.data);
        if (frame.type === 'room_joined') joined = true;
        if (frame.type === 'ack') acked.add(frame.client_msg_id);
        if (frame.type === 'error') failed = frame;
      };
      ws.send(JSON.stringify({ action: 'join_room', room_id: roomId }));
      for (let i = 0; i < n; i++) {
        ws.send(JSON.stringify({ action: 'new_message', room_id: roomId, body: `${tag} filler ${i}`, client_msg_id: `${tag}-${i}` }));
      }
      const start = Date.now();
      while (acked.size < n && !failed && Date.now() - start < 20_000) {
        await new Promise((r) => setTimeout(r, 50));
      }
      ws.close();
      return { joined, acked: acked.size, failed };
    },
    { roomId, n, tag },
  );
}

async function search(page, q) {
  await page.getByTestId('search-input').fill(q);
  await page.getByTestId('search-submit').click();
  return eventually(
    async () => {
      const n = await page.getByTestId('search-result').count();
      return n > 0 ? n : false;
    },
    { what: `results for "${q}"` },
  );
}

async function expectHighlighted(page, body) {
  const node = page.locator('[data-testid="message"].message-highlight');
  await node.waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await node.count(), 1, 'one message highlighted');
  assert.equal(await node.getByTestId('message-body').textContent(), body);
  await eventually(
    async () => {
      const box = await node.boundingBox();
      const list = await page.locator('#message-list').boundingBox();
      return box && list && box.y >= list.y - 1 && box.y + Math.min(box.height, 20) <= list.y + list.height + 1;
    },
    { what: 'the highlighted message is scrolled into view' },
  );
}

describe('Mathia message search', () => {
  let browser;
  let pageA;
  let pageB;
  let roomId;
  const pageErrors = [];
  const step = stepper(() => ({ A: pageA, B: pageB }));

  before(async () => {
    ({ browser, pageA, pageB } = await twoPeople(pageErrors));
  });

  after(async () => {
    await browser?.close();
  });

  step('A signs up, creates a room and says something distinctive', async () => {
    await pageA.goto(`${BASE}/`);
    await signUpAndOnboard(pageA, alice);
    const item = await createRoom(pageA, roomName);
    roomId = await item.getAttribute('data-room-id');
    await send(pageA, target);
    await expectBodiesInOrder(pageA, [target], 'A sees the message stored');
  });

  step('B joins with an invite; both bury the message under more than a page', async () => {
    await pageA.getByTestId('invite-button').click();
    const link = await eventually(
      async () => {
        const value = await pageA.getByTestId('invite-link').inputValue();
        return /[?&]invite=[^&]+/.test(value) ? value : false;
      },
      { what: 'invite link is shown' },
    );
    await pageB.goto(link);
    await signUpAndOnboard(pageB, bob, { join: true });
    await eventually(async () => (await pageB.getByTestId('room-title').textContent()) === roomName, {
      what: 'B is in the room',
    });
    const a = await fill(pageA, roomId, 27, 'a');
    assert.deepEqual(a, { joined: true, acked: 27, failed: null });
    const b = await fill(pageB, roomId, 28, 'b');
    assert.deepEqual(b, { joined: true, acked: 28, failed: null });
  });

  step('after a reload the message is beyond the first page', async () => {
    await pageA.reload();
    await expectBodiesInOrder(pageA, ['b filler 27'], 'A sees the newest message', { timeout: LONG_WAIT_MS });
    const shown = await messages(pageA);
    assert.ok(!shown.some((m) => m.body === target), 'the old message is not loaded yet');
  });

  step('A searches the word, clicks the result: the message is shown highlighted in its room', async () => {
    const n = await search(pageA, word.toUpperCase());
    assert.equal(n, 1);
    const result = pageA.getByTestId('search-result').first();
    assert.ok((await result.textContent()).includes(roomName), 'the result names its room');
    assert.ok((await result.textContent()).includes(word), 'the excerpt shows the word');
    await result.click();
    await expectHighlighted(pageA, target);
    assert.equal(await pageA.getByTestId('room-title').textContent(), roomName);
  });

  step('a result in another room opens that room at the message', async () => {
    await createRoom(pageA, otherRoom);
    await eventually(async () => (await pageA.getByTestId('room-title').textContent()) === otherRoom, {
      what: 'A is in the other room',
    });
    const n = await search(pageA, 'filler 13');
    assert.ok(n >= 2, 'both people said "filler 13"');
    await pageA.getByTestId('search-result').first().click();
    await expectHighlighted(pageA, 'b filler 13');
    assert.equal(await pageA.getByTestId('room-title').textContent(), roomName);
  });

  step('no page errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
