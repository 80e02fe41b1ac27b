// Files shared in rooms: the checks made before anything is sent, the upload itself, the
// short-lived download links, and the DOM of an attachment (an image thumbnail or a file card).
//
// Uploading is three steps (docs/protocol.md, "Files"): declare the file with
// `POST /api/rooms/{id}/uploads`, PUT the raw bytes to the signed `upload_url` it answers (with an
// XMLHttpRequest, for upload progress; no bearer token, the URL is signed; `Content-Type` is the
// declared type, which S3 signs), then the caller sends `file_message` over the socket. The server
// sniffs the bytes and is the authority: the checks here only spare a pointless upload.
//
// `attachment.url` (`/api/files/{id}`) needs the bearer token, so it never goes into an href or a
// src: it answers `{url}`, a download link valid for about a minute, fetched once for a thumbnail
// and afresh for every click. Only same-origin `/api/files/` paths get the token, and only http(s)
// links are used. Names are shown with textContent only.

import { ApiError, get, post } from './api.js';
import { toast } from './toast.js';

export const MAX_BYTES = 5 * 1024 * 1024;

/** The kinds that can be shared: extension → the content type declared for it. */
const TYPES = {
  txt: 'text/plain',
  pdf: 'application/pdf',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
};
const EXTENSIONS = Object.keys(TYPES).map((e) => `.${e}`);
export const ACCEPT = EXTENSIONS.join(',');
const ALLOWED_TEXT = `${EXTENSIONS.slice(0, -1).join(', ')} and ${EXTENSIONS.at(-1)}`;
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg']);

const LINK_REUSE_MS = 30_000; // a thumbnail may reuse a link this young (they last about a minute)
const LINK_CACHE_MAX = 200;
const BLOB_KEEP_MS = 60_000; // how long a full-size image opened in a tab stays addressable

/** file id -> {url, at}: the last download link fetched for a file */
const links = new Map();

// ---- checks and names ------------------------------------------------------------------------

/** The lower-case extension of a name ("" when there is none). */
export function extensionOf(name) {
  const m = /\.([^./\\]+)$/.exec(String(name || ''));
  return m ? m[1].toLowerCase() : '';
}

/** The content type declared for a file: by its extension, which is what the server checks. */
export function contentTypeOf(file) {
  return TYPES[extensionOf(file?.name)] || file?.type || 'application/octet-stream';
}

/** Why a file cannot be shared (a sentence for a toast), or null when it may be tried. */
export function checkFile(file) {
  const name = file?.name || 'That file';
  if (!TYPES[extensionOf(file?.name)]) {
    return `${name} can’t be shared: only ${ALLOWED_TEXT} files are allowed.`;
  }
  if (!(file.size > 0)) return `${name} is empty.`;
  if (file.size > MAX_BYTES) {
    return `${name} is ${formatSize(file.size)}; files can be at most ${formatSize(MAX_BYTES)}.`;
  }
  return null;
}

/** 512 B · 14.2 KB · 230 KB · 4.8 MB */
export function formatSize(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** What the card calls a file, and the key of its badge colour. */
function kindOf(name, contentType) {
  const ext = extensionOf(name);
  if (IMAGE_TYPES.has(contentType) || ['png', 'jpg', 'jpeg'].includes(ext)) return { key: 'image', label: 'Image' };
  if (ext === 'pdf' || contentType === 'application/pdf') return { key: 'pdf', label: 'PDF document' };
  if (ext === 'doc' || ext === 'docx' || /word|msword/.test(contentType || '')) return { key: 'doc', label: 'Word document' };
  if (ext === 'txt' || contentType === 'text/plain') return { key: 'txt', label: 'Text file' };
  return { key: 'other', label: 'File' };
}

// ---- upload ------------------------------------------------------------------------------------

function cancelled() {
  return new ApiError(0, 'cancelled', 'Upload cancelled.');
}

/**
 * Declares `file` in the room and PUTs its bytes. Returns `{done, abort}`: `done` resolves with
 * the `file_id` to send in `file_message`, or rejects with an `ApiError` (code `cancelled` after
 * `abort()`). `onProgress(fraction)` follows the bytes sent.
 */
export function uploadFile(roomId, file, { onProgress = () => {} } = {}) {
  let xhr = null;
  let aborted = false;
  const contentType = contentTypeOf(file);
  const done = (async () => {
    const declared = await post(`/api/rooms/${encodeURIComponent(roomId)}/uploads`, {
      name: file.name,
      content_type: contentType,
      size: file.size,
    });
    if (aborted) throw cancelled();
    const target = httpUrl(declared?.upload_url);
    if (!target || declared.file_id == null) {
      throw new ApiError(0, 'bad_response', 'The upload could not start. Please try again.');
    }
    await putBytes(target, file, contentType, onProgress, (x) => {
      xhr = x;
    });
    if (aborted) throw cancelled();
    return declared.file_id;
  })();
  return {
    done,
    abort() {
      aborted = true;
      xhr?.abort();
    },
  };
}

function putBytes(url, file, contentType, onProgress, onStart) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    onStart(xhr);
    xhr.open('PUT', url);
    xhr.setRequestHeader('Content-Type', contentType);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
        return;
      }
      // mathia-local answers `{error: {code, message}}`; S3 answers XML, which says nothing useful.
      let err = null;
      try {
        err = JSON.parse(xhr.responseText)?.error || null;
      } catch {
        err = null;
      }
      const message =
        err?.code === 'link_refused'
          ? 'The upload link expired. Please try again.'
          : err?.message || `The upload failed (HTTP ${xhr.status}). Please try again.`;
      reject(new ApiError(xhr.status, err?.code || `http_${xhr.status}`, message));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network_error', 'The upload failed. Check your connection and try again.'));
    xhr.onabort = () => reject(cancelled());
    xhr.send(file);
    onProgress(0); // declared: the bytes are on their way
  });
}

// ---- download links ----------------------------------------------------------------------------

/** An absolute http(s) URL for `raw` (relative ones resolve against this page), else null. */
function httpUrl(raw) {
  if (typeof raw !== 'string' || raw === '') return null;
  try {
    const url = new URL(raw, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** The API path answering a file's links: same origin and under /api/files/ only (it gets the token). */
function apiPath(file) {
  const raw = typeof file?.url === 'string' && file.url ? file.url : file?.id != null ? `/api/files/${encodeURIComponent(file.id)}` : '';
  try {
    const url = new URL(raw, location.origin);
    if (url.origin !== location.origin || !url.pathname.startsWith('/api/files/')) return null;
    return url.pathname + url.search;
  } catch {
    return null;
  }
}

/** A download link for a file attachment: fetched now, or (`reuse`) one fetched moments ago. */
export async function fileLink(file, { reuse = false } = {}) {
  const key = String(file?.id ?? file?.url);
  const known = links.get(key);
  if (reuse && known && Date.now() - known.at < LINK_REUSE_MS) return known.url;
  const path = apiPath(file);
  if (!path) throw new ApiError(0, 'bad_link', 'This file cannot be opened.');
  const data = await get(path);
  const url = httpUrl(data?.url);
  if (!url) throw new ApiError(0, 'bad_link', 'This file cannot be opened.');
  links.delete(key);
  links.set(key, { url, at: Date.now() });
  if (links.size > LINK_CACHE_MAX) links.delete(links.keys().next().value);
  return url;
}

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
  const badge = document.createElement('span');
  badge.className = 'file-badge';
  badge.dataset.kind = kindOf(name, contentType).key;
  badge.setAttribute('aria-hidden', 'true');
  badge.textContent = (extensionOf(name) || 'file').slice(0, 4).toUpperCase();
  return badge;
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
  const box = document.createElement('div');
  box.className = 'attachment';
  box.dataset.testid = 'message-attachment';
  box.dataset.fileId = String(file.id ?? '');
  if (isImage(file)) {
    box.classList.add('attachment-has-image');
    box.append(thumbnail(file, onResize), imageCaption(file));
  } else {
    box.append(fileCard(file));
  }
  return box;
}

/** A file being sent (uploaded, waiting for the server's check): a card without a download. */
export function pendingAttachmentEl({ name, size }) {
  const box = document.createElement('div');
  box.className = 'attachment';
  box.dataset.testid = 'pending-attachment';
  box.append(fileCard({ name, size }, { pending: true }));
  return box;
}

function fileCard(file, { pending = false } = {}) {
  const name = String(file.name || 'file');
  const card = document.createElement('div');
  card.className = 'file-card';
  card.dataset.testid = 'attachment-card';
  card.dataset.name = name;
  if (Number.isFinite(Number(file.size))) card.dataset.size = String(Number(file.size));

  const info = document.createElement('span');
  info.className = 'file-info';
  const nameEl = document.createElement('span');
  nameEl.className = 'file-name';
  nameEl.dataset.testid = 'attachment-name';
  nameEl.title = name;
  nameEl.textContent = name;
  const details = document.createElement('span');
  details.className = 'file-details';
  const sizeEl = document.createElement('span');
  sizeEl.dataset.testid = 'attachment-size';
  sizeEl.textContent = formatSize(file.size);
  details.append(sizeEl, document.createTextNode(` · ${kindOf(name, file.content_type).label}`));
  info.append(nameEl, details);
  card.append(fileBadge(name, file.content_type), info);

  if (!pending) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button button-small file-download';
    button.dataset.testid = 'attachment-download';
    button.setAttribute('aria-label', `Download ${name} (${formatSize(file.size)})`);
    button.tabIndex = -1; // the message list's roving focus decides
    const label = document.createElement('span');
    label.className = 'file-download-label';
    label.textContent = 'Download';
    button.append(svgIcon('download'), label);
    button.addEventListener('click', () => download(file, button));
    card.append(button);
  }
  return card;
}

function imageCaption(file) {
  const line = document.createElement('span');
  line.className = 'attachment-image-meta';
  const name = document.createElement('span');
  name.className = 'file-name';
  name.dataset.testid = 'attachment-name';
  name.title = String(file.name || 'image');
  name.textContent = String(file.name || 'image');
  const size = document.createElement('span');
  size.dataset.testid = 'attachment-size';
  size.textContent = formatSize(file.size);
  line.append(name, document.createTextNode(' · '), size);
  return line;
}

/**
 * A thumbnail (at most 240 px wide): a placeholder until it scrolls into view, then the image
 * from a download link. A click opens the full image in a new tab with a fresh link.
 */
function thumbnail(file, onResize) {
  const name = String(file.name || 'image');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'attachment-thumb loading';
  button.dataset.testid = 'attachment-open';
  button.setAttribute('aria-label', `Open ${name} in a new tab`);
  button.title = name;
  button.tabIndex = -1;
  const img = document.createElement('img');
  img.dataset.testid = 'attachment-image';
  img.alt = name;
  img.decoding = 'async';
  img.hidden = true;
  const placeholder = document.createElement('span');
  placeholder.className = 'attachment-thumb-placeholder';
  placeholder.append(svgIcon('image'));
  const status = document.createElement('span');
  status.className = 'visually-hidden';
  status.textContent = 'Loading image…';
  placeholder.append(status);
  button.append(placeholder, img);

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

/** Runs `fn` once `el` comes into view (right away where IntersectionObserver is missing). */
function whenVisible(el, fn) {
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
  onVisible.set(el, fn);
  observer.observe(el);
}
