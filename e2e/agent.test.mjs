// The assistant as an agent in a browser (scripts/e2e starts the fake model, which answers a
// "remind me to … in N minutes" that is not a plain command with a streamed tool call of the
// reminder tool it is offered, then with text once the result is in): the room shows the call as a
// compact line that opens to its arguments, the answer follows, and the reminder is real.
//
//   E2E_FILES="agent.test.mjs" bash scripts/e2e local

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
const ana = person('Ana', run);
const roomName = `agent ${run.slice(-6)}`;

describe('Mathia as an agent: a tool call in the room', () => {
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

  step('Ana signs up and opens a room', async () => {
    await page.goto(`${BASE}/`);
    await signUpAndOnboard(page, ana);
    await createRoom(page, roomName);
  });

  step('she asks in her own words; the tool call shows as a line, then the answer', async () => {
    await send(page, '@mathia could you please remind me to stretch my legs in 45 minutes');
    reply = await eventually(
      async () => (await messages(page)).find((m) => m.kind === 'ai' && /I will remind you to stretch my legs/.test(m.body || '')),
      { timeout: LONG_WAIT_MS, what: 'the answer after the tool' },
    );
    const line = page.locator(`[data-testid="message"][data-id="${reply.id}"] [data-testid="tool-line"]`);
    await line.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await line.count(), 1);
    assert.equal(await line.getAttribute('data-tool'), 'set_reminder');
    assert.equal(await line.getAttribute('data-status'), 'ok');
    assert.match(await line.getByTestId('tool-summary').textContent(), /stretch my legs/);
    // Compact until opened: the arguments show on a click.
    const args = line.getByTestId('tool-args');
    assert.equal(await args.isVisible(), false, 'the arguments are folded away');
    await line.locator('summary').click();
    await args.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await args.textContent(), /"text": "stretch my legs"/);
    await page.screenshot({ path: `${SHOTS_DIR}agent-tool-line.png` });
  });

  step('the reminder it set is listed, and the line survives a reload', async () => {
    await openContextTab(page, 'reminders');
    await eventually(
      async () => (await page.getByTestId('reminder-text').allTextContents()).includes('stretch my legs'),
      { what: 'the reminder is listed' },
    );
    await page.reload();
    await page.locator('[data-testid="room-item"]', { hasText: roomName }).click();
    const line = page.locator(`[data-testid="message"][data-id="${reply.id}"] [data-testid="tool-line"]`);
    await line.waitFor({ state: 'visible', timeout: LONG_WAIT_MS });
    assert.equal(await line.getAttribute('data-tool'), 'set_reminder');
  });

  step('as the owner, she adds an MCP server in Settings, sees it without its token, and removes it', async () => {
    await page.getByTestId('settings-button').click();
    await page.getByTestId('settings-dialog').waitFor({ state: 'visible', timeout: WAIT_MS });
    await page.getByTestId('settings-tab-wallet').click();
    await page.getByTestId('mcp-section').waitFor({ state: 'visible', timeout: WAIT_MS });
    const form = page.getByTestId('mcp-form').first();
    // A bad name is refused with the server's reason, and nothing is added.
    await form.getByTestId('mcp-name').fill('Shop Server!');
    await form.getByTestId('mcp-url').fill('http://127.0.0.1:9/mcp');
    await form.getByTestId('mcp-add').click();
    await form.getByTestId('mcp-error').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await page.getByTestId('mcp-server').count(), 0);
    // So is a server on this machine: the assistant reaches MCP servers on the public internet.
    await form.getByTestId('mcp-name').fill('shop');
    await form.getByTestId('mcp-add').click();
    await page.waitForFunction(
      () => /public internet/.test(document.querySelector('[data-testid="mcp-error"]')?.textContent ?? ''),
      null,
      { timeout: WAIT_MS },
    );
    assert.equal(await page.getByTestId('mcp-server').count(), 0);
    await form.getByTestId('mcp-url').fill('https://mcp.example.com/mcp');
    await form.getByTestId('mcp-token').fill('secret-token-e2e');
    await form.getByTestId('mcp-tools').fill('lookup_order, track_parcel');
    await form.getByTestId('mcp-add').click();
    const server = page.locator('[data-testid="mcp-server"][data-name="shop"]');
    await server.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await server.getByTestId('mcp-tools').textContent(), /lookup_order, track_parcel/);
    const shown = await server.textContent();
    assert.match(shown, /token set/);
    assert.ok(!shown.includes('secret-token-e2e'), 'the token is never shown');
    await page.screenshot({ path: `${SHOTS_DIR}agent-mcp-settings.png` });
    await server.getByTestId('mcp-remove').click();
    await server.waitFor({ state: 'detached', timeout: WAIT_MS });
    await page.keyboard.press('Escape');
    await page.getByTestId('settings-dialog').waitFor({ state: 'hidden', timeout: WAIT_MS });
  });

  step('no page errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
