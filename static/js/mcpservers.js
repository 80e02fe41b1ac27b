// Assistant tools from MCP servers (Settings → Wallet, owners only): the streamable HTTP MCP
// servers whose allow-listed tools Mathia may call in each workspace the user owns.
// `GET|POST /api/workspaces/{id}/mcp-servers`, `DELETE …/mcp-servers/{server_id}`; a server's
// token is sent once and never shown again (`has_token`).

import { get, post, del, asList } from './api.js';
import * as session from './session.js';
import { $, el } from './dom.js';

let serial = 0;

export function show() {
  const mine = ++serial;
  const owned = session.workspaces().filter((w) => w.role === 'owner');
  $('mcp-section').hidden = owned.length === 0;
  $('mcp-list').replaceChildren(...owned.map((w) => workspaceBox(w, () => mine === serial)));
}

export function hide() {
  serial++;
}

function workspaceBox(workspace, current) {
  const base = `/api/workspaces/${encodeURIComponent(workspace.id)}/mcp-servers`;
  const list = el('ul', { class: 'item-list mcp-servers', dataset: { testid: 'mcp-servers', workspaceId: String(workspace.id) } });
  const status = el('p', { class: 'muted small', role: 'status', dataset: { testid: 'mcp-status' } });

  async function load() {
    try {
      const servers = asList(await get(base), 'servers');
      if (!current()) return;
      list.replaceChildren(...servers.map(row));
      if (servers.length === 0) list.append(el('li', { class: 'muted small', text: 'No MCP servers yet.' }));
    } catch (err) {
      if (current()) status.textContent = `Could not load the servers: ${err.message}`;
    }
  }

  function row(s) {
    const remove = el('button', {
      type: 'button',
      class: 'button button-small button-danger',
      dataset: { testid: 'mcp-remove' },
      text: 'Remove',
      'aria-label': `Remove the MCP server ${s.name}`,
      onclick: async () => {
        remove.disabled = true;
        try {
          await del(`${base}/${encodeURIComponent(s.id)}`);
          status.textContent = `Removed ${s.name}.`;
          await load();
        } catch (err) {
          remove.disabled = false;
          status.textContent = err.message;
        }
      },
    });
    const tools = (s.allowed_tools || []).join(', ') || 'no tools allowed';
    return el(
      'li',
      { class: 'mcp-server', dataset: { testid: 'mcp-server', name: String(s.name) } },
      el(
        'div',
        { class: 'mcp-server-text' },
        el('strong', { text: s.name }),
        el('span', { class: 'muted small', text: ` ${s.url}${s.has_token ? ' · token set' : ''}` }),
        el('div', { class: 'small', dataset: { testid: 'mcp-tools' }, text: `Tools: ${tools}` }),
      ),
      remove,
    );
  }

  const field = (name, label, attrs = {}) => {
    const id = `mcp-${name}-${workspace.id}`;
    const input = el('input', { id, name, dataset: { testid: `mcp-${name}` }, autocomplete: 'off', ...attrs });
    return [el('label', { htmlFor: id, text: label }), input];
  };
  const [nameLabel, nameInput] = field('name', 'Name', { placeholder: 'shop', maxLength: 32, required: true });
  const [urlLabel, urlInput] = field('url', 'URL (streamable HTTP)', { type: 'url', placeholder: 'https://mcp.example.com/mcp', required: true });
  const [tokenLabel, tokenInput] = field('token', 'Bearer token (optional)', { type: 'password' });
  const [toolsLabel, toolsInput] = field('tools', 'Allowed tools (comma-separated)', { placeholder: 'lookup_order, track_parcel' });
  const error = el('p', { class: 'form-error small', role: 'alert', dataset: { testid: 'mcp-error' }, hidden: true });
  const submit = el('button', { type: 'submit', class: 'button button-small', dataset: { testid: 'mcp-add' }, text: 'Add server' });
  const form = el(
    'form',
    {
      class: 'mcp-form',
      dataset: { testid: 'mcp-form' },
      onsubmit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        submit.disabled = true;
        const body = {
          name: nameInput.value.trim(),
          url: urlInput.value.trim(),
          allowed_tools: toolsInput.value.split(',').map((t) => t.trim()).filter(Boolean),
        };
        if (tokenInput.value) body.token = tokenInput.value;
        try {
          await post(base, body);
          form.reset();
          status.textContent = `Added ${body.name}.`;
          await load();
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    },
    nameLabel,
    nameInput,
    urlLabel,
    urlInput,
    tokenLabel,
    tokenInput,
    toolsLabel,
    toolsInput,
    error,
    submit,
  );
  load();
  return el(
    'div',
    { class: 'mcp-workspace' },
    el('h4', { class: 'panel-subheading', text: workspace.name || 'Workspace' }),
    list,
    status,
    form,
  );
}
