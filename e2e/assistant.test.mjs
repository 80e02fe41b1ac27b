// The assistant's extras in a browser (scripts/e2e starts the fake model, whose answers to a
// question saying "vary" are numbered): ask, see the reply's source chip, regenerate — the same
// message changes in place — and open the source note from its chip.
//
//   E2E_FILES="assistant.test.mjs" bash scripts/e2e local

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createRoom,
  BASE,
  WAIT_MS,
  DESKTOP,
  LONG_WAIT_MS,
  SHOTS_DIR,
  launchBrowser,
  person,
  runId,
  eventually,
  stepper,
  messages,
  signUpAndOnboard,
  send,
  openContextTab,
} from './helpers.mjs';

const run = runId();
const alice = person('Alice', run);
const roomName = `assistant ${run.slice(-6)}`;
const noteText = `Launch day is Friday ${run.slice(-4)}`;

describe('Mathia assistant: regenerate and sources', () => {
  let browser;
  let page;
  let reply;
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

  step('Alice signs up, opens a room and adds a note', async () => {
    await page.goto(`${BASE}/`);
    await signUpAndOnboard(page, alice);
    await createRoom(page, roomName);
    await openContextTab(page, 'notes');
    await page.getByTestId('note-input').fill(noteText);
    await page.getByTestId('note-add').click();
    await page.getByTestId('note').filter({ hasText: noteText }).waitFor({ state: 'visible', timeout: WAIT_MS });
    await page.getByTestId('context-close').click();
  });

  step('she asks; the reply shows the note as its source', async () => {
    await send(page, '@mathia please vary your answer: when do we launch?');
    reply = await eventually(
      async () => (await messages(page)).find((m) => m.kind === 'ai' && /^Answer number \d+\.$/.test((m.body || '').trim())),
      { timeout: LONG_WAIT_MS, what: 'the AI reply' },
    );
    const chip = page.locator(`[data-testid="message"][data-id="${reply.id}"] [data-testid="source-chip"]`);
    await chip.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await chip.textContent(), /Launch day is Friday/);
  });

  step('Regenerate streams a new answer into the same message', async () => {
    const article = page.locator(`[data-testid="message"][data-id="${reply.id}"]`);
    await article.hover();
    await article.getByTestId('message-regenerate').click();
    const changed = await eventually(
      async () => {
        const now = (await messages(page)).find((m) => m.id === reply.id);
        return now && /^Answer number \d+\.$/.test((now.body || '').trim()) && now.body.trim() !== reply.body.trim() ? now : false;
      },
      { timeout: LONG_WAIT_MS, what: 'the reply changes in place' },
    );
    assert.equal(changed.edited, true, 'marked edited');
    const ai = (await messages(page)).filter((m) => m.kind === 'ai');
    assert.equal(ai.length, 1, 'replaced, not added');
    await page.screenshot({ path: `${SHOTS_DIR}assistant-regenerated.png` });
  });

  step('a source chip opens the Notes panel on that note', async () => {
    const chip = page.locator(`[data-testid="message"][data-id="${reply.id}"] [data-testid="source-chip"]`);
    const noteId = await chip.getAttribute('data-note-id');
    await chip.click();
    await page.getByTestId('notes-panel').waitFor({ state: 'visible', timeout: WAIT_MS });
    const marked = page.locator(`[data-testid="note"][data-note-id="${noteId}"][data-highlighted="true"]`);
    await marked.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await marked.textContent(), /Launch day is Friday/);
    await page.screenshot({ path: `${SHOTS_DIR}assistant-source-note.png` });
  });

  step('no page errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
