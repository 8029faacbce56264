// api.js - every call the page makes to visiond goes through api(): the key header, the 401 prompt,
// 503 retries after Retry-After, and errors carrying the server's own message.

const KEY_STORE = 'visiond.apiKey';
const MAX_BUSY_RETRIES = 5;

let askKey = null;      // async (message) => key or null; set by app.js
let onBusy = () => {};  // (text) => void; tells the user a retry is coming

export function setKeyPrompt(fn) { askKey = fn; }
export function setBusyNotice(fn) { onBusy = fn; }

// The key is kept for this tab only and sent as a header, never in a URL.
export function getKey() { return sessionStorage.getItem(KEY_STORE) || ''; }
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || '';
  }
  // "415 UNSUPPORTED_MEDIA_TYPE: <the server's message>"
  describe() {
    const where = this.field ? ` (${this.field})` : '';
    return `${this.status ? this.status + ' ' : ''}${this.code}: ${this.message}${where}`;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function errorOf(status, data, text, statusText) {
  const e = data && typeof data === 'object' ? data.error : null;
  if (e && typeof e === 'object')
    return new ApiError(status, e.code || String(status), e.message || statusText, e.field);
  if (typeof e === 'string') // DeepStack-shaped answers
    return new ApiError(status, String(status), e);
  return new ApiError(status, String(status), (text || statusText || 'request failed').slice(0, 500));
}

// path: "/v1/detect"; query: object of parameters; form: FormData; json: a value sent as JSON.
// Resolves to {status, data, ms, text}; rejects with ApiError.
export async function api(path, { method = 'GET', query = null, form = null, json } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query))
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    const s = q.toString();
    if (s) url += '?' + s;
  }
  for (let busy = 0, prompts = 0; ;) {
    const headers = {};
    const key = getKey();
    if (key) headers['X-API-Key'] = key;
    let body = form;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    }
    const t0 = performance.now();
    let res;
    try {
      res = await fetch(url, { method, headers, body, cache: 'no-store', credentials: 'omit' });
    } catch (err) {
      throw new ApiError(0, 'NETWORK', `the server could not be reached (${err.message})`);
    }
    const text = await res.text();
    const ms = performance.now() - t0;
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (res.ok) return { status: res.status, data, ms, text };
    const error = errorOf(res.status, data, text, res.statusText);
    if (res.status === 401 && askKey && prompts++ < 3) {
      const k = await askKey(error.message);
      if (k) {
        setKey(k);
        continue;
      }
    }
    if (res.status === 503 && busy++ < MAX_BUSY_RETRIES) {
      const after = parseInt(res.headers.get('Retry-After') || '1', 10);
      const s = Math.min(60, Math.max(1, Number.isFinite(after) ? after : 1));
      onBusy(`The server is busy (${error.message}); retrying in ${s} s.`);
      await sleep(s * 1000);
      continue;
    }
    throw error;
  }
}
