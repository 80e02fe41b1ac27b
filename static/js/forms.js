// Form pieces shared by onboarding and settings: the time-zone picker, the goals chip editor, and
// showing a server error beside the input it names (`error.field`).

import { el } from './dom.js';
import { browserTimeZone } from './session.js';

/** Fills a <select> with the IANA time zones the browser knows, selecting `selected`. */
export function fillTimeZones(select, selected) {
  const wanted = selected || browserTimeZone();
  if (select.options.length === 0) {
    let zones = [];
    try {
      zones = Intl.supportedValuesOf('timeZone');
    } catch {
      zones = [];
    }
    const all = new Set(zones);
    all.add('UTC');
    all.add(browserTimeZone());
    const fragment = document.createDocumentFragment();
    for (const zone of [...all].sort((a, b) => a.localeCompare(b))) {
      fragment.append(el('option', { value: zone, text: zone.replace(/_/g, ' ') }));
    }
    select.append(fragment);
  }
  if (![...select.options].some((o) => o.value === wanted)) {
    select.prepend(el('option', { value: wanted, text: wanted.replace(/_/g, ' ') }));
  }
  select.value = wanted;
}

/**
 * A list of goals edited as chips: type into `input`, press Enter or `addButton`; each chip has a
 * remove button. `testidPrefix` names the chips (`<prefix>-goal`, `<prefix>-goal-remove`).
 */
export function goalsEditor({ input, addButton, list, testidPrefix = 'onb' }) {
  let goals = [];

  function render() {
    list.replaceChildren();
    goals.forEach((goal, index) => {
      const remove = () => {
        goals.splice(index, 1);
        render();
        input.focus();
      };
      list.append(
        el(
          'li',
          { class: 'chip', dataset: { testid: `${testidPrefix}-goal` } },
          el('span', { text: goal }),
          el('button', {
            type: 'button',
            class: 'chip-remove',
            dataset: { testid: `${testidPrefix}-goal-remove` },
            'aria-label': `Remove goal: ${goal}`,
            text: '✕',
            onclick: remove,
          }),
        ),
      );
    });
    list.hidden = goals.length === 0;
  }

  /** Adds what is typed (if anything); returns whether something was added. */
  function commit() {
    const value = input.value.trim();
    if (!value) return false;
    if (!goals.some((g) => g.toLowerCase() === value.toLowerCase())) goals.push(value);
    input.value = '';
    render();
    return true;
  }

  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.isComposing) {
      event.preventDefault();
      commit();
    }
  });
  addButton.addEventListener('click', () => {
    commit();
    input.focus();
  });

  render();
  return {
    get: () => [...goals],
    set(next) {
      goals = Array.isArray(next) ? next.filter((g) => typeof g === 'string' && g.trim()) : [];
      render();
    },
    commit,
  };
}

/**
 * Shows an error: beside the input inside `scope` whose `data-field` is `error.field` when there
 * is one, else in `general`. Error elements carry `data-testid=<testid>` and `data-field`.
 */
export function showError(scope, general, error, testid) {
  clearErrors(scope, general);
  const message = error?.message || 'Something went wrong. Please try again.';
  const field = error?.field;
  const input = field ? scope.querySelector(`[data-field="${CSS.escape(field)}"]:not([data-testid="${testid}"])`) : null;
  if (input && !input.closest('[hidden]')) {
    const holder = input.closest('.field') || input.parentElement;
    const p = el('p', {
      class: 'field-error',
      id: `${input.id || field}-error`,
      dataset: { testid, field },
      role: 'alert',
      text: message,
    });
    holder.append(p);
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), p.id].filter(Boolean).join(' '));
    input.focus();
    return;
  }
  general.textContent = message;
  general.dataset.field = field || '';
  general.hidden = false;
}

export function clearErrors(scope, general) {
  for (const p of scope.querySelectorAll('.field-error')) {
    const input = scope.querySelector(`[aria-describedby~="${CSS.escape(p.id)}"]`);
    if (input) {
      const rest = input.getAttribute('aria-describedby').split(' ').filter((id) => id !== p.id);
      if (rest.length) input.setAttribute('aria-describedby', rest.join(' '));
      else input.removeAttribute('aria-describedby');
      input.removeAttribute('aria-invalid');
    }
    p.remove();
  }
  for (const input of scope.querySelectorAll('[aria-invalid="true"]')) input.removeAttribute('aria-invalid');
  general.textContent = '';
  general.hidden = true;
}
