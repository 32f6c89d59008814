// /report: position (phone's WGS84 fix, pin draggable), categories of the nearest site first,
// photo and note, then POST /api/v1/issues with an Idempotency-Key kept with the request until
// an answer arrives, so "send again" after a dropped connection never makes a second issue.
"use strict";

(() => {
  const { T, api, el, fmt, say, when } = SW;
  const PENDING_KEY = "sitewatch.pending-report";
  const $ = (id) => document.getElementById(id);
  const form = $("report");
  const state = { lon: null, lat: null, manual: false, watch: null, nearbyAt: null };
  let map = null;
  let pin = null;
  let accuracy = null;
  let sites = null;
  let uploaded = { file: null, ref: null };  // the photo already stored, so a retry reuses it

  // ---- position -----------------------------------------------------------------------------

  function ensureMap(lat, lon, zoom) {
    if (map) return;
    // No basemap: the page must work offline; nearby site outlines and a scale give bearings.
    map = L.map("map", { attributionControl: false }).setView([lat, lon], zoom);
    L.control.scale({ imperial: false }).addTo(map);
    sites = L.layerGroup().addTo(map);
    pin = L.marker([lat, lon], { draggable: true, autoPan: true }).addTo(map);
    pin.on("dragend", () => {
      const at = pin.getLatLng();
      state.manual = true;
      if (state.watch !== null) navigator.geolocation.clearWatch(state.watch);
      if (accuracy) accuracy.remove();
      moveTo(at.lng, at.lat);
      $("where").textContent = `${T.moved} (${at.lat.toFixed(6)}, ${at.lng.toFixed(6)})`;
    });
  }

  function located(position) {
    if (state.manual) return;
    const { latitude: lat, longitude: lon, accuracy: metres } = position.coords;
    ensureMap(lat, lon, 18);
    pin.setLatLng([lat, lon]);
    if (accuracy) accuracy.remove();
    accuracy = L.circle([lat, lon], { radius: metres, weight: 1, fillOpacity: 0.08 }).addTo(map);
    map.setView([lat, lon]);
    $("where").textContent = fmt(T.located, { m: Math.round(metres) });
    moveTo(lon, lat);
  }

  async function notLocated() {
    $("where").textContent = T.no_position;
    if (map) return;
    // Start the pin in the middle of the district, for the inspector to drag it.
    try {
      const streets = await (await api("/api/v1/jurisdictions?level=street&limit=1")).json();
      const bounds = L.geoJSON(streets).getBounds();
      const middle = bounds.getCenter();
      ensureMap(middle.lat, middle.lng, 14);
      map.fitBounds(bounds);
    } catch (err) {
      say(SW.explain(err), "error");
    }
  }

  function locate() {
    if (!("geolocation" in navigator)) { notLocated(); return; }
    state.watch = navigator.geolocation.watchPosition(located, notLocated, {
      enableHighAccuracy: true, maximumAge: 10000, timeout: 20000 });
  }

  // Refresh the suggestions when the point moved more than a few metres (fixes jitter).
  function moveTo(lon, lat) {
    state.lon = lon;
    state.lat = lat;
    const last = state.nearbyAt;
    if (last && L.latLng(lat, lon).distanceTo(L.latLng(last[1], last[0])) < 15) return;
    state.nearbyAt = [lon, lat];
    suggest(lon, lat).catch((err) => say(SW.explain(err), "error"));
  }

  // ---- nearest site and categories ----------------------------------------------------------

  async function suggest(lon, lat) {
    const query = new URLSearchParams({ lon, lat });
    const nearby = await (await api(`/api/v1/field/nearby?${query}`)).json();
    const site = nearby.site;
    const layer = site ? (SW.LANG === "en" ? site.layer_en : site.layer_zh) : "";
    $("site").textContent = !site ? T.no_site
      : site.distance_m < 1 ? fmt(T.in_site, { name: site.name, layer })
        : fmt(T.near_site, { name: site.name, layer, m: Math.round(site.distance_m) });
    fillCategories(nearby.categories);
    drawSites(lon, lat).catch(() => { /* outlines are a help, not a need */ });
  }

  function fillCategories(categories) {
    const select = $("category");
    const chosen = select.value;
    const groups = [["relevant", T.relevant], ["city_wide", T.city_wide],
                    ["other", T.other_layers]].map(([key, label]) => [key, el("optgroup", { label })]);
    const byKey = Object.fromEntries(groups);
    for (const c of categories) {
      const key = c.relevant ? "relevant" : c.site_layer === null ? "city_wide" : "other";
      const name = SW.LANG === "en" ? c.name_en : c.name_zh;
      byKey[key].append(el("option", { value: c.code }, `${name} (${c.code})`));
    }
    select.replaceChildren(el("option", { value: "" }, T.choose),
                           ...groups.map(([, g]) => g).filter((g) => g.children.length));
    select.value = categories.some((c) => c.code === chosen) ? chosen : "";
  }

  async function drawSites(lon, lat) {
    const d = 0.004;  // about 400 m around the point
    const bbox = [lon - d, lat - d, lon + d, lat + d].map((v) => v.toFixed(6)).join(",");
    const found = await (await api(`/api/v1/sites?bbox=${bbox}&limit=200`)).json();
    sites.clearLayers();
    L.geoJSON(found, {
      style: { color: "#b3121d", weight: 2, fillOpacity: 0.05 },
      pointToLayer: (_, at) => L.circleMarker(at, { radius: 6 }),
      onEachFeature: (feature, layer) => {
        // An element, not a string: Leaflet would parse a string as HTML.
        layer.bindTooltip(el("span", {}, feature.properties.name));
      },
    }).addTo(sites);
  }

  // ---- submitting ---------------------------------------------------------------------------

  function newKey() {
    // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  const loadPending = () => JSON.parse(localStorage.getItem(PENDING_KEY) || "null");
  const savePending = (p) => localStorage.setItem(PENDING_KEY, JSON.stringify(p));
  const clearPending = () => localStorage.removeItem(PENDING_KEY);

  function busy(on, text) {
    for (const id of ["submit", "retry", "discard"]) $(id).disabled = on;
    if (text) say(text);
  }

  async function submit(event) {
    event.preventDefault();
    const category = $("category").value;
    const note = $("note").value.trim();
    const missing = [state.lon === null && T.need_position, !category && T.need_category,
                     !note && T.need_note].filter(Boolean);
    if (missing.length) { say(missing.join("；"), "error"); return; }
    busy(true);
    try {
      const file = $("photo").files[0] || null;
      if (file && file !== uploaded.file) {
        say(T.uploading);
        uploaded = { file, ref: await SW.upload(file) };
      }
      const body = { category, lon: +state.lon.toFixed(7), lat: +state.lat.toFixed(7),
                     crs: "wgs84", description: note, source: "self_inspection",
                     photos: file ? [uploaded.ref] : [] };
      // The same report again (a second tap after a failure) keeps its key; a changed one
      // is a new report with a new key.
      let pending = loadPending();
      if (!pending || JSON.stringify(pending.body) !== JSON.stringify(body)) {
        pending = { key: newKey(), body };
        savePending(pending);
      }
      await send(pending);
    } catch (err) {
      say(SW.explain(err), "error");
    } finally {
      busy(false);
    }
  }

  async function send(pending) {
    busy(true, T.sending);
    $("pending").hidden = true;
    let response;
    try {
      response = await api("/api/v1/issues", {
        method: "POST", json: pending.body, headers: { "Idempotency-Key": pending.key } });
    } catch (err) {
      if (SW.retryable(err)) {
        // Maybe stored, maybe not: only the same key can tell, so keep it for "send again".
        showPending(fmt(T.send_failed, { why: SW.explain(err) }));
        say("");
      } else {
        clearPending();  // a definite "no": nothing was stored
        say(fmt(T.invalid, { why: SW.explain(err) }), "error");
      }
      return;
    } finally {
      busy(false);
    }
    clearPending();
    say("");
    await showResult(await response.json(),
                     response.headers.get("Idempotent-Replayed") === "true");
  }

  function showPending(text) {
    $("pending-text").textContent = text;
    $("pending").hidden = false;
    $("pending").scrollIntoView({ block: "nearest" });
  }

  async function showResult(issue, replayed) {
    const p = issue.properties;
    form.hidden = true;
    $("result").hidden = false;
    window.scrollTo(0, 0);
    $("result-title").textContent = T.assigned + (replayed ? T.replayed : "");
    $("r-id").textContent = p.id;
    $("r-ground").textContent = p.jurisdiction_name || T.unassigned;
    $("r-unit").textContent = p.lead_unit_name || T.unassigned;
    $("r-site").textContent = p.site_name || T.none;
    $("r-deadline").textContent = when(p.deadline) || T.none;
    $("r-nearby").hidden = !issue.nearby.length;
    $("r-nearby").textContent = fmt(T.nearby_dupes, { n: issue.nearby.length });
    $("r-community").textContent = p.territorial_unit || T.unassigned;
    if (p.territorial_unit) {
      // The community is the territorial unit; its name is one read away.
      try {
        const unit = await (await api(`/api/v1/units/${encodeURIComponent(p.territorial_unit)}`)).json();
        $("r-community").textContent = unit.name;
      } catch (_) { /* the code stays shown */ }
    }
  }

  function again() {
    form.reset();
    $("photo-name").textContent = "";
    uploaded = { file: null, ref: null };
    $("result").hidden = true;
    form.hidden = false;
  }

  // ---- start --------------------------------------------------------------------------------

  let started = false;
  function start() {
    if (started) return;
    started = true;
    form.hidden = false;
    form.addEventListener("submit", submit);
    $("photo").addEventListener("change", () => {
      $("photo-name").textContent = $("photo").files[0]?.name || "";
    });
    $("retry").addEventListener("click", () => { const p = loadPending(); if (p) send(p); });
    $("discard").addEventListener("click", () => { clearPending(); $("pending").hidden = true; });
    $("again").addEventListener("click", again);
    if (loadPending()) showPending(T.pending);
    locate();
  }

  SW.signIn(start);
})();
