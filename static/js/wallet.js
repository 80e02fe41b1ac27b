// Wallet (Settings → Wallet): for each workspace the user is in, its credit balance
// (`GET /api/wallet?workspace_id=`) and its ledger (`GET /api/wallet/transactions?workspace_id=`,
// newest first). Credits are added by the platform operator (`POST /api/wallet/credit` with the
// operator's token, or `mathia-local admin credit`), never from here: owners see how to get more.

import { get, asList } from './api.js';
import * as session from './session.js';
import { $, el } from './dom.js';

const LEDGER_LIMIT = 20;

let visible = false;
let serial = 0;

export function show() {
  visible = true;
  render();
}

export function hide() {
  visible = false;
  serial++;
}

export function reset() {
  hide();
  $('wallet-list').replaceChildren();
}

/** Formats cents in a currency ("USD" → "$5.00"); unknown currencies fall back to "5.00 XYZ". */
export function money(cents, currency = 'USD') {
  const amount = (Number(cents) || 0) / 100;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency || 'USD' }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency || ''}`.trim();
  }
}

function render() {
  const mine = ++serial;
  const list = $('wallet-list');
  const workspaces = session.workspaces();
  if (workspaces.length === 0) {
    list.replaceChildren(el('p', { class: 'muted', text: 'You are not in any workspace yet.' }));
    return;
  }
  // Owned, shared workspaces first: that is where top-ups matter.
  const ordered = [...workspaces].sort((a, b) => rank(a) - rank(b));
  list.replaceChildren(...ordered.map((w) => buildCard(w, mine)));
}

function rank(w) {
  return (w.role === 'owner' ? 0 : 2) + (w.personal ? 1 : 0);
}

function buildCard(workspace, mine) {
  const headingId = `wallet-h-${workspace.id}`;
  const card = el('section', {
    class: 'wallet-card',
    dataset: { testid: 'wallet-workspace', workspaceId: String(workspace.id) },
    'aria-labelledby': headingId,
  });
  const head = el(
    'div',
    { class: 'wallet-head' },
    el('h3', { id: headingId, class: 'wallet-name', text: workspace.name || 'Workspace' }),
    el('span', { class: 'badge', text: [workspace.personal ? 'personal' : '', workspace.role].filter(Boolean).join(' · ') }),
  );
  const value = el('strong', { dataset: { testid: 'wallet-balance' }, text: '…' });
  const balance = el('p', { class: 'wallet-balance' }, el('span', { class: 'muted small', text: 'Balance ' }), value);

  const ledgerTitle = el('h4', { class: 'panel-subheading', text: 'Recent activity' });
  const columns = [['When', false], ['What', false], ['Amount', true], ['Balance', true]];
  const tbody = el('tbody');
  const ledger = el(
    'table',
    { class: 'ledger', dataset: { testid: 'ledger' } },
    el('caption', { class: 'visually-hidden', text: `Ledger of ${workspace.name || 'the workspace'}` }),
    el('thead', null, el('tr', null, columns.map(([text, num]) => el('th', { scope: 'col', text, class: num ? 'num' : null })))),
    tbody,
  );
  const ledgerStatus = el('p', { class: 'muted small', role: 'status' });

  card.append(head, balance);
  if (workspace.role === 'owner') {
    card.append(
      el('p', {
        class: 'muted small',
        dataset: { testid: 'wallet-topup-note' },
        text: 'Credits are added by your Mathia operator. Ask them to top up this workspace.',
      }),
    );
  }
  card.append(ledgerTitle, ledger, ledgerStatus);

  async function load() {
    const id = encodeURIComponent(workspace.id);
    try {
      const [wallet, entries] = await Promise.all([
        get(`/api/wallet?workspace_id=${id}`),
        get(`/api/wallet/transactions?workspace_id=${id}&limit=${LEDGER_LIMIT}`),
      ]);
      if (mine !== serial || !visible) return;
      value.textContent = money(wallet?.balance_cents, wallet?.currency);
      value.dataset.cents = String(wallet?.balance_cents ?? '');
      const rows = asList(entries, 'transactions', 'entries');
      tbody.replaceChildren(...rows.map((e) => ledgerRow(e, wallet?.currency)));
      ledgerStatus.textContent = rows.length ? '' : 'No activity yet.';
      ledger.hidden = rows.length === 0;
    } catch (err) {
      if (mine !== serial) return;
      value.textContent = '—';
      ledgerStatus.textContent = `Could not load the wallet: ${err.message}`;
    }
  }
  load();
  return card;
}

function ledgerRow(entry, currency) {
  const when = entry.created_at
    ? session.formatTime(entry.created_at, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
    : '';
  return el(
    'tr',
    { dataset: { testid: 'ledger-row', kind: entry.kind || '' } },
    el('td', { text: when }),
    el('td', { text: entry.reason || (entry.kind === 'credit' ? 'Top-up' : 'Charge') }),
    el('td', {
      class: `num ${entry.kind === 'debit' ? 'debit' : 'credit'}`,
      text: `${entry.kind === 'debit' ? '−' : '+'}${money(entry.amount_cents, currency)}`,
    }),
    el('td', { class: 'num muted', text: entry.balance_after_cents == null ? '' : money(entry.balance_after_cents, currency) }),
  );
}

/** "10", "10.5", "10,50", "$10.00" → cents; 0 when not a positive amount. */
export function parseCents(text) {
  const cleaned = String(text || '').replace(/[^\d.,]/g, '').replace(',', '.');
  if (!/^\d+(\.\d{0,2})?$/.test(cleaned)) return 0;
  const cents = Math.round(Number(cleaned) * 100);
  return Number.isFinite(cents) && cents > 0 ? cents : 0;
}
