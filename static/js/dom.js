// DOM helpers shared by every module: `$` finds an element by id, `el` builds one.

/** The element with this id (or null). */
export const $ = (id) => document.getElementById(id);

/**
 * Builds an element:
 *
 *   el('button', { type: 'button', class: 'link-button', dataset: { testid: 'retry' }, onclick }, 'Retry')
 *
 * Attributes: `class` sets className, `text` sets textContent, `dataset` is merged into the
 * element's dataset, `on<event>` with a function adds a listener, `role` and any name with a dash
 * (`aria-label`, `data-x`) are set as attributes, anything else as a property (`type`, `title`,
 * `hidden`, `tabIndex`, `htmlFor`, …). Values that are null, undefined or false are skipped (in
 * `dataset` too). Children are nodes or strings, or arrays of them; null, undefined and false
 * children are skipped.
 */
export function el(tag, attrs = null, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (name === 'dataset') {
      for (const [key, v] of Object.entries(value)) if (v != null && v !== false) node.dataset[key] = v;
    } else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (name === 'role' || name.includes('-')) node.setAttribute(name, value === true ? '' : value);
    else node[name] = value;
  }
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}
