// Wallet (Settings → Wallet): for each workspace the user is in, its credit balance
// (`GET /api/wallet?workspace_id=`), its ledger (`GET /api/wallet/transactions?workspace_id=`,
// newest first), and for owners a top-up form (`POST /api/wallet/credit {workspace_id,
// amount_cents, reason, idempotency_key}`). A top-up that fails on the network keeps its
// idempotency key, so trying again cannot credit twice.

import { get, post, newId, asList } from './api.js';
import * as session from './session.js';
import { toast } from './toast.js';

const $ = (id) => document.getElementById(id);
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
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'You are not in any workspace yet.';
    list.replaceChildren(p);
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
  const card = document.createElement('section');
  card.className = 'wallet-card';
  card.dataset.testid = 'wallet-workspace';
  card.dataset.workspaceId = String(workspace.id);
  const headingId = `wallet-h-${workspace.id}`;
  card.setAttribute('aria-labelledby', headingId);

  const head = document.createElement('div');
  head.className = 'wallet-head';
  const title = document.createElement('h3');
  title.id = headingId;
  title.className = 'wallet-name';
  title.textContent = workspace.name || 'Workspace';
  const role = document.createElement('span');
  role.className = 'badge';
  role.textContent = [workspace.personal ? 'personal' : '', workspace.role].filter(Boolean).join(' · ');
  head.append(title, role);

  const balance = document.createElement('p');
  balance.className = 'wallet-balance';
  const label = document.createElement('span');
  label.className = 'muted small';
  label.textContent = 'Balance ';
  const value = document.createElement('strong');
  value.dataset.testid = 'wallet-balance';
  value.textContent = '…';
  balance.append(label, value);

  const ledgerTitle = document.createElement('h4');
  ledgerTitle.className = 'panel-subheading';
  ledgerTitle.textContent = 'Recent activity';
  const ledger = document.createElement('table');
  ledger.className = 'ledger';
  ledger.dataset.testid = 'ledger';
  const caption = document.createElement('caption');
  caption.className = 'visually-hidden';
  caption.textContent = `Ledger of ${workspace.name || 'the workspace'}`;
  const thead = document.createElement('thead');
  const headRow = document.createElement('tr');
  for (const [text, num] of [['When', false], ['What', false], ['Amount', true], ['Balance', true]]) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = text;
    if (num) th.className = 'num';
    headRow.append(th);
  }
  thead.append(headRow);
  const tbody = document.createElement('tbody');
  ledger.append(caption, thead, tbody);
  const ledgerStatus = document.createElement('p');
  ledgerStatus.className = 'muted small';
  ledgerStatus.setAttribute('role', 'status');

  card.append(head, balance);
  if (workspace.role === 'owner') card.append(topUpForm(workspace, () => load()));
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
  const tr = document.createElement('tr');
  tr.dataset.testid = 'ledger-row';
  tr.dataset.kind = entry.kind || '';
  const when = document.createElement('td');
  when.textContent = entry.created_at ? session.formatTime(entry.created_at, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : '';
  const what = document.createElement('td');
  what.textContent = entry.reason || (entry.kind === 'credit' ? 'Top-up' : 'Charge');
  const amount = document.createElement('td');
  amount.className = `num ${entry.kind === 'debit' ? 'debit' : 'credit'}`;
  amount.textContent = `${entry.kind === 'debit' ? '−' : '+'}${money(entry.amount_cents, currency)}`;
  const after = document.createElement('td');
  after.className = 'num muted';
  after.textContent = entry.balance_after_cents == null ? '' : money(entry.balance_after_cents, currency);
  tr.append(when, what, amount, after);
  return tr;
}

function topUpForm(workspace, reload) {
  const form = document.createElement('form');
  form.className = 'topup-form';
  form.noValidate = true;
  const amountId = `topup-amount-${workspace.id}`;
  const reasonId = `topup-reason-${workspace.id}`;

  const amountField = document.createElement('div');
  amountField.className = 'field';
  const amountLabel = document.createElement('label');
  amountLabel.htmlFor = amountId;
  amountLabel.textContent = 'Top up (amount)';
  const amount = document.createElement('input');
  amount.id = amountId;
  amount.type = 'text';
  amount.inputMode = 'decimal';
  amount.placeholder = '10.00';
  amount.autocomplete = 'off';
  amount.dataset.testid = 'wallet-topup-amount';
  amountField.append(amountLabel, amount);

  const reasonField = document.createElement('div');
  reasonField.className = 'field';
  const reasonLabel = document.createElement('label');
  reasonLabel.htmlFor = reasonId;
  reasonLabel.textContent = 'Note';
  const reason = document.createElement('input');
  reason.id = reasonId;
  reason.type = 'text';
  reason.maxLength = 200;
  reason.value = 'Top-up';
  reason.dataset.testid = 'wallet-topup-reason';
  reasonField.append(reasonLabel, reason);

  const submit = document.createElement('button');
  submit.type = 'submit';
  submit.className = 'button button-primary';
  submit.dataset.testid = 'wallet-topup-submit';
  submit.textContent = 'Add credits';

  const error = document.createElement('p');
  error.className = 'form-error small';
  error.dataset.testid = 'wallet-topup-error';
  error.setAttribute('role', 'alert');
  error.hidden = true;

  let key = null; // kept across retries of the same top-up
  amount.addEventListener('input', () => {
    key = null;
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const cents = parseCents(amount.value);
    if (!cents) {
      error.textContent = 'Enter an amount such as 10 or 10.50.';
      error.hidden = false;
      amount.setAttribute('aria-invalid', 'true');
      amount.focus();
      return;
    }
    amount.removeAttribute('aria-invalid');
    key = key || newId();
    submit.disabled = true;
    try {
      const entry = await post('/api/wallet/credit', {
        workspace_id: workspace.id,
        amount_cents: cents,
        reason: reason.value.trim() || 'Top-up',
        idempotency_key: key,
      });
      key = null;
      amount.value = '';
      toast(`Added ${money(entry?.amount_cents ?? cents)} to ${workspace.name || 'the workspace'}.`, { timeout: 5000 });
      await reload();
    } catch (err) {
      if (err.status && err.status !== 0 && err.status < 500) key = null; // a real answer: a new attempt is a new top-up
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });

  form.append(amountField, reasonField, submit, error);
  return form;
}

/** "10", "10.5", "10,50", "$10.00" → cents; 0 when not a positive amount. */
export function parseCents(text) {
  const cleaned = String(text || '').replace(/[^\d.,]/g, '').replace(',', '.');
  if (!/^\d+(\.\d{0,2})?$/.test(cleaned)) return 0;
  const cents = Math.round(Number(cleaned) * 100);
  return Number.isFinite(cents) && cents > 0 ? cents : 0;
}
