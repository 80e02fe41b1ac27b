// Chat section 5: message actions — the per-message menu, reply (and the reply banner), react
// (the emoji picker), pin, edit (the inline editor) and delete (the confirm bar); "Remember this"
// and "Remind me about this" are in remember.js.

import { $, el } from '../dom.js';
import { icon } from '../icons.js';
import * as session from '../session.js';
import * as socket from '../socket.js';
import { clearComposerError, showComposerError } from './composer.js';
import { excerptOf } from './message.js';
import { rememberMessage, remindAbout } from './remember.js';
import { focusIn, renderMessages } from './render.js';
import { S, BODY_MAX, EDIT_TIMEOUT_MS, isCurrent, REACTIONS, state } from './state.js';

export function menu(m, mine) {
  const bar = el('div', {
    class: 'message-menu',
    dataset: { testid: 'message-menu' },
    role: 'toolbar',
    'aria-label': 'Message actions',
  });
  const add = (testid, glyph, label, onClick) => {
    const b = el(
      'button',
      { type: 'button', class: 'menu-button', dataset: { testid }, tabIndex: -1, title: label, 'aria-label': label, onclick: onClick },
      glyph.startsWith('svg:') ? icon(glyph.slice(4)) : glyph,
    );
    bar.append(b);
    return b;
  };
  add('message-reply', '↩', 'Reply', () => startReply(m));
  const reactButton = add('message-react', '☺', 'React', () => {
    S.picker = S.picker === m.id ? null : m.id;
    renderMessages();
    focusIn(m.id, '[data-testid="react-emoji"]');
  });
  reactButton.setAttribute('aria-expanded', String(S.picker === m.id));
  const pinButton = add('message-pin', '📌', m.pinned ? 'Unpin' : 'Pin', () => pin(m, !m.pinned));
  pinButton.setAttribute('aria-pressed', String(Boolean(m.pinned)));
  if ((m.body || '').trim()) {
    add('message-remember', '📝', 'Remember this', () => rememberMessage(m));
    add('message-remind', '⏰', 'Remind me about this', () => remindAbout(m));
  }
  if (mine && m.kind === 'user') {
    add('message-edit', '✎', 'Edit', () => startEditing(m));
  }
  if (m.kind === 'ai' && m.reply_to && S.me && m.reply_to.author?.id === S.me.id) {
    add('message-regenerate', '↻', 'Regenerate', () => regenerate(m));
  }
  if (mine || isOwnerHere()) {
    add('message-delete', 'svg:trash', 'Delete', () => {
      S.confirming = m.id;
      renderMessages();
      focusIn(m.id, '[data-testid="delete-confirm"]');
    });
  }
  return bar;
}

/** Asks the model again for the question this reply answers; the new answer replaces it. */
export function regenerate(m) {
  if (!socket.send({ action: 'regenerate', room_id: m.room_id, message_id: m.id })) {
    showComposerError('You are offline, so the reply cannot be regenerated right now.');
  }
}

export function isOwnerHere() {
  return Boolean(S.current && S.current.workspace_id != null && session.roleIn(S.current.workspace_id) === 'owner');
}

export function emojiPicker(m) {
  const closeTo = (then) => {
    S.picker = null;
    then?.();
    renderMessages();
    focusIn(m.id, '[data-testid="message-react"]');
  };
  const options = REACTIONS.map((emoji) => {
    const already = (m.reactions || []).some((r) => r.emoji === emoji && S.me && r.user_ids?.includes(S.me.id));
    return el('button', {
      type: 'button',
      class: `react-option${already ? ' mine' : ''}`,
      dataset: { testid: 'react-emoji', emoji },
      'aria-pressed': String(already),
      'aria-label': `React with ${emoji}`,
      text: emoji,
      onclick: () => closeTo(() => react(m, emoji, !already)),
    });
  });
  const onkeydown = (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      closeTo();
    }
  };
  return el(
    'div',
    { class: 'react-picker', dataset: { testid: 'react-picker' }, role: 'group', 'aria-label': 'Pick a reaction', onkeydown },
    options,
  );
}

export function deleteConfirm(m) {
  const cancel = () => {
    S.confirming = null;
    renderMessages();
    focusIn(m.id, '[data-testid="message-delete"]');
  };
  const confirm = () => {
    S.confirming = null;
    const sent = socket.send({ action: 'delete_message', room_id: m.room_id || S.current?.id, message_id: m.id });
    if (!sent) showComposerError('You are offline. Try again once reconnected.');
    renderMessages();
  };
  const onkeydown = (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      cancel();
    }
  };
  return el(
    'div',
    { class: 'delete-confirm', role: 'group', 'aria-label': 'Confirm delete', onkeydown },
    el('span', { text: 'Delete this message for everyone?' }),
    el('button', { type: 'button', class: 'button button-danger', dataset: { testid: 'delete-confirm' }, text: 'Delete', onclick: confirm }),
    el('button', { type: 'button', class: 'button button-quiet', dataset: { testid: 'delete-cancel' }, text: 'Cancel', onclick: cancel }),
  );
}

export function editor(m) {
  const id = `edit-${m.id}`;
  const input = el('textarea', {
    id,
    dataset: { testid: 'edit-input' },
    rows: Math.min(8, Math.max(2, (S.editing.draft.match(/\n/g) || []).length + 1)),
    value: S.editing.draft,
    disabled: S.editing.saving,
    oninput: () => {
      if (S.editing) S.editing.draft = input.value;
    },
    onkeydown: (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        saveEdit(m);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        cancelEditing();
      }
    },
  });
  const actions = el(
    'div',
    { class: 'editor-actions' },
    el('button', {
      type: 'submit',
      class: 'button button-primary',
      dataset: { testid: 'edit-save' },
      disabled: S.editing.saving,
      text: S.editing.saving ? 'Saving…' : 'Save',
    }),
    el('button', { type: 'button', class: 'button button-quiet', dataset: { testid: 'edit-cancel' }, text: 'Cancel', onclick: cancelEditing }),
    el('span', { class: 'muted small', text: 'Enter to save · Esc to cancel' }),
  );
  const onsubmit = (event) => {
    event.preventDefault();
    saveEdit(m);
  };
  return el(
    'form',
    { class: 'message-editor', noValidate: true, onsubmit },
    el('label', { htmlFor: id, class: 'visually-hidden', text: 'Edit message' }),
    input,
    actions,
  );
}

export function startEditing(m) {
  if (S.editing) clearTimeout(S.editing.timer);
  S.editing = { roomId: S.current?.id, id: m.id, draft: m.body || '', saving: false, timer: null };
  S.confirming = null;
  S.picker = null;
  renderMessages();
  const input = $('message-list').querySelector('[data-testid="edit-input"]');
  if (input) {
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }
}

export function cancelEditing() {
  if (!S.editing) return;
  const id = S.editing.id;
  finishEditing();
  renderMessages();
  focusIn(id, '[data-testid="message-edit"]');
}

export function finishEditing() {
  if (S.editing) clearTimeout(S.editing.timer);
  S.editing = null;
}

export function saveEdit(m) {
  if (!S.editing || S.editing.saving) return;
  const body = S.editing.draft.trim();
  if (!body) {
    showComposerError('A message cannot be empty. Delete it instead.');
    return;
  }
  if ([...body].length > BODY_MAX) {
    showComposerError(`Messages are at most ${BODY_MAX.toLocaleString()} characters.`);
    return;
  }
  if (body === (m.body || '').trim()) {
    cancelEditing();
    return;
  }
  const sent = socket.send({ action: 'edit_message', room_id: m.room_id || S.current?.id, message_id: m.id, body });
  if (!sent) {
    showComposerError('You are offline. Your edit is kept; save again once reconnected.');
    return;
  }
  clearComposerError();
  S.editing.saving = true;
  S.editing.timer = setTimeout(() => {
    // No answer: let the person try again.
    if (S.editing && S.editing.id === m.id) {
      S.editing.saving = false;
      renderMessages();
    }
  }, EDIT_TIMEOUT_MS);
  renderMessages();
}

export function react(m, emoji, on) {
  const sent = socket.send({ action: 'react', room_id: m.room_id || S.current?.id, message_id: m.id, emoji, on });
  if (!sent) showComposerError('You are offline. Try again once reconnected.');
}

/** Pins (`on`) or unpins a message for the whole room. */
export function pin(m, on) {
  const action = on ? 'pin_message' : 'unpin_message';
  const sent = socket.send({ action, room_id: m.room_id || S.current?.id, message_id: m.id });
  if (!sent) showComposerError('You are offline. Try again once reconnected.');
}

export function startReply(m) {
  const who = m.kind === 'ai' ? 'Mathia' : m.author?.display_name || 'Someone';
  setReply({ id: m.id, author: { id: m.author?.id ?? null, display_name: who }, excerpt: excerptOf(m.body) });
  $('composer').focus();
}

export function setReply(ref, roomId = S.current?.id) {
  if (!roomId) return;
  state(roomId).replyTo = ref;
  if (isCurrent(roomId)) renderReplyBanner();
}

export function renderReplyBanner() {
  const ref = S.current ? state(S.current.id).replyTo : null;
  $('reply-banner').hidden = !ref;
  $('reply-banner-author').textContent = ref ? ref.author?.display_name || 'Someone' : '';
  $('reply-banner-excerpt').textContent = ref ? ref.excerpt : '';
}
