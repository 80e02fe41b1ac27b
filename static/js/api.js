// HTTP API client: JSON in and out, the bearer token from localStorage, and one error type.
//
// Every failed call throws an `ApiError` carrying the server's `{error: {code, message}}` and the
// HTTP status. A 401 on a call that carried a token means the session is over: the token is
// dropped and the handler registered with `onUnauthorized` is told (main.js shows sign-in).

const TOKEN_KEY = 'mathia.token';

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
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

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);
export const put = (path, body) => request('PUT', path, body);
export const del = (path) => request('DELETE', path);
