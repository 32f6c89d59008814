// The field pages' service worker (served at /field-sw.js, scope "/"): the pages' shell (HTML,
// scripts, styles, icons) comes from the network when it answers and from this cache when it
// does not, so /report and a unit's work page open in a basement. Data is not cached here: the
// pages keep what they read, and queue what they write, in IndexedDB (store.js).
"use strict";

const SHELL_CACHE = "sitewatch-field-shell";
// Kept at install; each page also adds its own address when it first runs (common.js).
const SHELL = [
  "/report", "/report?lang=zh", "/report?lang=en",
  "/static/field/field.css", "/static/field/store.js", "/static/field/common.js",
  "/static/field/photos.js", "/static/field/report.js", "/static/field/work.js",
  "/static/vendor/leaflet/leaflet.css", "/static/vendor/leaflet/leaflet.js",
  "/static/vendor/leaflet/images/marker-icon.png",
  "/static/vendor/leaflet/images/marker-icon-2x.png",
  "/static/vendor/leaflet/images/marker-shadow.png",
  "/static/vendor/exifr/mini.umd.js",
  "/static/field/icons/icon-192.png", "/static/field/icons/icon-512.png",
  "/report.webmanifest?lang=zh", "/report.webmanifest?lang=en",
];
// How long the network may take before the cached shell is shown instead: one bar of signal
// that never answers must not leave the inspector before a blank page.
const PATIENCE_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

function isShell(url) {
  return url.origin === self.location.origin && (
    url.pathname === "/report" || /^\/units\/[^/]+\/work$/.test(url.pathname)
    || url.pathname.endsWith(".webmanifest")
    || url.pathname.startsWith("/static/field/") || url.pathname.startsWith("/static/vendor/"));
}

// The network's answer, kept for next time; the cached copy when the network fails or is too
// slow (and the network's late answer still refreshes the cache).
async function networkFirst(request) {
  const cache = await caches.open(SHELL_CACHE);
  const fresh = fetch(request).then((response) => {
    if (response.ok) cache.put(request, response.clone());
    return response;
  });
  fresh.catch(() => { /* answered from the cache below */ });
  const slow = new Promise((resolve) => setTimeout(resolve, PATIENCE_MS, null));
  try {
    const first = await Promise.race([fresh, slow]);
    if (first) return first;
  } catch (_) { /* no network: the cache answers */ }
  const cached = await cache.match(request) || await cache.match(request, { ignoreSearch: true });
  if (cached) return cached;
  return fresh;  // nothing cached: wait for the network after all (or fail as it fails)
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !isShell(url)) return;  // the API: straight through
  event.respondWith(networkFirst(event.request));
});
