// The invite preview: an invite link opened while signed in says what it would join — the room,
// its workspace, who invited — and joins only when the person chooses Join.

import * as api from './api.js';
import { $ } from './dom.js';

/** What accepting `code` would join: `{room, workspace, inviter, member, usable}`. */
export function previewInvite(code) {
  return api.get(`/api/invites/${encodeURIComponent(code)}`);
}

/** Shows the preview; resolves true for Join, false for Decline (or Escape). */
export function askToJoin(preview) {
  const dialog = $('invite-dialog');
  $('invite-room').textContent = preview.room?.name || 'a room';
  $('invite-workspace').textContent = preview.workspace?.name || '';
  $('invite-inviter').textContent = preview.inviter?.display_name || 'Someone';
  const error = $('invite-error');
  error.hidden = preview.usable !== false;
  error.textContent = preview.usable === false ? 'This invite has expired or been used up; ask for a new one.' : '';
  $('invite-join').disabled = preview.usable === false;
  return new Promise((resolve) => {
    const finish = (answer) => {
      $('invite-join').removeEventListener('click', onJoin);
      $('invite-decline').removeEventListener('click', onDecline);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onJoin = () => finish(true);
    const onDecline = () => finish(false);
    const onCancel = (event) => {
      event.preventDefault();
      finish(false);
    };
    $('invite-join').addEventListener('click', onJoin);
    $('invite-decline').addEventListener('click', onDecline);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
  });
}
