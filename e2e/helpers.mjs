// Shared pieces of the browser tests: launching Debian's Chromium, bounded polling, reading the
// message list, and signing up a person *and* walking them through onboarding (which the server
// requires before chatting).
//
// Every wait here is a bounded poll (WAIT_MS at most unless a caller says otherwise), never a
// fixed sleep.

import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { chromium } from 'playwright-core';

export const BASE = (process.env.MATHIA_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const WAIT_MS = 10_000;
export const LONG_WAIT_MS = 15_000;
export const SHOTS_DIR = fileURLToPath(new URL('./screenshots/', import.meta.url));
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 740 };
export const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser() {
  await mkdir(SHOTS_DIR, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
}

/** A unique person for this run. */
/** A browser with two people: A on a desktop, B on a phone; page errors are collected. */
export async function twoPeople(pageErrors) {
  const browser = await launchBrowser();
  const contextA = await browser.newContext({ viewport: DESKTOP });
  const contextB = await browser.newContext({ viewport: PHONE });
  const pageA = await contextA.newPage();
  const pageB = await contextB.newPage();
  for (const [who, page] of [['A', pageA], ['B', pageB]]) {
    page.on('pageerror', (err) => pageErrors.push(`${who}: ${err.message}`));
  }
  return { browser, contextA, contextB, pageA, pageB };
}

export function person(first, run) {
  const slug = first.toLowerCase();
  return {
    name: `${first} ${run.slice(-6)}`,
    email: `${slug}-${run}@example.com`,
    password: `pw-${slug}-${run}-correct-horse`,
  };
}

export function runId() {
  return `${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
}

/** Polls `check` until it returns a truthy value, or fails after `timeout` ms. */
export async function eventually(check, { timeout = WAIT_MS, interval = 100, what = 'condition' } = {}) {
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

/**
 * Sequential steps sharing one "broken" flag: once a step fails the rest are skipped, and each
 * failure leaves a screenshot of every page. `critical: false` steps do not break the chain.
 */
export function stepper(pages) {
  let broken = false;
  return function step(name, fn, { critical = true } = {}) {
    it(name, async (t) => {
      if (broken) {
        t.skip('an earlier step failed');
        return;
      }
      try {
        await fn(t);
      } catch (err) {
        if (critical) broken = true;
        const slug = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 80);
        for (const [label, page] of Object.entries(pages())) {
          await page?.screenshot({ path: `${SHOTS_DIR}failed-${slug}-${label}.png` }).catch(() => {});
        }
        throw err;
      }
    });
  };
}

/** The rendered messages of a page, in DOM order. */
export function messages(page) {
  return page.getByTestId('message').evaluateAll((els) =>
    els.map((el) => ({
      id: el.dataset.id ?? null,
      seq: el.dataset.seq == null ? null : Number(el.dataset.seq),
      kind: el.dataset.kind ?? null,
      status: el.dataset.status ?? null,
      deleted: el.dataset.deleted === 'true',
      edited: el.dataset.edited === 'true',
      author: el.querySelector('[data-testid="message-author"]')?.textContent ?? null,
      body: el.querySelector('[data-testid="message-body"]')?.textContent ?? null,
      quote: el.querySelector('[data-testid="message-quote-text"]')?.textContent ?? null,
      reactions: [...el.querySelectorAll('[data-testid="reaction"]')].map((r) => ({
        emoji: r.dataset.emoji,
        count: Number(r.dataset.count),
        mine: r.getAttribute('aria-pressed') === 'true',
      })),
    })),
  );
}

/** Waits until the stored (not pending) messages with the given bodies appear in that order. */
export async function expectBodiesInOrder(page, bodies, what, { timeout = WAIT_MS } = {}) {
  return eventually(
    async () => {
      const all = await messages(page);
      const stored = all.filter((m) => m.id !== null);
      const seqs = stored.map((m) => m.seq);
      const ascending = seqs.every((s, i) => i === 0 || s > seqs[i - 1]);
      const ours = stored.filter((m) => bodies.includes(m.body)).map((m) => m.body);
      return ascending && JSON.stringify(ours) === JSON.stringify(bodies) ? stored : false;
    },
    { what, timeout },
  );
}

/** The locator of the stored message whose body is exactly `body` (waits for it). */
export async function messageByBody(page, body, what = `message "${body}"`) {
  const id = await eventually(
    async () => (await messages(page)).find((m) => m.id !== null && m.body === body)?.id,
    { what },
  );
  return page.locator(`[data-testid="message"][data-id="${id}"]`);
}

/** Fills in the sign-up form (switching to it if needed) and submits it. */
export async function submitSignUp(page, who) {
  await page.getByTestId('auth-email').waitFor({ state: 'visible', timeout: WAIT_MS });
  if (!(await page.getByTestId('auth-name').isVisible())) await page.getByTestId('auth-toggle').click();
  await page.getByTestId('auth-name').fill(who.name);
  await page.getByTestId('auth-email').fill(who.email);
  await page.getByTestId('auth-password').fill(who.password);
  await page.getByTestId('auth-submit').click();
}

/** Waits until the app (not the wizard) shows `who` signed in. */
export async function waitForApp(page, who) {
  await eventually(
    async () =>
      (await page.locator('#app-view').isVisible()) &&
      (await page.getByTestId('current-user').textContent()) === who.name,
    { what: `${who.name} is in the app` },
  );
}

/** The wizard step on screen ("profile", "goals", "workspace"). */
export async function onboardingStep(page) {
  return page.locator('[data-testid="onb-step"]:visible').getAttribute('data-step', { timeout: WAIT_MS });
}

export async function expectOnboardingStep(page, step) {
  await eventually(async () => (await onboardingStep(page)) === step, { what: `onboarding step "${step}"` });
}

/**
 * Walks the onboarding wizard. `join: true` joins with the invite code (the one pre-filled from
 * the invite link, or `inviteCode`); otherwise it creates `workspaceName`. `shots` names a
 * screenshot prefix (e.g. "desktop-onboarding") to take one picture per step; `goalsShot` names
 * one more picture of the goals step (the README's docs/screenshots/desktop-onboarding.png).
 */
export async function completeOnboarding(page, who, opts = {}) {
  const {
    timezone = 'Europe/Berlin',
    role = 'Engineer',
    bio = 'Here for the end-to-end tests.',
    goals = ['Keep track of decisions', 'Remember action items'],
    focus = 'Shipping the beta',
    tone = 'concise',
    join = false,
    inviteCode = null,
    workspaceName = `${who.name}'s team`,
    shots = null,
    goalsShot = null,
  } = opts;
  await page.getByTestId('onboarding').waitFor({ state: 'visible', timeout: WAIT_MS });

  await expectOnboardingStep(page, 'profile');
  await page.getByTestId('onb-display-name').fill(who.name);
  await page.getByTestId('onb-timezone').selectOption(timezone);
  await page.getByTestId('onb-role').fill(role);
  await page.getByTestId('onb-bio').fill(bio);
  if (shots) await page.screenshot({ path: `${SHOTS_DIR}${shots}-1-profile.png` });
  await page.getByTestId('onb-next').click();

  await expectOnboardingStep(page, 'goals');
  for (const goal of goals) {
    await page.getByTestId('onb-goal-input').fill(goal);
    await page.getByTestId('onb-goal-add').click();
  }
  await eventually(async () => (await page.getByTestId('onb-goal').count()) === goals.length, {
    what: 'the goals are listed as chips',
  });
  await page.getByTestId('onb-focus').fill(focus);
  await page.getByTestId('onb-tone').selectOption(tone);
  if (shots) await page.screenshot({ path: `${SHOTS_DIR}${shots}-2-goals.png` });
  if (goalsShot) await page.screenshot({ path: `${SHOTS_DIR}${goalsShot}.png` });
  await page.getByTestId('onb-next').click();

  await expectOnboardingStep(page, 'workspace');
  if (join) {
    if (inviteCode) await page.getByTestId('onb-invite-code').fill(inviteCode);
    await page.getByTestId('onb-ws-join').check();
  } else {
    await page.getByTestId('onb-workspace-name').fill(workspaceName);
    await page.getByTestId('onb-ws-create').check();
  }
  if (shots) await page.screenshot({ path: `${SHOTS_DIR}${shots}-3-workspace.png` });
  await page.getByTestId('onb-next').click();
  await waitForApp(page, who);
}

/**
 * Signs up and, when the server asks for it, completes onboarding; resolves once the app shows
 * the person signed in. Options are those of `completeOnboarding`.
 */
export async function signUpAndOnboard(page, who, opts = {}) {
  await submitSignUp(page, who);
  const where = await eventually(
    async () => {
      if (await page.getByTestId('onboarding').isVisible()) return 'onboarding';
      if (
        (await page.locator('#app-view').isVisible()) &&
        (await page.getByTestId('current-user').textContent()) === who.name
      ) {
        return 'app';
      }
      return false;
    },
    { what: `${who.name} is signed up` },
  );
  if (where === 'onboarding') await completeOnboarding(page, who, opts);
  return where;
}

/** Types into the composer and sends with Enter. */
/** Creates a room from the sidebar and waits until it is the open one: its sidebar item. */
export async function createRoom(page, name) {
  await page.getByTestId('new-room-name').fill(name);
  await page.getByTestId('new-room-submit').click();
  const item = page.locator('[data-testid="room-item"][aria-current="true"]', { hasText: name });
  await item.waitFor({ state: 'visible', timeout: WAIT_MS });
  return item;
}

export async function send(page, text) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
  await eventually(async () => (await composer.inputValue()) === '', { what: 'composer cleared after send' });
}

/** Opens the right-hand context panel on a tab ("notes", "reminders", "calendly", "moderation"). */
export async function openContextTab(page, tab) {
  const panel = page.getByTestId('context-panel');
  if (!(await panel.isVisible())) await page.getByTestId('notes-toggle').click();
  await panel.waitFor({ state: 'visible', timeout: WAIT_MS });
  await page.getByTestId(`ctx-tab-${tab}`).click();
  await page.getByTestId(`${tab}-panel`).waitFor({ state: 'visible', timeout: WAIT_MS });
}
