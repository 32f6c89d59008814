// Shared by the field pages: labels, the token kept in this browser, calls to /api/v1, and
// DOM building that only ever sets text (descriptions and site names are user input).
"use strict";

const SW = (() => {
  const T = JSON.parse(document.getElementById("labels").textContent);
  const LANG = document.documentElement.lang === "en" ? "en" : "zh";
  const TOKEN_KEY = "sitewatch.token";

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  const token = () => localStorage.getItem(TOKEN_KEY) || "";

  // A sign-in link (`sitewatch token create --link`) carries the token in the fragment, which
  // browsers never send to the server. Keep it as a typed-in token is kept (it replaces the
  // one stored: the link was scanned on purpose), then take it out of the address bar and of
  // this history entry, so it is neither bookmarked, shared with the address nor shown.
  // Returns whether the address carried a token.
  function tokenFromLink() {
    const params = new URLSearchParams(location.hash.slice(1));
    const linked = (params.get("token") || "").trim();
    if (!params.has("token")) return false;
    if (linked) localStorage.setItem(TOKEN_KEY, linked);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(history.state, "",
                         location.pathname + location.search + (rest ? `#${rest}` : ""));
    return true;
  }
  tokenFromLink();
  // A link opened over the page already showing (same path) changes only the fragment, which
  // loads nothing: start again signed in as the link's holder.
  window.addEventListener("hashchange", () => { if (tokenFromLink()) location.reload(); });

  function fmt(text, vars) {
    return text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
  }

  // An element with attributes and text/element children; never parses HTML.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function say(text, kind = "") {
    const box = document.getElementById("message");
    box.textContent = text;
    box.className = "message " + kind;
    box.hidden = !text;
  }

  // fetch with the bearer token (``bearer``: a queued item's own, else the one signed in); a
  // non-2xx answer becomes an ApiError carrying the problem. A network failure stays the
  // TypeError fetch throws: the caller cannot know what happened.
  async function api(path, { method = "GET", json, body, headers = {}, bearer } = {}) {
    const sent = { ...headers, Authorization: `Bearer ${bearer || token()}` };
    if (json !== undefined) {
      sent["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    const response = await fetch(path, { method, headers: sent, body });
    if (response.ok) return response;
    let problem = {};
    try { problem = await response.json(); } catch (_) { /* not problem+json (a proxy) */ }
    // A queued item's older token refused says nothing of the one signed in now.
    if (response.status === 401 && (!bearer || bearer === token())) showSignIn();
    throw new ApiError(response.status, problem);
  }

  // Whether trying the same request again later may succeed (network, server, rate limit).
  function retryable(err) {
    return !(err instanceof ApiError) || err.status >= 500 || err.status === 429
      || err.status === 408;
  }

  function explain(err) {
    if (!(err instanceof ApiError)) return T.offline;
    if (err.status === 401) return T.bad_token;
    if (err.status === 403) return T.forbidden;
    if (err.status >= 500 || err.status === 429) return T.server_error;
    const fields = (err.problem.errors || []).map(
      (e) => [(e.location || [e.field]).filter(Boolean).join("."), e.message].join(": "));
    return [err.problem.detail || `HTTP ${err.status}`, ...fields].join("; ");
  }

  // Times in the district's zone (the server's setting, on the page), not the phone's.
  const dates = new Intl.DateTimeFormat(LANG === "en" ? "en-GB" : "zh-CN", {
    timeZone: document.documentElement.dataset.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false,
  });
  const when = (iso) => (iso ? dates.format(new Date(iso)) : "");

  // Upload a photo; its evidence reference. XMLHttpRequest rather than fetch, because only it
  // reports upload progress (``onProgress(fraction)``), which a slow connection needs shown.
  // Failures are those of api(): an ApiError for an answer, a TypeError for no answer.
  function upload(file, { onProgress, bearer } = {}) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/evidence");
      xhr.setRequestHeader("Authorization", `Bearer ${bearer || token()}`);
      xhr.responseType = "json";
      if (onProgress) {
        xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      }
      xhr.onload = () => {
        const answer = xhr.response || {};
        if (xhr.status >= 200 && xhr.status < 300) { resolve(answer.ref); return; }
        if (xhr.status === 401 && (!bearer || bearer === token())) showSignIn();
        reject(new ApiError(xhr.status, answer));
      };
      xhr.onerror = () => reject(new TypeError("network error"));
      xhr.onabort = () => reject(new TypeError("upload aborted"));
      const form = new FormData();
      form.append("file", file, file.name || "photo.jpg");
      xhr.send(form);
    });
  }

  // The photo route needs the token, which an <img src> cannot send: fetch it, show a blob.
  async function photoUrl(ref) {
    const response = await api(`/api/v1/evidence/${encodeURIComponent(ref)}`);
    return URL.createObjectURL(await response.blob());
  }

  // The same path and query on this origin: paging links name the host the server saw,
  // which behind a proxy need not be the one this page came from.
  function local(href) {
    const url = new URL(href, location.href);
    return url.pathname + url.search;
  }

  let onSignedIn = () => {};

  function showSignIn() {
    document.getElementById("signin").hidden = false;
    document.getElementById("signed-in").hidden = true;
  }

  function signIn(start) {
    onSignedIn = start;
    const form = document.getElementById("signin");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = document.getElementById("token").value.trim();
      if (!value) return;
      localStorage.setItem(TOKEN_KEY, value);
      form.reset();
      ready();
    });
    document.getElementById("signout").addEventListener("click", async () => {
      localStorage.removeItem(TOKEN_KEY);
      // What this token read is not the next person's to see; queued work keeps its own.
      try { await Store.forget(); } catch (_) { /* nothing kept */ }
      location.reload();
    });
    if (token()) ready();
    else { showSignIn(); say(T.no_token); }
  }

  function ready() {
    document.getElementById("signin").hidden = true;
    document.getElementById("signed-in").hidden = false;
    say("");
    onSignedIn();
  }

  // "12 min ago" for a time in milliseconds since the epoch.
  function age(at) {
    const minutes = Math.floor((Date.now() - at) / 60000);
    if (minutes < 1) return T.just_now;
    if (minutes < 60) return fmt(T.age_minutes, { n: minutes });
    if (minutes < 48 * 60) return fmt(T.age_hours, { n: Math.floor(minutes / 60) });
    return fmt(T.age_days, { n: Math.floor(minutes / 1440) });
  }

  // ---- offline ------------------------------------------------------------------------------

  // The service worker keeps the pages' shell (HTML, scripts, styles) so that they open with
  // no network; it needs a secure context (HTTPS, or this machine).
  const SHELL_CACHE = "sitewatch-field-shell";
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/field-sw.js", { scope: "/" }).then(async () => {
      await navigator.serviceWorker.ready;
      // This page's own address (a unit's work page is not known in advance): the worker
      // serves it from here when the network is gone.
      const cache = await caches.open(SHELL_CACHE);
      await cache.add(location.pathname + location.search);
      document.documentElement.dataset.offlineReady = "true";
    }).catch(() => { /* no offline shell: the page still works online */ });
  }

  function showNetwork() {
    document.getElementById("net").hidden = navigator.onLine;
  }
  window.addEventListener("online", showNetwork);
  window.addEventListener("offline", showNetwork);
  showNetwork();

  // A queued item's progress words.
  function stateText(item) {
    if (item.state === "sending") return T.q_sending;
    if (item.state === "refused") return fmt(T.q_refused, { why: item.error || "" });
    return T.q_waiting + (item.error ? ` (${item.error})` : "");
  }

  // The phone's outbox of one kind ("report", "rectify"), sent in order whenever there is a
  // connection: when asked (``flush``), when the connection returns, and every half minute
  // while something waits (a phone's "online" can come before the network works). Each
  // item's photo is uploaded once (its reference kept), then ``send(item)`` makes the item's
  // own request. A send that cannot reach the server leaves the item waiting and stops the
  // round (the next ones would not reach it either); one the server refused is kept with the
  // reason, refused, and the round goes on. ``conflict(item, err)`` may take an error over
  // (true: go on, false: stop, null: not its business). Returns ``flush``.
  function outbox(kind, { send, render, conflict = async () => null, onProgress = null }) {
    let flushing = false;

    async function sendOne(item) {
      item.state = "sending";
      await render(item);
      try {
        if (item.photo && !item.ref) {
          item.ref = await upload(item.photo, { bearer: item.token, onProgress });
          await Store.put({ ...item, state: "queued" });  // a retry does not upload again
        }
        await send(item);
      } catch (err) {
        if (onProgress) onProgress(null);
        const taken = await conflict(item, err);
        if (taken !== null) return taken;
        const later = retryable(err);
        item.error = later ? (err instanceof ApiError ? explain(err) : null) : explain(err);
        item.state = later ? "waiting" : "refused";
        await Store.put(item);
        return !later;
      }
      if (onProgress) onProgress(null);
      await Store.remove(item.key);
      return true;
    }

    async function flush() {
      if (flushing) return;
      flushing = true;
      try {
        for (const item of await Store.queued(kind)) {
          if (item.state === "refused") continue;
          if (!await sendOne(item)) break;
        }
      } finally {
        flushing = false;
        await render();
      }
    }

    window.addEventListener("online", flush);
    setInterval(async () => {
      if ((await Store.queued(kind)).some((i) => i.state !== "refused")) flush();
    }, 30000);
    return flush;
  }

  return { T, LANG, ApiError, api, retryable, explain, fmt, el, say, when, upload, photoUrl,
           local, signIn, token, age, stateText, outbox };
})();
