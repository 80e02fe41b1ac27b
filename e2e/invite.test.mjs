// The invite preview: someone already signed in who opens an invite link is shown what it would
// join (room, workspace, who invited) with Join and Decline, and is not a member until Join.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test invite.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createRoom,
  BASE,
  WAIT_MS,
  twoPeople,
  person,
  runId,
  eventually,
  stepper,
  signUpAndOnboard,
  waitForApp,
} from './helpers.mjs';

const run = runId();
const alice = person('Alice', run);
const carol = person('Carol', run);
const roomName = `invite room ${run.slice(-6)}`;

describe('Mathia invite preview', () => {
  let browser;
  let pageA;
  let pageC;
  let roomId;
  let inviteLink;
  const pageErrors = [];
  const step = stepper(() => ({ A: pageA, C: pageC }));

  before(async () => {
    ({ browser, pageA, pageB: pageC } = await twoPeople(pageErrors));
  });

  after(async () => {
    await browser?.close();
  });

  const roomItem = (page) => page.locator(`[data-testid="room-item"][data-room-id="${roomId}"]`);

  step('A signs up, creates a room and gets an invite link', async () => {
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
  });

  step('C, signed in elsewhere, opens the link and sees what it would join', async () => {
    await pageC.goto(`${BASE}/`);
    await signUpAndOnboard(pageC, carol);
    await pageC.goto(inviteLink);
    const dialog = pageC.getByTestId('invite-dialog');
    await dialog.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await pageC.getByTestId('invite-room').textContent(), roomName);
    assert.equal(await pageC.getByTestId('invite-workspace').textContent(), `${alice.name}'s team`);
    assert.equal(await pageC.getByTestId('invite-inviter').textContent(), alice.name);
    assert.equal(await roomItem(pageC).count(), 0, 'not joined before choosing');
  });

  step('Decline joins nothing', async () => {
    await pageC.getByTestId('invite-decline').click();
    await pageC.getByTestId('invite-dialog').waitFor({ state: 'hidden', timeout: WAIT_MS });
    await pageC.reload();
    await waitForApp(pageC, carol);
    assert.equal(await pageC.getByTestId('invite-dialog').isVisible(), false, 'declined: not asked again');
    assert.equal(await roomItem(pageC).count(), 0, 'declining joins nothing');
  });

  step('Join joins and opens the room', async () => {
    await pageC.goto(inviteLink);
    await pageC.getByTestId('invite-dialog').waitFor({ state: 'visible', timeout: WAIT_MS });
    await pageC.getByTestId('invite-join').click();
    await eventually(async () => (await pageC.getByTestId('room-title').textContent()) === roomName, {
      what: 'C sees the joined room',
    });
    await roomItem(pageC).waitFor({ state: 'attached', timeout: WAIT_MS });
    assert.deepEqual(pageErrors, []);
  });
});
