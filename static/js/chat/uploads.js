// Chat section 7: files — the attach button, dropping files on the room and pasting them, the
// upload rows above the composer (progress, cancel), then `file_message` as a pending message.
// The upload itself and the checks are in files.js, the attachment DOM in attachment.js.
//
// Text in the composer when files are attached becomes the caption of the first one (and leaves
// the composer, as a sent message would). Each file gets a row above the composer with its
// progress and a cancel button; once its bytes are up, `file_message` goes out and the row
// becomes a pending message ("Checking the file…") until the room's `new_message` replaces it.
// A file the server refuses is dropped with its reason in a toast.

import { newId } from '../api.js';
import { $, el } from '../dom.js';
import { fileBadge } from '../attachment.js';
import { ACCEPT, checkFile, formatSize, uploadFile } from '../files.js';
import * as socket from '../socket.js';
import { toast } from '../toast.js';
import {
  autosize,
  clearComposerError,
  muteText,
  showComposerError,
  stopTyping,
  updateCounter,
} from './composer.js';
import { excerptOf } from './message.js';
import { renderMessages, scrollToBottom } from './render.js';
import { S, BODY_MAX, FILES_AT_ONCE, isCurrent, state } from './state.js';

export function initFiles() {
  const input = $('file-input');
  input.accept = ACCEPT;
  $('attach-button').addEventListener('click', () => {
    if (canAttach()) input.click();
  });
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = ''; // choosing the same file again fires `change` again
    if (files.length > 0) startUploads(files);
  });
  $('composer').addEventListener('paste', (event) => {
    const data = event.clipboardData;
    const files = [...(data?.files || [])];
    // Rich text copied from a document may carry a picture of itself too: paste the text then.
    if (files.length === 0 || [...(data.types || [])].includes('text/plain')) return;
    event.preventDefault();
    startUploads(files);
  });

  const view = $('chat-view');
  view.addEventListener('dragenter', (event) => {
    if (!hasFiles(event) || !S.current) return;
    event.preventDefault();
    S.dragDepth += 1;
    showDropZone(true);
  });
  view.addEventListener('dragover', (event) => {
    if (!hasFiles(event) || !S.current) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  view.addEventListener('dragleave', (event) => {
    if (!hasFiles(event)) return;
    S.dragDepth = Math.max(0, S.dragDepth - 1);
    if (S.dragDepth === 0) showDropZone(false);
  });
  view.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.stopPropagation();
    showDropZone(false);
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length > 0) startUploads(files);
  });
  // Files dropped anywhere else must not replace the app with the file.
  window.addEventListener('dragover', (event) => {
    if (!hasFiles(event) || view.contains(event.target)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'none';
  });
  window.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    showDropZone(false);
  });
  window.addEventListener('dragend', () => showDropZone(false));
}

export function hasFiles(event) {
  const types = event.dataTransfer?.types;
  return Boolean(types && [...types].includes('Files'));
}

export function showDropZone(on) {
  if (!on) S.dragDepth = 0;
  const zone = $('drop-zone');
  if (zone.hidden === !on) return;
  zone.hidden = !on;
  if (on && S.current) $('drop-zone-room').textContent = S.current.name;
}

/** Whether files may be attached in the current room now; says why not when they may not. */
export function canAttach() {
  if (!S.current) return false;
  const st = state(S.current.id);
  if (st.mutedUntil > Date.now()) {
    toast(muteText(st), { kind: 'error' });
    return false;
  }
  return true;
}

export function startUploads(list) {
  if (!canAttach()) return;
  const roomId = S.current.id;
  const st = state(roomId);
  let files = [...list];
  if (files.length > FILES_AT_ONCE) {
    toast(`You can share up to ${FILES_AT_ONCE} files at once; the first ${FILES_AT_ONCE} are being sent.`);
    files = files.slice(0, FILES_AT_ONCE);
  }
  const accepted = [];
  for (const file of files) {
    const problem = checkFile(file);
    if (problem) toast(problem, { kind: 'error' });
    else accepted.push(file);
  }
  if (accepted.length === 0) return;

  const composer = $('composer');
  const caption = composer.value.trim();
  if ([...caption].length > BODY_MAX) {
    showComposerError(`A caption is at most ${BODY_MAX.toLocaleString()} characters. Shorten the message, then attach the file again.`);
    return;
  }
  if (caption) {
    composer.value = '';
    st.draft = '';
    autosize();
    updateCounter();
    stopTyping();
  }
  clearComposerError();
  accepted.forEach((file, i) => beginUpload(roomId, file, i === 0 ? caption : ''));
  renderUploads();
  composer.focus();
}

export function beginUpload(roomId, file, caption) {
  const u = { id: newId(), roomId, file, caption, progress: null, handle: null, el: null };
  S.uploads.set(u.id, u);
  u.handle = uploadFile(roomId, file, {
    onProgress(fraction) {
      u.progress = fraction;
      paintUpload(u);
    },
  });
  u.handle.done.then(
    (fileId) => {
      if (!S.uploads.delete(u.id)) return; // cancelled, or signed out, meanwhile
      renderUploads();
      sendFileMessage(roomId, fileId, file, caption);
    },
    (err) => {
      const known = S.uploads.delete(u.id);
      renderUploads();
      if (!known || err?.code === 'cancelled' || err?.status === 401) return;
      toast(err?.message || 'The upload failed. Please try again.', { title: `${file.name}:`, kind: 'error' });
      if (caption && isCurrent(roomId) && $('composer').value.trim() === '') {
        // Give the caption back rather than lose it.
        $('composer').value = caption;
        autosize();
        updateCounter();
      }
    },
  );
}

export function cancelUpload(id) {
  const u = S.uploads.get(id);
  if (!u) return;
  S.uploads.delete(id);
  u.handle?.abort();
  renderUploads();
  if (u.caption && isCurrent(u.roomId) && $('composer').value.trim() === '') {
    $('composer').value = u.caption;
    autosize();
    updateCounter();
  }
  $('composer').focus();
}

/** The upload rows of the current room, above the composer. */
export function renderUploads() {
  const list = $('upload-list');
  const rows = S.current ? [...S.uploads.values()].filter((u) => u.roomId === S.current.id) : [];
  list.replaceChildren(...rows.map((u) => (u.el ||= buildUpload(u))));
  list.hidden = rows.length === 0;
}

export function buildUpload(u) {
  const name = u.file.name;
  const info = el(
    'div',
    { class: 'upload-info' },
    el(
      'div',
      { class: 'upload-line' },
      el('span', { class: 'upload-name', dataset: { testid: 'upload-name' }, title: name, text: name }),
      el('span', { class: 'upload-percent' }),
    ),
    el('progress', { class: 'upload-progress', dataset: { testid: 'upload-progress' }, max: 100, 'aria-label': `Uploading ${name}` }),
    u.caption ? el('span', { class: 'upload-caption', text: `“${excerptOf(u.caption)}”` }) : null,
  );
  const cancel = el('button', {
    type: 'button',
    class: 'icon-button upload-cancel',
    dataset: { testid: 'upload-cancel' },
    'aria-label': `Cancel uploading ${name}`,
    title: 'Cancel upload',
    text: '✕',
    onclick: () => cancelUpload(u.id),
  });
  u.el = el('li', { class: 'upload-row', dataset: { testid: 'upload-row', name } }, fileBadge(name), info, cancel);
  paintUpload(u);
  return u.el;
}

export function paintUpload(u) {
  if (!u.el) return;
  const bar = u.el.querySelector('progress');
  const percent = u.el.querySelector('.upload-percent');
  if (u.progress == null) {
    bar.removeAttribute('value'); // indeterminate while the upload is declared
    percent.textContent = `${formatSize(u.file.size)} · starting…`;
  } else {
    const pct = Math.round(u.progress * 100);
    bar.value = pct;
    percent.textContent = pct >= 100 ? 'Finishing…' : `${pct}%`;
  }
}

/** Sends `file_message` for an uploaded file, shown as a pending message until it is stored. */
export function sendFileMessage(roomId, fileId, file, caption) {
  const cmid = newId();
  const frame = { action: 'file_message', room_id: roomId, file_id: fileId, client_msg_id: cmid };
  if (caption) frame.caption = caption;
  const st = state(roomId);
  st.pending.set(cmid, {
    client_msg_id: cmid,
    body: caption,
    status: 'pending',
    createdAt: Date.now(),
    replyTo: null,
    file: { name: file.name, size: file.size },
    frame,
  });
  S.pendingRoom.set(cmid, roomId);
  socket.send(frame); // if offline now, resendFileMessages sends it once connected
  if (isCurrent(roomId)) {
    renderMessages();
    scrollToBottom();
  }
}

/**
 * After (re)connecting, sends again the file messages not yet stored; the server keeps one
 * message per `client_msg_id`, so a duplicate is harmless.
 */
export function resendFileMessages() {
  for (const st of S.rooms.values()) {
    for (const p of st.pending.values()) {
      if (p.frame && p.status === 'pending') socket.send(p.frame);
    }
  }
}
