// The invite preview: someone already signed in who opens an invite link is shown what it would
// join (room, workspace, who invited) with Join and Decline, and is not a member until Join.
// The room's owner then sees them among its members and removes them.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test invite.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createRoom,
  openContextTab,
  send,
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
    // A, the owner, watches the room's members meanwhile.
    await pageA.getByTestId('room-title').click(); // the chat, not the invite panel, has the focus
    await openContextTab(pageA, 'moderation');
    await eventually(async () => /^1 member\./.test(await pageA.getByTestId('member-status').textContent()), {
      what: 'A sees herself alone',
    });
    await pageC.goto(inviteLink);
    await pageC.getByTestId('invite-dialog').waitFor({ state: 'visible', timeout: WAIT_MS });
    await pageC.getByTestId('invite-join').click();
    await eventually(async () => (await pageC.getByTestId('room-title').textContent()) === roomName, {
      what: 'C sees the joined room',
    });
    await roomItem(pageC).waitFor({ state: 'attached', timeout: WAIT_MS });
    assert.deepEqual(pageErrors, []);
  });

  step('A, the owner, sees C come in among the members and removes her; C can no longer post', async () => {
    // The open panel reads the members again when C arrives: nothing is reopened here.
    const member = (who) => pageA.getByTestId('room-member').filter({ hasText: who.name });
    await member(carol).waitFor({ state: 'visible', timeout: WAIT_MS });
    await eventually(async () => /^2 members\./.test(await pageA.getByTestId('member-status').textContent()), {
      what: 'A sees two members',
    });
    assert.match(await member(alice).textContent(), /\(you\)/);
    assert.equal(await member(alice).getByTestId('remove-member').count(), 0, 'nobody removes themselves here');

    pageA.once('dialog', (dialog) => dialog.accept());
    await member(carol).getByTestId('remove-member').click();
    await member(carol).waitFor({ state: 'detached', timeout: WAIT_MS });
    assert.match(await pageA.getByTestId('member-status').textContent(), new RegExp(`Removed ${carol.name}`));

    // The server agrees: C's next message is refused, and A hears nothing from her.
    await send(pageC, 'am I still here?');
    const failed = pageC.locator('[data-testid="message"][data-status="failed"]');
    await failed.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await failed.textContent(), /not a member of this room/);
    // Closed first, so the reload does not reopen it while the test opens it.
    await pageA.getByTestId('context-close').click();
    await pageA.getByTestId('context-panel').waitFor({ state: 'hidden', timeout: WAIT_MS });
    await pageA.reload();
    await waitForApp(pageA, alice);
    await openContextTab(pageA, 'moderation');
    await eventually(async () => /^1 member\./.test(await pageA.getByTestId('member-status').textContent()), {
      what: 'after a reload, one member',
    });
    assert.equal(await pageA.getByTestId('message').filter({ hasText: 'am I still here?' }).count(), 0);
    assert.deepEqual(pageErrors, []);
  });
});
