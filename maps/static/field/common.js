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

  // fetch with the bearer token; a non-2xx answer becomes an ApiError carrying the problem.
  // A network failure stays the TypeError fetch throws: the caller cannot know what happened.
  async function api(path, { method = "GET", json, body, headers = {} } = {}) {
    const sent = { ...headers, Authorization: `Bearer ${token()}` };
    if (json !== undefined) {
      sent["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    const response = await fetch(path, { method, headers: sent, body });
    if (response.ok) return response;
    let problem = {};
    try { problem = await response.json(); } catch (_) { /* not problem+json (a proxy) */ }
    if (response.status === 401) showSignIn();
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

  async function upload(file) {
    const form = new FormData();
    form.append("file", file);
    const response = await api("/api/v1/evidence", { method: "POST", body: form });
    return (await response.json()).ref;
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
    document.getElementById("signout").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
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

  return { T, LANG, ApiError, api, retryable, explain, fmt, el, say, when, upload, photoUrl,
           local, signIn };
})();
