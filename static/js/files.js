// Files shared in rooms: the checks made before anything is sent, the upload itself and the
// short-lived download links. The DOM of an attachment (an image thumbnail or a file card), and
// downloading or opening one, are in attachment.js.
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
export const IMAGE_TYPES = new Set(['image/png', 'image/jpeg']);

const LINK_REUSE_MS = 30_000; // a thumbnail may reuse a link this young (they last about a minute)
const LINK_CACHE_MAX = 200;

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
export function kindOf(name, contentType) {
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
