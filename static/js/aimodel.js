// Assistant model (Settings → Wallet, owners only): which of the operator's models answers in
// each workspace the user owns. `GET /api/ai/models` lists `[{id, label}]` (never an endpoint or
// key), `GET|PUT /api/workspaces/{id}/ai-model` read and set `{model_id}`.

import { get, put, asList } from './api.js';
import * as session from './session.js';
import { $, el } from './dom.js';

let serial = 0;

export async function show() {
  const mine = ++serial;
  const box = $('ai-model-list');
  const owned = session.workspaces().filter((w) => w.role === 'owner');
  $('ai-model-section').hidden = owned.length === 0;
  if (owned.length === 0) {
    box.replaceChildren();
    return;
  }
  let models = [];
  try {
    models = asList(await get('/api/ai/models'), 'models');
  } catch (err) {
    if (mine === serial) box.replaceChildren(el('p', { class: 'form-error small', text: `Could not load the models: ${err.message}` }));
    return;
  }
  if (mine !== serial) return;
  box.replaceChildren(...owned.map((w) => picker(w, models)));
}

export function hide() {
  serial++;
}

function picker(workspace, models) {
  const id = `ai-model-${workspace.id}`;
  const status = el('span', { class: 'muted small', role: 'status', dataset: { testid: 'ai-model-status' } });
  const select = el(
    'select',
    { id, dataset: { testid: 'ai-model-select', workspaceId: String(workspace.id) }, disabled: true },
    ...models.map((m) => el('option', { value: String(m.id), text: m.label || m.id })),
  );
  get(`/api/workspaces/${encodeURIComponent(workspace.id)}/ai-model`)
    .then((r) => {
      if (r?.model_id) select.value = r.model_id;
      select.disabled = false;
    })
    .catch((err) => {
      status.textContent = err.message;
    });
  select.addEventListener('change', async () => {
    select.disabled = true;
    status.textContent = 'Saving…';
    try {
      const r = await put(`/api/workspaces/${encodeURIComponent(workspace.id)}/ai-model`, { model_id: select.value });
      if (r?.model_id) select.value = r.model_id;
      status.textContent = 'Saved.';
    } catch (err) {
      status.textContent = err.message;
    } finally {
      select.disabled = false;
    }
  });
  return el(
    'div',
    { class: 'field ai-model-field' },
    el('label', { htmlFor: id, text: workspace.name || 'Workspace' }),
    select,
    status,
  );
}
