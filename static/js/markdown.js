// Markdown for message bodies: marked turns text into HTML, DOMPurify keeps only a small set of
// harmless tags, and the result comes back as DOM nodes — never as an HTML string put into a page.
//
// Raw HTML in a message is shown as the text it is (escaped before sanitising), images become
// links, links open in a new tab with rel=noopener, and only `language-*` classes survive (for
// code blocks). The libraries are vendored copies (scripts/vendor), loaded without any network.

import { Marked } from '../vendor/marked.esm.js';
import DOMPurify from '../vendor/purify.es.js';

const ALLOWED_TAGS = [
  'a', 'b', 'blockquote', 'br', 'code', 'del', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i',
  'li', 'ol', 'p', 'pre', 's', 'strong', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul',
];
const ALLOWED_ATTR = ['href', 'title', 'class', 'start', 'align', 'colspan', 'rowspan'];

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);

const marked = new Marked({ gfm: true, breaks: true, async: false });
marked.use({
  renderer: {
    // Raw HTML typed into a message is text, not markup.
    html(token) {
      return escapeHtml(token.text ?? token.raw ?? '');
    },
    // No remote images in chat: show a link to it instead.
    image(token) {
      const label = escapeHtml(token.text || token.href || 'image');
      return token.href ? `<a href="${escapeHtml(token.href)}">${label}</a>` : label;
    },
  },
});

const sanitizerWorks = Boolean(DOMPurify && DOMPurify.isSupported);

/** The rendered, sanitised markdown of `text` as a DocumentFragment. */
export function renderMarkdown(text) {
  const source = String(text ?? '');
  const fragment = document.createDocumentFragment();
  if (!source) return fragment;
  if (!sanitizerWorks) {
    fragment.append(document.createTextNode(source));
    return fragment;
  }
  let html;
  try {
    html = marked.parse(source);
  } catch {
    fragment.append(document.createTextNode(source));
    return fragment;
  }
  const clean = DOMPurify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    RETURN_DOM_FRAGMENT: true,
  });
  for (const a of clean.querySelectorAll('a')) {
    a.setAttribute('target', '_blank');
    a.setAttribute('rel', 'noopener noreferrer nofollow');
  }
  for (const el of clean.querySelectorAll('[class]')) {
    const keep = [...el.classList].filter((c) => /^language-[\w+-]+$/.test(c));
    if (keep.length) el.className = keep.join(' ');
    else el.removeAttribute('class');
  }
  // marked ends blocks with newlines; between blocks they would only add stray whitespace.
  for (const node of [...clean.childNodes]) {
    if (node.nodeType === Node.TEXT_NODE && !node.textContent.trim()) node.remove();
  }
  return clean;
}

/** Replaces `el`'s content with the rendered markdown of `text`. */
export function setMarkdown(el, text) {
  el.replaceChildren(renderMarkdown(text));
}
