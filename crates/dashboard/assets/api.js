// The REST API of the origin that served the page. Credentials are asked
// for only when the API answers 401, kept in sessionStorage (gone with the
// tab) and sent as Basic auth on every call.

const KEY = "ipfs-cluster-basic";

/** An answer that is not a success: its status and the API's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
  }
}

/** The Authorization header, when the user has signed in. */
export function authHeaders() {
  const basic = sessionStorage.getItem(KEY);
  return basic ? { Authorization: `Basic ${basic}` } : {};
}

// One login dialog for every call that was refused at the same time.
let pendingLogin = null;

function encodeBasic(user, password) {
  // btoa takes Latin-1: encode UTF-8 first.
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return btoa(String.fromCharCode(...bytes));
}

/**
 * Shows the login form until the API accepts what is typed in it: one
 * check per try (GET /id), so a typo costs one failed login, not one per
 * call waiting (the API locks an address out after too many). A
 * `cancellable` form (a write refused while reads need no credentials:
 * `public_read`) has a Cancel button and Escape; cancelling rejects with a
 * 401 ApiError. Otherwise nothing works without credentials and the form
 * stays.
 */
function login(failed, cancellable) {
  if (pendingLogin) return pendingLogin;
  const dialog = document.getElementById("login");
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const cancel = document.getElementById("login-cancel");
  error.textContent = failed ? "Those credentials were refused." : "";
  cancel.hidden = !cancellable;
  pendingLogin = new Promise((resolve, reject) => {
    const close = () => {
      form.removeEventListener("submit", submit);
      cancel.onclick = null;
      dialog.oncancel = null;
      dialog.close();
      pendingLogin = null;
    };
    const submit = async (e) => {
      e.preventDefault();
      const basic = encodeBasic(form.elements.user.value, form.elements.password.value);
      const resp = await fetch("/id", {
        credentials: "omit", headers: { Authorization: `Basic ${basic}` },
      });
      await resp.body?.cancel();
      if (resp.status === 401 || resp.status === 429) {
        error.textContent = resp.status === 429
          ? "Too many failed sign-ins from here: wait a minute."
          : "Those credentials were refused.";
        return;
      }
      sessionStorage.setItem(KEY, basic);
      close();
      resolve();
    };
    form.addEventListener("submit", submit);
    cancel.onclick = () => {
      close();
      reject(new ApiError(401, "not signed in"));
    };
    dialog.oncancel = (e) => {
      e.preventDefault();
      if (cancellable) cancel.onclick();
    };
  });
  dialog.showModal();
  return pendingLogin;
}

/**
 * Asks for credentials for a write the API refused (the Add page's
 * upload, which is not sent through `request`); rejects if cancelled.
 */
export function signIn() {
  return login(sessionStorage.getItem(KEY) !== null, true);
}

/**
 * fetch() against the API: on 401 asks for credentials and tries again.
 * `credentials: "omit"` keeps the browser's own Basic prompt away.
 */
export async function request(method, path, { body, signal, headers } = {}) {
  for (;;) {
    const sent = sessionStorage.getItem(KEY);
    const resp = await fetch(path, {
      method, body, signal, credentials: "omit",
      headers: { ...authHeaders(), ...headers },
    });
    if (resp.status !== 401) return resp;
    await resp.body?.cancel();
    await login(sent !== null, method !== "GET");
  }
}

async function failure(resp) {
  let message = "";
  try {
    message = (await resp.json()).message;
  } catch {
    // Not the API's JSON error: the status says enough.
  }
  return new ApiError(resp.status, message);
}

/** A JSON answer (`null` for 204). */
export async function getJson(path, opts = {}) {
  const resp = await request(opts.method || "GET", path, opts);
  if (!resp.ok) throw await failure(resp);
  if (resp.status === 204) return null;
  return resp.json();
}

/**
 * The items of an NDJSON stream, read as they arrive: a caller that stops
 * early (break, or its signal aborted) cancels the rest of the transfer.
 */
export async function* ndjson(path, { signal, method = "GET" } = {}) {
  const resp = await request(method, path, { signal });
  if (resp.status === 204) return;
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        if (line.trim()) yield JSON.parse(line);
      }
    }
    if (buffered.trim()) yield JSON.parse(buffered);
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** A path with query parameters (empty values left out). */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
