// End-to-end test of sharing files in a room, against a running Mathia server:
//
//   MATHIA_URL=http://127.0.0.1:8000 node --test files.test.mjs
//
// A (desktop) and B (phone) share a room. A attaches a real PNG with a caption (both see the
// thumbnail load, and A opens the full image in a new tab), drops a .txt file on the room (B
// sees its card and downloads the very same bytes), starts an upload and cancels it, tries a
// 6 MB file (refused in the browser) and an .exe renamed .png (refused by the server, whose
// reason A sees as a toast). Nothing refused or cancelled ever reaches B. Waits are bounded
// polls, never fixed sleeps. Screenshots go to e2e/screenshots/ (git-ignored).

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import {
  createRoom,
  BASE,
  WAIT_MS,
  SHOTS_DIR,
  PHONE,
  twoPeople,
  person,
  runId,
  eventually,
  stepper,
  messages,
  expectBodiesInOrder,
  messageByBody,
  signUpAndOnboard,
  send,
} from './helpers.mjs';

const run = runId();
const alice = person('Alice', run);
const bob = person('Bob', run);
const roomName = `files ${run.slice(-6)}`;
const tag = run.slice(-6);

const PNG_W = 320;
const PNG_H = 200;
const pngName = `chart-${tag}.png`;
const caption = `Here is the chart ${tag}`;
const txtName = `notes-${tag}.txt`;
const txtText = `Notes from the planning call ${tag}\n- ship the beta\n- ✅ files in rooms\n`;
const bigName = `big-${tag}.txt`;
const fakeName = `holiday-${tag}.png`;
const slowName = `slow-${tag}.txt`;

// ---- a real PNG, built here: a small bar chart on a soft gradient ------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let crc = 0xffffffff;
  for (const b of buf) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

function makePng(w, h) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(w, 0);
  header.writeUInt32BE(h, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const bars = [0.35, 0.55, 0.45, 0.75, 0.9];
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    raw[row] = 0; // no filter
    for (let x = 0; x < w; x++) {
      let [r, g, b] = [232 - Math.round((y / h) * 20), 235 - Math.round((y / h) * 12), 248];
      const slot = Math.floor((x / w) * bars.length);
      const inBar = (x / w) * bars.length - slot > 0.2 && (x / w) * bars.length - slot < 0.8;
      if (inBar && y > h * (1 - bars[slot]) && y < h - 12) [r, g, b] = [63, 81, 181];
      const at = row + 1 + x * 3;
      raw[at] = r;
      raw[at + 1] = g;
      raw[at + 2] = b;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- page helpers ---------------------------------------------------------------------------------

/** The stored message carrying the attachment named `name`. */
function messageWithFile(page, name) {
  return page
    .locator('[data-testid="message"][data-id]')
    .filter({ has: page.locator(`[data-testid="attachment-name"][title="${name}"]`) });
}

/** Waits until the thumbnail in `message` has really loaded; resolves with its natural size. */
async function loadedThumbnail(message, what) {
  return eventually(
    async () => {
      const size = await message
        .getByTestId('attachment-image')
        .evaluate((img) => (img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null));
      return size;
    },
    { what },
  );
}

async function toastTexts(page) {
  return page.getByTestId('toast').allTextContents();
}

describe('Mathia files', () => {
  let browser;
  let contextA;
  let contextB;
  let pageA;
  let pageB;
  let dir;
  let roomId;
  let inviteLink;
  const paths = {};
  const pageErrors = [];
  const consoleErrors = [];
  const step = stepper(() => ({ A: pageA, B: pageB }));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mathia-files-'));
    const files = {
      png: [pngName, makePng(PNG_W, PNG_H)],
      big: [bigName, Buffer.alloc(6 * 1024 * 1024, 'a')],
      // A Windows program renamed to look like a picture: "MZ", then a DOS header's worth of bytes.
      fake: [fakeName, Buffer.concat([Buffer.from('MZ'), Buffer.from([0x90, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xff, 0xff]), Buffer.alloc(200)])],
      slow: [slowName, Buffer.from('this upload is cancelled halfway\n'.repeat(2000))],
    };
    for (const [key, [name, bytes]] of Object.entries(files)) {
      paths[key] = join(dir, name);
      await writeFile(paths[key], bytes);
    }
    ({ browser, contextA, contextB, pageA, pageB } = await twoPeople(pageErrors));
    for (const [who, page] of [['A', pageA], ['B', pageB]]) {
      page.on('console', (msg) => {
        if (msg.type() === 'error') consoleErrors.push(`${who}: ${msg.text()}`);
      });
    }
  });

  after(async () => {
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  step('A signs up, creates a room and gets an invite link', async () => {
    await pageA.goto(`${BASE}/`);
    await signUpAndOnboard(pageA, alice);
    const item = await createRoom(pageA, roomName);
    roomId = await item.getAttribute('data-room-id');
    assert.ok(roomId, 'the room item carries data-room-id');
    await pageA.getByTestId('invite-button').click();
    inviteLink = await eventually(
      async () => {
        const value = await pageA.getByTestId('invite-link').inputValue();
        return /[?&]invite=[^&]+/.test(value) ? value : false;
      },
      { what: 'invite link is shown' },
    );
    await pageA.getByRole('button', { name: 'Close invite' }).click();
  });

  step('B joins with the link; both are in the room', async () => {
    await pageB.goto(inviteLink);
    await signUpAndOnboard(pageB, bob, { join: true });
    await eventually(async () => (await pageB.getByTestId('room-title').textContent()) === roomName, {
      what: 'B sees the invited room',
    });
    await pageA
      .getByTestId('online-list')
      .getByTestId('online-user')
      .filter({ hasText: bob.name })
      .waitFor({ state: 'visible', timeout: WAIT_MS });
    const attach = pageB.getByTestId('attach-button');
    await attach.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await attach.getAttribute('aria-label'), 'Attach a file');
    assert.equal(await attach.isEnabled(), true, 'the attach button is enabled in a room');
    assert.equal(
      await pageB.getByTestId('file-input').getAttribute('accept'),
      '.txt,.pdf,.doc,.docx,.jpg,.jpeg,.png',
    );
  });

  step('A attaches a PNG with a caption; both see the thumbnail load', async () => {
    await pageA.getByTestId('composer').fill(caption);
    await pageA.getByTestId('file-input').setInputFiles(paths.png);
    await eventually(async () => (await pageA.getByTestId('composer').inputValue()) === '', {
      what: 'the composer text became the caption',
    });
    for (const [who, page] of [['A', pageA], ['B', pageB]]) {
      const message = await messageByBody(page, caption, `${who} sees the captioned image message`);
      assert.equal(await message.getByTestId('message-attachment').count(), 1);
      const [w, h] = await loadedThumbnail(message, `${who}'s thumbnail loads`);
      assert.deepEqual([w, h], [PNG_W, PNG_H], `${who}'s thumbnail is the real image`);
      const src = await message.getByTestId('attachment-image').getAttribute('src');
      assert.ok(!src.includes('/api/files/'), `the img src is a signed link, not the API path (${src})`);
      assert.match(new URL(src, BASE).protocol, /^https?:$/);
      const box = await message.getByTestId('attachment-image').boundingBox();
      assert.ok(box.width <= 241, `the thumbnail is at most 240 px wide (${box.width})`);
      assert.equal(await message.getByTestId('message-author').textContent(), alice.name);
    }
    assert.equal((await messages(pageA)).filter((m) => m.id === null).length, 0, 'nothing left pending on A');
  });

  step('A opens the full image in a new tab', async () => {
    const message = messageWithFile(pageA, pngName);
    const [tab] = await Promise.all([
      contextA.waitForEvent('page', { timeout: WAIT_MS }),
      message.getByTestId('attachment-open').click(),
    ]);
    try {
      const width = await eventually(
        async () =>
          tab.evaluate(() => {
            const img = document.images[0];
            return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : null;
          }),
        { what: 'the new tab shows the image' },
      );
      assert.equal(width, PNG_W);
    } finally {
      await tab.close();
    }
  });

  step('A drops a .txt file on the room; B sees its card and downloads the same bytes', async () => {
    const dataTransfer = await pageA.evaluateHandle(
      ({ name, text }) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], name, { type: 'text/plain' }));
        return dt;
      },
      { name: txtName, text: txtText },
    );
    const zone = pageA.getByTestId('drop-zone');
    assert.equal(await zone.isVisible(), false, 'no drop overlay before dragging');
    await pageA.getByTestId('message-list').dispatchEvent('dragenter', { dataTransfer });
    await zone.waitFor({ state: 'visible', timeout: WAIT_MS });
    await pageA.screenshot({ path: `${SHOTS_DIR}files-desktop-drop-zone.png` });
    await zone.dispatchEvent('dragover', { dataTransfer });
    await zone.dispatchEvent('drop', { dataTransfer });
    await zone.waitFor({ state: 'hidden', timeout: WAIT_MS });

    const size = Buffer.byteLength(txtText);
    const card = messageWithFile(pageB, txtName).getByTestId('attachment-card');
    await card.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await card.getByTestId('attachment-name').textContent(), txtName);
    assert.equal(await card.getAttribute('data-size'), String(size));
    assert.equal(await card.getByTestId('attachment-size').textContent(), `${size} B`);
    assert.equal(await messageWithFile(pageB, txtName).getByTestId('attachment-image').count(), 0, 'no thumbnail for text');

    // The card fits the phone: nothing sticks out sideways.
    const right = (await card.boundingBox()).x + (await card.boundingBox()).width;
    assert.ok(right <= PHONE.width, `the card fits a ${PHONE.width} px screen (right edge ${right})`);
    assert.ok(
      await pageB.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      'no horizontal scrolling on the phone',
    );

    const [download] = await Promise.all([
      pageB.waitForEvent('download', { timeout: WAIT_MS }),
      card.getByTestId('attachment-download').click(),
    ]);
    assert.equal(download.suggestedFilename(), txtName);
    const bytes = await readFile(await download.path());
    assert.ok(bytes.equals(Buffer.from(txtText)), 'the downloaded bytes are the dropped file');

    await messageWithFile(pageA, txtName).getByTestId('attachment-card').waitFor({ state: 'visible', timeout: WAIT_MS });
  });

  step('screenshots: an image message and a file card, desktop and phone', async () => {
    for (const [who, page] of [['A', pageA], ['B', pageB]]) {
      await loadedThumbnail(messageWithFile(page, pngName), `${who}'s thumbnail is still shown`);
    }
    await pageA.screenshot({ path: `${SHOTS_DIR}files-desktop.png` });
    await pageA.screenshot({ path: `${SHOTS_DIR}desktop-files.png` }); // README
    await pageB.screenshot({ path: `${SHOTS_DIR}files-mobile.png` });
  });

  step('A starts an upload, sees its progress row, and cancels it', async () => {
    // Hold the bytes' PUT so the row stays up long enough to look at (and cancel).
    const held = [];
    // The local store's upload URL, or the bucket's presigned one (the emulated deployment).
    const isUpload = (url) => /^\/api\/uploads\/|\/pending\//.test(new URL(url).pathname);
    await pageA.route(isUpload, (route) => {
      held.push(route);
    });
    try {
      await pageA.getByTestId('file-input').setInputFiles(paths.slow);
      const row = pageA.getByTestId('upload-row').filter({ hasText: slowName });
      await row.waitFor({ state: 'visible', timeout: WAIT_MS });
      await row.getByTestId('upload-progress').waitFor({ state: 'visible', timeout: WAIT_MS });
      await eventually(async () => held.length > 0, { what: 'the PUT of the bytes started' });
      await pageA.screenshot({ path: `${SHOTS_DIR}files-desktop-uploading.png` });
      await row.getByRole('button', { name: `Cancel uploading ${slowName}` }).click();
      await row.waitFor({ state: 'detached', timeout: WAIT_MS });
      assert.equal(await pageA.getByTestId('upload-list').isVisible(), false, 'no upload rows left');
    } finally {
      await pageA.unroute(isUpload);
      for (const route of held) await route.abort().catch(() => {});
    }
  });

  step('A tries a 6 MB file: a clear toast, nothing is uploaded', async () => {
    await pageA.getByTestId('file-input').setInputFiles(paths.big);
    const text = await eventually(
      async () => (await toastTexts(pageA)).find((t) => t.includes(bigName)),
      { what: 'A sees a toast about the big file' },
    );
    assert.match(text, /6\.0 MB/);
    assert.match(text, /at most 5\.0 MB/);
    assert.equal(await pageA.getByTestId('upload-row').count(), 0, 'no upload started');
  });

  step('A tries an .exe renamed .png: the server refuses it and A sees why', async () => {
    await pageA.getByTestId('file-input').setInputFiles(paths.fake);
    const text = await eventually(
      async () => (await toastTexts(pageA)).find((t) => t.includes(fakeName)),
      { what: 'A sees the server refusing the file' },
    );
    assert.match(text, /file rejected/i);
    await pageA.screenshot({ path: `${SHOTS_DIR}files-desktop-rejected.png` });
    await eventually(async () => (await messages(pageA)).every((m) => m.id !== null), {
      what: 'no pending message left on A',
    });
    assert.equal(await pageA.getByTestId('upload-row').count(), 0);
  });

  step('nothing cancelled or refused reached B (nor A)', async () => {
    // Anything A sent before this message would reach B before it: the room is ordered.
    const marker = `after the refused files ${tag}`;
    await send(pageA, marker);
    await expectBodiesInOrder(pageB, [caption, marker], 'B sees the marker after the image');
    for (const [who, page] of [['A', pageA], ['B', pageB]]) {
      const names = await page.getByTestId('attachment-name').evaluateAll((els) => els.map((e) => e.textContent));
      assert.deepEqual(names.sort(), [pngName, txtName].sort(), `${who} sees only the two shared files`);
    }
  });

  step('after a reload B still sees the image and the card from the history', async () => {
    await pageB.reload();
    await eventually(async () => (await pageB.getByTestId('room-title').textContent()) === roomName, {
      what: 'B is back in the room',
    });
    const [w] = await loadedThumbnail(messageWithFile(pageB, pngName), "B's thumbnail loads again");
    assert.equal(w, PNG_W);
    await messageWithFile(pageB, txtName).getByTestId('attachment-download').waitFor({ state: 'visible', timeout: WAIT_MS });
  });

  step('no uncaught errors or console errors in either page', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(consoleErrors, []);
  });
});
