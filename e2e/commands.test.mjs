// Commands in the composer and the message menu's actions: `/re` suggests `/remind`, picking it
// and finishing the request sets a reminder (never a message in the room); `/note` adds a note;
// an unknown command is refused with a hint; "Remember this" and "Remind me about this" act on a
// message through the notes and reminders APIs.
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test commands.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createRoom,
  BASE,
  WAIT_MS,
  launchBrowser,
  DESKTOP,
  person,
  runId,
  eventually,
  stepper,
  signUpAndOnboard,
  send,
  messages,
  messageByBody,
  openContextTab,
} from './helpers.mjs';

const run = runId();
const ana = person('Ana', run);
const roomName = `commands ${run.slice(-6)}`;

describe('Mathia commands and message actions', () => {
  let browser;
  let page;
  const pageErrors = [];
  const step = stepper(() => ({ A: page }));

  before(async () => {
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await browser?.close();
  });

  const composer = () => page.getByTestId('composer');
  const bodies = async () => (await messages(page)).map((m) => m.body);
  const reminderTexts = () => page.getByTestId('reminder-text').allTextContents();
  const noteTexts = () => page.getByTestId('note-text').allTextContents();

  step('Ana signs up and opens a room', async () => {
    await page.goto(`${BASE}/`);
    await signUpAndOnboard(page, ana);
    await createRoom(page, roomName);
  });

  step('typing /re suggests /remind; picking it and finishing the request sets a reminder', async () => {
    await composer().click();
    await composer().pressSequentially('/');
    const options = page.getByTestId('command-option');
    await eventually(async () => (await options.count()) === 5, { what: 'all five commands listed after /' });
    await composer().pressSequentially('re');
    await eventually(
      async () => JSON.stringify(await options.evaluateAll((els) => els.map((e) => e.dataset.command))) === '["remind"]',
      { what: '/re leaves only /remind' },
    );
    await composer().press('Enter');
    assert.equal(await composer().inputValue(), '/remind ');
    assert.equal(await page.getByTestId('command-list').isVisible(), false, 'the list closes once picked');
    await composer().pressSequentially('in 2 hours to water the plants');
    await composer().press('Enter');
    await eventually(async () => (await composer().inputValue()) === '', { what: 'the command leaves the composer' });
    await openContextTab(page, 'reminders');
    await eventually(async () => (await reminderTexts()).includes('water the plants'), { what: 'the reminder is listed' });
    assert.ok(!(await bodies()).some((b) => b?.includes('/remind')), 'the command was not posted');
  });

  step('arrows and a click pick too; Escape closes the list; /note adds a note', async () => {
    await composer().fill('');
    await composer().pressSequentially('/');
    await composer().press('ArrowDown');
    const active = page.locator('[data-testid="command-option"].active');
    assert.equal(await active.getAttribute('data-command'), 'note');
    await composer().press('Escape');
    await page.getByTestId('command-list').waitFor({ state: 'hidden', timeout: WAIT_MS });
    await composer().fill('');
    await composer().pressSequentially('/no');
    await page.locator('[data-testid="command-option"][data-command="note"]').click();
    assert.equal(await composer().inputValue(), '/note ');
    await composer().pressSequentially('We chose Postgres');
    await composer().press('Enter');
    await openContextTab(page, 'notes');
    await eventually(async () => (await noteTexts()).includes('We chose Postgres'), { what: 'the note is listed' });
    assert.ok(!(await bodies()).some((b) => b?.includes('/note')), 'the command was not posted');
  });

  step('an unknown command gets a hint and is not sent', async () => {
    await composer().fill('/frobnicate now');
    await composer().press('Enter');
    const notice = page.getByTestId('composer-error');
    await notice.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await notice.textContent(), /no \/frobnicate command/);
    assert.equal(await composer().inputValue(), '/frobnicate now', 'kept for fixing');
    assert.ok(!(await bodies()).some((b) => b?.includes('frobnicate')), 'nothing was posted');
    await composer().fill('');
  });

  step('"Remember this" keeps a message as a note of the room', async () => {
    await send(page, 'The launch moves to March 3');
    const message = await messageByBody(page, 'The launch moves to March 3');
    await message.hover();
    await message.getByTestId('message-remember').click();
    await openContextTab(page, 'notes');
    await eventually(async () => (await noteTexts()).includes('The launch moves to March 3'), { what: 'the note from the message' });
  });

  step('"Remind me about this" sets a reminder for the message with a preset', async () => {
    await send(page, 'Review the budget draft');
    const message = await messageByBody(page, 'Review the budget draft');
    await message.hover();
    await message.getByTestId('message-remind').click();
    const dialog = page.getByTestId('remind-dialog');
    await dialog.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await page.getByTestId('remind-text').inputValue(), 'Review the budget draft');
    await page.getByTestId('remind-preset-tomorrow').check();
    await page.getByTestId('remind-save').click();
    await dialog.waitFor({ state: 'hidden', timeout: WAIT_MS });
    await openContextTab(page, 'reminders');
    await eventually(async () => (await reminderTexts()).includes('Review the budget draft'), { what: 'the reminder is listed' });
    const reminders = await page.evaluate(async () => {
      const res = await fetch('/api/reminders', { headers: { Authorization: `Bearer ${localStorage.getItem('mathia.token')}` } });
      return res.json();
    });
    const set = reminders.find((r) => r.text === 'Review the budget draft');
    const id = await message.getAttribute('data-id');
    assert.equal(set.about_message_id, id, 'the reminder refers to the message');
  });

  step('a custom time that cannot be read is explained in the dialog', async () => {
    const message = await messageByBody(page, 'Review the budget draft');
    await message.hover();
    await message.getByTestId('message-remind').click();
    await page.getByTestId('remind-custom').fill('someday maybe');
    await page.getByTestId('remind-save').click();
    const error = page.getByTestId('remind-error');
    await error.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await error.textContent(), /couldn't find a time/);
    await page.getByTestId('remind-cancel').click();
    await page.getByTestId('remind-dialog').waitFor({ state: 'hidden', timeout: WAIT_MS });
  });

  step('no page errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
