// Small line icons drawn as inline SVG, so the interface does not depend on an emoji font.

const PATHS = {
  notes: [
    'M12 5a3 3 0 0 0-5.8-1A3 3 0 0 0 4 8a3 3 0 0 0 0 6 3 3 0 0 0 3 4.5A3 3 0 0 0 12 19z',
    'M12 5a3 3 0 0 1 5.8-1A3 3 0 0 1 20 8a3 3 0 0 1 0 6 3 3 0 0 1-3 4.5A3 3 0 0 1 12 19z',
    'M12 5v14',
    'M8 9.5c1 0 2 .7 2 2M16 9.5c-1 0-2 .7-2 2',
  ],
  trash: ['M4 7h16', 'M9 7V4.5h6V7', 'M6.5 7l1 12.5h9l1-12.5', 'M10.5 11v5M13.5 11v5'],
};

const NS = 'http://www.w3.org/2000/svg';

/** An <svg> icon (decorative: hidden from assistive technology; label the button instead). */
export function icon(name) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '18');
  svg.setAttribute('height', '18');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '1.8');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of PATHS[name] || []) {
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}
