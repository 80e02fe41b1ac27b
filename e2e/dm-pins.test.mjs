// Direct messages and pins: two people of one workspace start a DM from the "New message"
// picker, exchange a message, and both see the DM in their sidebar under the other's name; a
// pinned message shows in the other person's Pins panel live, and unpinning removes it.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test dm-pins.test.mjs

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
  send,
  messageByBody,
  openContextTab,
} from './helpers.mjs';

const run = runId();
const alice = person('Alice', run);
const bruno = person('Bruno', run);
const roomName = `dm room ${run.slice(-6)}`;

describe('Mathia direct messages and pins', () => {
  let browser;
  let pageA;
  let pageB;
  let dmId;
  const pageErrors = [];
  const step = stepper(() => ({ A: pageA, B: pageB }));

  before(async () => {
    ({ browser, pageA, pageB } = await twoPeople(pageErrors));
  });

  after(async () => {
    await browser?.close();
  });

  const dmItem = (page) => page.locator(`[data-testid="dm-item"][data-room-id="${dmId}"]`);

  step('A and B are in one workspace', async () => {
    await pageA.goto(`${BASE}/`);
    await signUpAndOnboard(pageA, alice);
    await createRoom(pageA, roomName);
    await pageA.getByTestId('invite-button').click();
    const inviteLink = await eventually(
      async () => {
        const value = await pageA.getByTestId('invite-link').inputValue();
        return /[?&]invite=[^&]+/.test(value) ? value : false;
      },
      { what: 'invite link is shown' },
    );
    await pageB.goto(inviteLink);
    await signUpAndOnboard(pageB, bruno, { join: true });
    await eventually(async () => (await pageB.getByTestId('room-title').textContent()) === roomName, {
      what: 'B is in the room',
    });
  });

  step('A starts a DM with B from "New message"; it shows in both sidebars', async () => {
    await pageA.getByTestId('dm-new').click();
    const picker = pageA.getByTestId('dm-person');
    await eventually(async () => (await picker.locator('option', { hasText: bruno.name }).count()) === 1, {
      what: 'B is offered in the picker',
    });
    assert.equal(await picker.locator('option', { hasText: alice.name }).count(), 0, 'not yourself');
    await picker.selectOption({ label: bruno.name });
    await pageA.getByTestId('dm-start').click();
    await eventually(async () => (await pageA.getByTestId('room-title').textContent()) === bruno.name, {
      what: 'A opened the DM, titled with B',
    });
    const current = pageA.locator('[data-testid="dm-item"][aria-current="true"]');
    dmId = await current.getAttribute('data-room-id');
    assert.equal((await current.textContent()).includes(bruno.name), true);
    assert.equal(await pageA.getByTestId('invite-button').isDisabled(), true, 'nobody is invited to a DM');
    // B hears of it live, under A's name (B's sidebar is a drawer at phone width).
    await pageB.getByRole('button', { name: 'Show rooms' }).click();
    await dmItem(pageB).waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal((await dmItem(pageB).textContent()).includes(alice.name), true);
    assert.equal(await pageB.locator('[data-testid="room-list"] [data-testid="dm-item"]').count(), 0, 'not among rooms');
  });

  step('They exchange messages in the DM', async () => {
    await send(pageA, 'hi Bruno, just us');
    await dmItem(pageB).click();
    await messageByBody(pageB, 'hi Bruno, just us');
    await send(pageB, 'hi Alice');
    await messageByBody(pageA, 'hi Alice');
  });

  step('A pins a message; B sees it in the Pins panel live; unpinning removes it', async () => {
    await openContextTab(pageB, 'pins');
    await eventually(async () => /Nothing pinned/.test(await pageB.getByTestId('pins-status').textContent()), {
      what: 'B sees no pins yet',
    });
    const message = await messageByBody(pageA, 'hi Alice');
    await message.hover();
    await message.getByTestId('message-pin').click();
    const pin = pageB.getByTestId('pin');
    await pin.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await pin.getByTestId('pin-text').textContent(), 'hi Alice');
    assert.match(await pin.textContent(), new RegExp(`pinned by ${alice.name}`));
    await eventually(async () => (await message.getAttribute('data-pinned')) === 'true', { what: 'A sees it pinned' });

    // Clicking the pin shows the message in B's chat.
    await pin.getByTestId('pin-open').click();
    const onB = await messageByBody(pageB, 'hi Alice');
    await eventually(async () => (await onB.evaluate((el) => el === document.activeElement)), {
      what: 'the pinned message is focused in the chat',
    });

    await message.hover();
    await message.getByTestId('message-pin').click();
    // Showing the message closed B's panel (a drawer at phone width); B opens it again.
    await openContextTab(pageB, 'pins');
    await pin.waitFor({ state: 'detached', timeout: WAIT_MS });
    await eventually(async () => (await message.getAttribute('data-pinned')) === null, { what: 'A sees it unpinned' });
    assert.deepEqual(pageErrors, []);
  });
});
