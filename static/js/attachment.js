// The DOM of a file attachment: an image thumbnail (loaded from a short-lived link once it is on
// screen, opened full size in a new tab on click) or a file card with a Download button, plus
// the badge naming a file's kind. Names are shown with textContent only; links come from
// files.js (`fileLink`), which also explains why `attachment.url` never goes into an href or src.

import { fileLink, formatSize, extensionOf, kindOf, IMAGE_TYPES } from './files.js';
import { el } from './dom.js';
import { toast } from './toast.js';

const BLOB_KEEP_MS = 60_000; // how long a full-size image opened in a tab stays addressable

// ---- download and open ---------------------------------------------------------------------------

/** Downloads a file with a fresh link (the link is served as an attachment: the page stays). */
async function download(file, button) {
  if (button.disabled) return;
  const label = button.querySelector('.file-download-label');
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (label) label.textContent = 'Preparing…';
  try {
    const url = await fileLink(file);
    const a = document.createElement('a');
    a.href = url;
    a.download = file.name || '';
    a.rel = 'noopener';
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    toast(err?.message || 'Please try again.', { title: `Could not download ${file.name || 'the file'}:`, kind: 'error' });
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (label) label.textContent = 'Download';
  }
}

/**
 * Opens the full image in a new tab. The tab is opened right away (while the click still counts
 * as a user gesture, so no popup blocker), then shown the image: as a blob, because the link
 * itself is served as a download.
 */
async function openImage(file) {
  const tab = window.open('', '_blank');
  try {
    const url = await fileLink(file);
    let target = url;
    try {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      target = URL.createObjectURL(await response.blob());
      setTimeout(() => URL.revokeObjectURL(target), BLOB_KEEP_MS);
    } catch {
      target = url; // e.g. storage without CORS: the link still downloads the image
    }
    if (tab && !tab.closed) {
      tab.opener = null;
      tab.location.href = target;
    } else {
      const a = document.createElement('a');
      a.href = target;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.click();
    }
  } catch (err) {
    tab?.close();
    toast(err?.message || 'Please try again.', { title: `Could not open ${file.name || 'the image'}:`, kind: 'error' });
  }
}

// ---- DOM -----------------------------------------------------------------------------------------

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
  download: ['M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4', 'M7 10l5 5 5-5', 'M12 15V3'],
  image: ['M5 4h14a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z', 'M4 16l5-5 4 4 2-2 5 5', 'M15 9.5h.01'],
};

function svgIcon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  for (const [k, v] of Object.entries({
    viewBox: '0 0 24 24',
    width: '18',
    height: '18',
    fill: 'none',
    stroke: 'currentColor',
    'stroke-width': '1.8',
    'stroke-linecap': 'round',
    'stroke-linejoin': 'round',
    'aria-hidden': 'true',
    focusable: 'false',
  })) {
    svg.setAttribute(k, v);
  }
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** The coloured badge naming a file's kind ("PDF", "DOCX", "PNG"). */
export function fileBadge(name, contentType = '') {
  return el('span', {
    class: 'file-badge',
    dataset: { kind: kindOf(name, contentType).key },
    'aria-hidden': 'true',
    text: (extensionOf(name) || 'file').slice(0, 4).toUpperCase(),
  });
}

function isImage(file) {
  return IMAGE_TYPES.has(String(file?.content_type || '').toLowerCase());
}

/**
 * The attachment of a stored message: `{id, name, size, content_type, url}` → a thumbnail for
 * images, a file card otherwise, in a `message-attachment` container. `onResize` is called when
 * a thumbnail changes the height of the message (so the list can stay scrolled to the bottom).
 */
export function attachmentEl(file, { onResize = () => {} } = {}) {
  if (!file || (file.id == null && typeof file.url !== 'string')) return null;
  const image = isImage(file);
  return el(
    'div',
    {
      class: image ? 'attachment attachment-has-image' : 'attachment',
      dataset: { testid: 'message-attachment', fileId: String(file.id ?? '') },
    },
    image ? [thumbnail(file, onResize), imageCaption(file)] : fileCard(file),
  );
}

/** A file being sent (uploaded, waiting for the server's check): a card without a download. */
export function pendingAttachmentEl({ name, size }) {
  return el('div', { class: 'attachment', dataset: { testid: 'pending-attachment' } }, fileCard({ name, size }, { pending: true }));
}

function fileCard(file, { pending = false } = {}) {
  const name = String(file.name || 'file');
  const size = Number(file.size);
  const card = el(
    'div',
    { class: 'file-card', dataset: { testid: 'attachment-card', name, size: Number.isFinite(size) ? String(size) : null } },
    fileBadge(name, file.content_type),
    el(
      'span',
      { class: 'file-info' },
      el('span', { class: 'file-name', dataset: { testid: 'attachment-name' }, title: name, text: name }),
      el(
        'span',
        { class: 'file-details' },
        el('span', { dataset: { testid: 'attachment-size' }, text: formatSize(file.size) }),
        ` · ${kindOf(name, file.content_type).label}`,
      ),
    ),
  );
  if (!pending) {
    const button = el(
      'button',
      {
        type: 'button',
        class: 'button button-small file-download',
        dataset: { testid: 'attachment-download' },
        'aria-label': `Download ${name} (${formatSize(file.size)})`,
        tabIndex: -1, // the message list's roving focus decides
        onclick: () => download(file, button),
      },
      svgIcon('download'),
      el('span', { class: 'file-download-label', text: 'Download' }),
    );
    card.append(button);
  }
  return card;
}

function imageCaption(file) {
  const name = String(file.name || 'image');
  return el(
    'span',
    { class: 'attachment-image-meta' },
    el('span', { class: 'file-name', dataset: { testid: 'attachment-name' }, title: name, text: name }),
    ' · ',
    el('span', { dataset: { testid: 'attachment-size' }, text: formatSize(file.size) }),
  );
}

/**
 * A thumbnail (at most 240 px wide): a placeholder until it scrolls into view, then the image
 * from a download link. A click opens the full image in a new tab with a fresh link.
 */
function thumbnail(file, onResize) {
  const name = String(file.name || 'image');
  const img = el('img', { dataset: { testid: 'attachment-image' }, alt: name, decoding: 'async', hidden: true });
  const status = el('span', { class: 'visually-hidden', text: 'Loading image…' });
  const placeholder = el('span', { class: 'attachment-thumb-placeholder' }, svgIcon('image'), status);
  const button = el(
    'button',
    {
      type: 'button',
      class: 'attachment-thumb loading',
      dataset: { testid: 'attachment-open' },
      'aria-label': `Open ${name} in a new tab`,
      title: name,
      tabIndex: -1,
    },
    placeholder,
    img,
  );

  let retried = false;
  let failed = false;
  const fail = () => {
    failed = true;
    button.classList.remove('loading');
    button.classList.add('failed');
    button.setAttribute('aria-label', `${name} could not be loaded. Try again.`);
    status.textContent = 'Image unavailable — click to retry';
    status.className = 'attachment-thumb-error';
  };
  const load = async ({ reuse }) => {
    failed = false;
    button.classList.add('loading');
    button.classList.remove('failed');
    try {
      img.src = await fileLink(file, { reuse });
    } catch {
      fail();
    }
  };
  img.addEventListener('load', () => {
    button.classList.remove('loading', 'failed');
    button.setAttribute('aria-label', `Open ${name} in a new tab`);
    placeholder.remove();
    img.hidden = false;
    onResize();
  });
  img.addEventListener('error', () => {
    if (!img.getAttribute('src')) return;
    // A link reused from the cache may just have expired: one more try with a fresh one.
    if (!retried) {
      retried = true;
      load({ reuse: false });
    } else {
      fail();
    }
  });
  button.addEventListener('click', () => {
    if (failed) {
      retried = false;
      load({ reuse: false });
    } else {
      openImage(file);
    }
  });

  whenVisible(button, () => load({ reuse: true }));
  return button;
}

let observer = null;
const onVisible = new WeakMap();

/** Runs `fn` once `target` comes into view (right away where IntersectionObserver is missing). */
function whenVisible(target, fn) {
  if (typeof IntersectionObserver !== 'function') {
    queueMicrotask(fn);
    return;
  }
  if (!observer) {
    observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          const run = onVisible.get(entry.target);
          onVisible.delete(entry.target);
          run?.();
        }
      },
      { rootMargin: '200px 0px' },
    );
  }
  onVisible.set(target, fn);
  observer.observe(target);
}
