// Short notices in the corner (a reminder came due, a top-up went through). Each toast is a
// `data-testid="toast"` element inside the polite live region `#toasts`; it goes away by itself
// after `timeout` ms (0 keeps it) or with its close button.

import { $, el } from './dom.js';

const MAX_TOASTS = 4;

export function toast(message, { title = '', timeout = 8000, kind = 'info' } = {}) {
  const region = $('toasts');
  if (!region) return null;
  let timer = null;
  const box = el(
    'div',
    { class: `toast toast-${kind}`, dataset: { testid: 'toast' }, role: 'status' },
    el('div', { class: 'toast-text' }, title ? [el('strong', { text: title }), ' '] : null, message),
    el('button', { type: 'button', class: 'icon-button toast-close', 'aria-label': 'Dismiss', text: '✕', onclick: () => dismiss() }),
  );
  const dismiss = () => {
    clearTimeout(timer);
    box.remove();
  };
  region.append(box);
  while (region.children.length > MAX_TOASTS) region.firstElementChild.remove();
  if (timeout > 0) timer = setTimeout(dismiss, timeout);
  return { dismiss };
}

export function clearToasts() {
  $('toasts')?.replaceChildren();
}
