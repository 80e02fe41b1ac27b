// HTTP API client: JSON in and out, the bearer token from localStorage, and one error type.
// Also two small helpers every panel needs: `newId()` (client ids, idempotency keys) and `asList`.
//
// Every failed call throws an `ApiError` carrying the server's `{error: {code, message, field?}}`
// and the HTTP status. A 401 on a call that carried a token means the session is over: the token is
// dropped and the handler registered with `onUnauthorized` is told (main.js shows sign-in).

const TOKEN_KEY = 'mathia.token';

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS = null, field = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
    this.field = field; // the input at fault, when the server names one
  }
}

let unauthorizedHandler = () => {};

export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage unavailable: nothing to clear
  }
}

/** Calls the API and resolves with the parsed JSON body (or null for 204). */
export async function request(method, path, body) {
  const token = getToken();
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;

  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network_error', 'Could not reach Mathia. Check your connection.');
  }

  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }

  if (response.ok) return data;

  const err = data && typeof data === 'object' && data.error ? data.error : {};
  const retryAfter = Number(response.headers.get('Retry-After'));
  const error = new ApiError(
    response.status,
    err.code || `http_${response.status}`,
    err.message || defaultMessage(response.status),
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
    typeof err.field === 'string' && err.field ? err.field : null,
  );

  if (response.status === 401 && token) {
    clearToken();
    unauthorizedHandler(error);
  }
  throw error;
}

function defaultMessage(status) {
  if (status === 401) return 'Please sign in again.';
  if (status === 403) return 'You are not allowed to do that.';
  if (status === 404) return 'Not found.';
  if (status === 429) return 'Too many requests. Please wait a moment.';
  if (status >= 500) return 'Mathia is having trouble right now. Please try again.';
  return 'Something went wrong.';
}

/**
 * A bare authenticated fetch (no JSON handling, redirects not followed) for the few calls that
 * need the raw answer: probing whether an optional route exists, starting an OAuth redirect.
 */
export async function rawFetch(method, path, { accept = 'application/json' } = {}) {
  const token = getToken();
  const headers = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(path, { method, headers, redirect: 'manual' });
}

/** A random UUID (v4), also on plain-http origins where `crypto.randomUUID` is missing. */
export function newId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Lists come back as a JSON array; tolerate `{items: […]}`-style wrappers too. */
export function asList(data, ...keys) {
  if (Array.isArray(data)) return data;
  for (const key of [...keys, 'items', 'data']) {
    if (data && Array.isArray(data[key])) return data[key];
  }
  return [];
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);
export const put = (path, body) => request('PUT', path, body);
export const del = (path) => request('DELETE', path);
