// Chat section 4 (continued): the DOM of one message, a pending message, and their parts.
// Bodies are markdown rendered by markdown.js into sanitised DOM; everything else is textContent.

import { el } from '../dom.js';
import { attachmentEl, pendingAttachmentEl } from '../attachment.js';
import { isForMe } from '../attention.js';
import { renderMarkdown } from '../markdown.js';
import * as session from '../session.js';
import { deleteConfirm, editor, emojiPicker, menu, react } from './actions.js';
import { discardPending, retryPending } from './composer.js';
import { decorate, plainText } from './mentions.js';
import { jumpTo, keepPinned } from './render.js';
import { S, EXCERPT_MAX, isMine } from './state.js';
import * as context from '../context.js';
import * as notes from '../notes.js';

export function buildMessage(m, st) {
  const mine = isMine(m);
  const article = el('article', {
    class: `message kind-${m.kind}${mine ? ' mine' : ''}${m.deleted ? ' deleted' : ''}${!m.deleted && isForMe(m) ? ' mentioned' : ''}`,
    dataset: {
      testid: 'message',
      seq: String(m.seq),
      id: String(m.id),
      kind: m.kind,
      clientMsgId: m.client_msg_id || null,
      deleted: m.deleted ? 'true' : null,
      edited: m.edited_at ? 'true' : null,
      stopped: m.stopped ? 'true' : null,
      pinned: m.pinned && !m.deleted ? 'true' : null,
      mentioned: !m.deleted && isForMe(m) ? 'true' : null,
    },
    tabIndex: -1,
  });

  if (m.kind === 'system') {
    article.append(plainBody(m.deleted ? 'message deleted' : m.body));
    const time = timeEl(m.created_at);
    if (time) article.append(time);
    return article;
  }

  const authorName = m.kind === 'ai' ? 'Mathia' : m.author?.display_name || 'Unknown';
  article.setAttribute('aria-label', `${authorName}${m.deleted ? ', deleted message' : ''}`);
  article.append(avatar(authorName, m.kind === 'ai' ? 'mathia' : m.author?.id || m.kind));
  const main = el('div', { class: 'message-main' }, meta(m, authorName));
  if (m.pinned && !m.deleted) {
    const by = m.pinned.by?.display_name || 'someone';
    main.append(el('p', { class: 'pinned-note muted small', dataset: { testid: 'pinned-note' }, text: `📌 Pinned by ${by}` }));
  }
  if (m.reply_to && !m.deleted) main.append(quote(m.reply_to, st));

  const isEditing = S.editing && S.editing.id === m.id && !m.deleted;
  if (m.deleted) {
    const gone = plainBody('message deleted');
    gone.classList.add('deleted-body');
    main.append(gone);
  } else if (isEditing) {
    main.append(editor(m));
  } else if (!(m.attachment && (m.body || '').trim() === String(m.attachment.name || '').trim())) {
    // A file message without a caption has the file's name as its body: the card shows it.
    main.append(markdownBody(m.body, m.room_id || S.current?.id));
  }

  if (!m.deleted && m.attachment) {
    const file = attachmentEl(m.attachment, { onResize: keepPinned });
    if (file) main.append(file);
  }
  if (!m.deleted && m.kind === 'ai' && (m.tools || []).length > 0) {
    main.insertBefore(toolsEl(m.tools), main.querySelector('.message-body'));
  }
  if (!m.deleted && m.kind === 'ai' && ((m.sources || []).length > 0 || m.private_sources > 0)) {
    main.append(sourcesEl(m));
  }
  if (!m.deleted && Array.isArray(m.reactions) && m.reactions.some((r) => r.count > 0)) {
    main.append(reactionsEl(m));
  }
  if (S.confirming === m.id && !m.deleted) main.append(deleteConfirm(m));
  if (S.picker === m.id && !m.deleted) main.append(emojiPicker(m));
  article.append(main);
  if (!m.deleted && !isEditing) article.append(menu(m, mine));
  return article;
}

export function meta(m, authorName) {
  let edited = null;
  if (m.edited_at && !m.deleted) {
    const at = session.formatTime(m.edited_at, { dateStyle: 'full', timeStyle: 'short' });
    edited = el('span', {
      class: 'message-edited',
      dataset: { testid: 'message-edited' },
      title: at ? `Edited ${at}` : null,
      text: '(edited)',
    });
  }
  return el(
    'div',
    { class: 'message-meta' },
    el('span', { class: 'message-author', dataset: { testid: 'message-author' }, text: authorName }),
    m.kind === 'ai' && el('span', { class: 'tag', text: 'AI' }),
    timeEl(m.created_at),
    edited,
    m.stopped && !m.deleted && el('span', { class: 'message-status', dataset: { testid: 'message-stopped' }, text: 'stopped' }),
  );
}

export function quote(ref, st) {
  const original = st.messages.get(ref.id);
  const who = ref.author?.display_name || (original?.kind === 'ai' ? 'Mathia' : original?.author?.display_name) || 'Someone';
  const deleted = Boolean(original?.deleted);
  const roomId = original?.room_id || S.current?.id;
  const excerpt = deleted ? 'message deleted' : excerptOf(plainText(roomId, ref.excerpt ?? original?.body ?? ''));
  return el(
    'button',
    {
      type: 'button',
      class: 'message-quote',
      dataset: { testid: 'message-quote', replyTo: String(ref.id) },
      tabIndex: -1,
      'aria-label': `In reply to ${who}: ${excerpt}. Show that message.`,
      onclick: () => jumpTo(ref.id),
    },
    el('strong', { text: who }),
    el('span', { class: `quote-text${deleted ? ' deleted-body' : ''}`, dataset: { testid: 'message-quote-text' }, text: excerpt }),
  );
}

export function excerptOf(text) {
  const flat = String(text || '').replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT_MAX ? `${flat.slice(0, EXCERPT_MAX - 1)}…` : flat;
}

/** The tools an AI reply called: one compact line each (name, outcome), which opens to show the
 * arguments it was called with. A call still running has no outcome yet. */
export function toolsEl(tools) {
  return el(
    'div',
    { class: 'message-tools', dataset: { testid: 'message-tools' }, role: 'group', 'aria-label': 'Tools Mathia used' },
    ...tools.map(toolLine),
  );
}

export function toolLine(t) {
  const status = t.ok == null ? 'running' : t.ok ? 'ok' : 'failed';
  const icon = { running: '⏳', ok: '✓', failed: '⚠' }[status];
  const label = { running: 'running', ok: 'done', failed: 'failed' }[status];
  let args = '{}';
  try {
    args = JSON.stringify(t.arguments ?? {}, null, 2);
  } catch {
    // keep {}
  }
  return el(
    'details',
    { class: `tool-line tool-${status}`, dataset: { testid: 'tool-line', tool: String(t.name || ''), status } },
    el(
      'summary',
      { 'aria-label': `Tool ${t.name}: ${label}${t.summary ? `, ${t.summary}` : ''}` },
      el('span', { class: 'tool-icon', 'aria-hidden': 'true', text: icon }),
      el('code', { class: 'tool-name', dataset: { testid: 'tool-name' }, text: String(t.name || '') }),
      el('span', { class: 'tool-summary', dataset: { testid: 'tool-summary' }, text: t.summary || (status === 'running' ? 'running…' : '') }),
    ),
    el('pre', { class: 'tool-args', dataset: { testid: 'tool-args' }, text: args }),
  );
}

/** The notes that informed an AI reply, as chips that open them in the Notes panel; the asker's
 * notes from other rooms are only counted (others may not read them). */
export function sourcesEl(m) {
  const chips = (m.sources || []).map((s) =>
    el(
      'button',
      {
        type: 'button',
        class: 'source-chip',
        dataset: { testid: 'source-chip', noteId: String(s.note_id) },
        tabIndex: -1,
        title: s.excerpt || '',
        'aria-label': `Source note: ${excerptOf(s.excerpt)}. Show it in Notes.`,
        onclick: () => {
          context.openPanel('notes', { focus: false });
          notes.highlight(s.note_id);
        },
      },
      el('span', { class: 'source-text', text: shortExcerpt(s.excerpt) }),
    ),
  );
  const hidden = Number(m.private_sources) || 0;
  if (hidden > 0) {
    chips.push(
      el('span', {
        class: 'source-chip source-private',
        dataset: { testid: 'source-private' },
        title: 'Notes of the person who asked, from their other rooms: not shown here',
        text: `+${hidden} private note${hidden === 1 ? '' : 's'}`,
      }),
    );
  }
  return el(
    'div',
    { class: 'message-sources', dataset: { testid: 'message-sources' }, role: 'group', 'aria-label': 'Sources' },
    el('span', { class: 'sources-label', text: 'Sources' }),
    ...chips,
  );
}

function shortExcerpt(text) {
  const flat = excerptOf(text);
  return flat.length > 40 ? `${flat.slice(0, 39)}…` : flat;
}

export function reactionsEl(m) {
  const row = el('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' });
  for (const r of m.reactions) {
    if (!r || !(r.count > 0)) continue;
    const mine = Boolean(S.me && Array.isArray(r.user_ids) && r.user_ids.includes(S.me.id));
    const chip = el(
      'button',
      {
        type: 'button',
        class: `reaction${mine ? ' mine' : ''}`,
        dataset: { testid: 'reaction', emoji: r.emoji, count: String(r.count) },
        tabIndex: -1,
        'aria-pressed': String(mine),
        'aria-label': `${r.emoji} ${r.count}${mine ? ', including you' : ''}`,
        onclick: () => react(m, r.emoji, !mine),
      },
      el('span', { 'aria-hidden': 'true', text: r.emoji }),
      el('span', { class: 'reaction-count', dataset: { testid: 'reaction-count' }, text: String(r.count) }),
    );
    row.append(chip);
  }
  return row;
}

export function buildPending(p) {
  const name = S.me?.display_name || 'You';
  const article = el('article', {
    class: `message kind-user mine ${p.status === 'failed' ? 'failed' : 'pending'}`,
    dataset: { testid: 'message', kind: 'user', status: p.status, clientMsgId: p.client_msg_id },
  });
  article.append(avatar(name, S.me?.id || 'me'));
  const row = meta({ kind: 'user' }, name);
  row.append(
    el('span', {
      class: 'message-status',
      text:
        p.status === 'failed' ? p.error || 'Not sent.' : p.status === 'sent' ? 'Sent' : p.file ? 'Checking the file…' : 'Sending…',
    }),
  );
  const main = el('div', { class: 'message-main' }, row);
  if (p.replyTo) {
    main.append(
      el(
        'div',
        { class: 'message-quote' },
        el('strong', { text: p.replyTo.author?.display_name || 'Someone' }),
        el('span', { class: 'quote-text', text: p.replyTo.excerpt || '' }),
      ),
    );
  }
  if (!p.file || p.body) main.append(markdownBody(p.body, S.current?.id));
  if (p.file) main.append(pendingAttachmentEl(p.file));

  if (p.status === 'failed') {
    main.append(
      el(
        'div',
        { class: 'message-actions' },
        el('button', { type: 'button', class: 'link-button', text: 'Retry', onclick: () => retryPending(p.client_msg_id) }),
        el('button', { type: 'button', class: 'link-button', text: 'Discard', onclick: () => discardPending(p.client_msg_id) }),
      ),
    );
  }
  article.append(main);
  return article;
}

export function markdownBody(text, roomId) {
  const body = el('div', { class: 'message-body markdown', dataset: { testid: 'message-body' } }, renderMarkdown(text ?? ''));
  return decorate(body, roomId);
}

export function plainBody(text) {
  return el('div', { class: 'message-body', dataset: { testid: 'message-body' }, text: text ?? '' });
}

export function avatar(name, seed) {
  const span = el('span', { class: 'avatar', 'aria-hidden': 'true', text: ([...name.trim()][0] || '?').toUpperCase() });
  span.style.setProperty('--avatar-hue', String(hue(String(seed))));
  return span;
}

export function hue(seed) {
  let h = 0;
  for (const ch of seed) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

/** A message's time, in the user's time zone (the one from their profile). */
export function timeEl(iso) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return null;
  return el('time', {
    class: 'message-time',
    dateTime: date.toISOString(),
    text: session.formatClock(date),
    title: session.formatTime(date, { dateStyle: 'full', timeStyle: 'short' }),
  });
}
