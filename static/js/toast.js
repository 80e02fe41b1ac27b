// Short notices in the corner (a reminder came due, a top-up went through). Each toast is a
// `data-testid="toast"` element inside the polite live region `#toasts`; it goes away by itself
// after `timeout` ms (0 keeps it) or with its close button.

const MAX_TOASTS = 4;

export function toast(message, { title = '', timeout = 8000, kind = 'info' } = {}) {
  const region = document.getElementById('toasts');
  if (!region) return null;
  const el = document.createElement('div');
  el.className = `toast toast-${kind}`;
  el.dataset.testid = 'toast';
  el.setAttribute('role', 'status');

  const text = document.createElement('div');
  text.className = 'toast-text';
  if (title) {
    const strong = document.createElement('strong');
    strong.textContent = title;
    text.append(strong, document.createTextNode(' '));
  }
  text.append(document.createTextNode(message));

  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'icon-button toast-close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '✕';

  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    el.remove();
  };
  close.addEventListener('click', dismiss);
  el.append(text, close);
  region.append(el);
  while (region.children.length > MAX_TOASTS) region.firstElementChild.remove();
  if (timeout > 0) timer = setTimeout(dismiss, timeout);
  return { dismiss };
}

export function clearToasts() {
  document.getElementById('toasts')?.replaceChildren();
}
