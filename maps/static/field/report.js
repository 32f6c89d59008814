// /report: position (phone's WGS84 fix with its accuracy, pin draggable, or where the photo was
// taken), categories of the nearest site first, photo and note. A report goes first to the
// phone's outbox (IndexedDB, store.js) with its Idempotency-Key and its shrunk photo, then to
// POST /api/v1/issues whenever there is a connection: at once, when the connection returns,
// and when the page is opened again. A send whose answer was lost is sent again with the same
// key, so it never makes a second issue; a refusal stays on the item until fixed or discarded.
"use strict";

(() => {
  const { T, api, el, fmt, say, when } = SW;
  const $ = (id) => document.getElementById(id);
  const form = $("report");
  const TOLERANCE = Number(document.documentElement.dataset.tolerance);  // the server's
  const ACTIONS = ["market", "construction", "appearance", "compound", "behaviour"];
  const state = { lon: null, lat: null, manual: false, watch: null, nearbyAt: null,
                  fix: null };  // fix: the last accuracy in metres, null before any
  let map = null;
  let pin = null;
  let accuracy = null;
  let sites = null;
  let editing = null;  // the refused item being fixed in the form
  let justMade = null;  // the key of the report made on this page, whose result is shown
  const sent = [];  // what this visit's background sends delivered: [{id, unit}]

  // ---- position -----------------------------------------------------------------------------

  function ensureMap(lat, lon, zoom) {
    if (map) return;
    // No basemap: the page must work offline; nearby site outlines and a scale give bearings.
    map = L.map("map", { attributionControl: false }).setView([lat, lon], zoom);
    L.control.scale({ imperial: false }).addTo(map);
    sites = L.layerGroup().addTo(map);
    pin = L.marker([lat, lon], { draggable: true, autoPan: true, alt: T.pin }).addTo(map);
    $("pin-here").hidden = false;
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
    state.fix = metres;
    $("where").textContent = fmt(T.located, { m: Math.round(metres) });
    // Worse than the assignment's tolerance: the problem may land in the neighbour's ground.
    $("rough").hidden = metres <= TOLERANCE;
    $("rough").textContent = fmt(T.rough_fix, { m: Math.round(metres), tol: Math.round(TOLERANCE) });
    offerPhotoPosition();
    moveTo(lon, lat);
  }

  async function notLocated() {
    $("where").textContent = T.no_position;
    offerPhotoPosition();
    if (map) return;
    // Start the pin in the middle of the district, for the inspector to drag it; the
    // district's outline is kept for a phone that has no network either.
    try {
      let streets = null;
      try {
        streets = await (await api("/api/v1/jurisdictions?level=street&limit=1")).json();
        Store.keep("street", streets).catch(() => {});
      } catch (err) {
        streets = (await Store.kept("street"))?.value;
        if (!streets) throw err;
      }
      const bounds = L.geoJSON(streets).getBounds();
      const middle = bounds.getCenter();
      if (!map) ensureMap(middle.lat, middle.lng, 14);
      map.fitBounds(bounds);
    } catch (err) {
      say(SW.explain(err), "error");
    }
  }

  // When the phone has no fix, or one worse than the tolerance, and the chosen photo says
  // where it was taken: offer that place.
  let photoAt = null;
  function offerPhotoPosition() {
    const poor = state.fix === null || state.fix > TOLERANCE;
    $("photo-position").hidden = !(photoAt && poor && !state.manual);
  }

  function usePhotoPosition() {
    if (!photoAt) return;
    state.manual = true;
    if (state.watch !== null) navigator.geolocation.clearWatch(state.watch);
    ensureMap(photoAt.lat, photoAt.lon, 18);
    pin.setLatLng([photoAt.lat, photoAt.lon]);
    if (accuracy) accuracy.remove();
    map.setView([photoAt.lat, photoAt.lon], 18);
    $("rough").hidden = true;
    $("photo-position").hidden = true;
    $("where").textContent = fmt(T.photo_position, { lat: photoAt.lat.toFixed(6),
                                                     lon: photoAt.lon.toFixed(6) });
    moveTo(photoAt.lon, photoAt.lat);
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
    let nearby;
    try {
      nearby = await (await api(`/api/v1/field/nearby?${query}`)).json();
      Store.keep("catalog", nearby.categories).catch(() => {});
    } catch (err) {
      if (!SW.retryable(err)) throw err;
      // Offline: the whole catalog as last read, not ordered for a site (the server still
      // assigns the report by its position when it arrives).
      const kept = (await Store.kept("catalog"))?.value;
      if (!kept) throw err;
      $("site").textContent = T.offline_categories;
      state.nearbyAt = null;  // ask again once the network is back
      fillCategories(kept.map((c) => ({ ...c, relevant: false })));
      return;
    }
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
    // The nearest site's categories first, then the campaign's five rectification actions,
    // then any category filed under none of them.
    const groups = [["relevant", T.relevant], ...ACTIONS.map((a) => [a, T[`act_${a}`]]),
                    ["other", T.other_layers]].map(([key, label]) => [key, el("optgroup", { label })]);
    const byKey = Object.fromEntries(groups);
    for (const c of categories) {
      const key = c.relevant ? "relevant" : byKey[c.campaign_action] ? c.campaign_action : "other";
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
    // Outlines are bearings, not controls: out of the Tab order between the map and the pin.
    sites.eachLayer((group) => group.eachLayer?.((outline) => {
      outline.getElement?.()?.setAttribute("tabindex", "-1");
    }));
  }

  // ---- the outbox ---------------------------------------------------------------------------

  function newKey() {
    // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function categoryName(code) {
    const option = [...$("category").options].find((o) => o.value === code);
    return option ? option.textContent : code;
  }

  async function submit(event) {
    event.preventDefault();
    const category = $("category").value;
    const note = $("note").value.trim();
    const missing = [state.lon === null && T.need_position, !category && T.need_category,
                     !note && T.need_note].filter(Boolean);
    if (missing.length) { say(missing.join("；"), "error"); return; }
    $("submit").disabled = true;
    try {
      const chosen = $("photo").files[0] || null;
      let photo = editing ? editing.photo : null;
      if (chosen) {
        say(T.resizing);
        photo = await Photos.shrink(chosen);
      }
      const item = {
        key: newKey(), kind: "report", created: Date.now(), token: SW.token(),
        body: { category, lon: +state.lon.toFixed(7), lat: +state.lat.toFixed(7), crs: "wgs84",
                description: note, source: "self_inspection" },
        label: `${categoryName(category)} · ${note.slice(0, 40)}`,
        photo, ref: editing && !chosen ? editing.ref : null, state: "queued", error: null,
      };
      await Store.put(item);  // on the phone before anything is sent
      if (editing) await Store.remove(editing.key);
      editing = null;
      justMade = item.key;
      clearForm();
      say(navigator.onLine ? "" : T.saved_offline, navigator.onLine ? "" : "ok");
      await flush();
    } catch (err) {
      say(SW.explain(err), "error");
    } finally {
      $("submit").disabled = false;
    }
  }

  function clearForm() {
    form.reset();
    $("photo-name").textContent = "";
    photoAt = null;
    offerPhotoPosition();
  }

  // One report's request (its photo is uploaded by the outbox): stored, and its result shown
  // when it is the one just made here, else listed as delivered.
  async function sendReport(item) {
    const response = await api("/api/v1/issues", {
      method: "POST", bearer: item.token, headers: { "Idempotency-Key": item.key },
      json: { ...item.body, photos: item.ref ? [item.ref] : [] } });
    const issue = await response.json();
    const replayed = response.headers.get("Idempotent-Replayed") === "true";
    if (item.key === justMade) await showResult(issue, replayed);
    else sent.push({ id: issue.properties.id, unit: issue.properties.lead_unit_name || T.unassigned });
  }

  const flush = SW.outbox("report", { send: sendReport, render: (item) => render(item),
                                      onProgress: (fraction) => progress(fraction) });

  function progress(fraction) {
    $("progress-box").hidden = fraction === null;
    if (fraction === null) return;
    const percent = Math.round(fraction * 100);
    $("progress").value = percent;
    $("progress-label").textContent = fmt(T.progress, { p: percent });
  }

  // The queue as the phone holds it, and what this visit delivered from it.
  async function render(current) {
    const items = await Store.queued("report");
    const shown = items.map((item) => (current && item.key === current.key ? current : item));
    $("queue").hidden = !shown.length && !sent.length;
    $("queue-title").textContent = fmt(T.queue_title, { n: shown.length });
    $("send-now").hidden = !shown.some((i) => i.state !== "refused");
    $("queue-items").replaceChildren(
      ...shown.map(queuedItem),
      ...sent.map((s) => el("li", { class: "sent" }, fmt(T.sent_item, s))));
  }

  function queuedItem(item) {
    const li = el("li", { class: `queued ${item.state}`, "data-key": item.key },
      el("span", { class: "what", id: `q-${item.key}` }, item.label),
      el("span", { class: "meta" }, ` · ${when(new Date(item.created).toISOString())}`),
      el("p", { class: "state" }, SW.stateText(item)));
    if (item.state === "refused") {
      const fix = el("button", { type: "button", class: "fix",
                                 "aria-describedby": `q-${item.key}` }, T.fix);
      fix.addEventListener("click", () => fixItem(item));
      li.append(fix);
    }
    if (item.state !== "sending") {
      const drop = el("button", { type: "button", class: "secondary discard",
                                  "aria-describedby": `q-${item.key}` }, T.discard);
      drop.addEventListener("click", async () => {
        await Store.remove(item.key);
        await render();
        focusQueue();
      });
      li.append(drop);
    }
    return li;
  }

  // A refused report back in the form, as it was, to be corrected and sent as a new report
  // (a new key: the server already said no to the old one).
  function fixItem(item) {
    editing = item;
    $("result").hidden = true;
    form.hidden = false;
    const { category, description, lon, lat } = item.body;
    state.manual = true;
    if (state.watch !== null) navigator.geolocation.clearWatch(state.watch);
    ensureMap(lat, lon, 18);
    pin.setLatLng([lat, lon]);
    map.setView([lat, lon], 18);
    moveTo(lon, lat);
    $("note").value = description;
    if ([...$("category").options].some((o) => o.value === category)) $("category").value = category;
    $("photo-name").textContent = item.photo ? item.photo.name || T.photo : "";
    say(fmt(T.q_refused, { why: item.error || "" }), "error");
    form.scrollIntoView({ block: "start" });
    $("category").focus({ preventScroll: true });
  }

  // After the queue is redrawn under a button the user pressed, focus goes to its heading
  // rather than to nowhere.
  function focusQueue() {
    if (!$("queue").hidden) $("queue-title").focus();
  }

  async function showResult(issue, replayed) {
    const p = issue.properties;
    form.hidden = true;
    $("result").hidden = false;
    window.scrollTo(0, 0);
    $("result-title").focus();
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
    clearForm();
    $("result").hidden = true;
    form.hidden = false;
    $("category").focus();
  }

  // ---- start --------------------------------------------------------------------------------

  let started = false;
  function start() {
    if (started) return;
    started = true;
    form.hidden = false;
    form.addEventListener("submit", submit);
    $("photo").addEventListener("change", async () => {
      const file = $("photo").files[0];
      $("photo-name").textContent = file?.name || "";
      photoAt = file ? await Photos.position(file) : null;
      offerPhotoPosition();
    });
    $("photo-position").addEventListener("click", usePhotoPosition);
    $("pin-here").addEventListener("click", () => {
      pin.setLatLng(map.getCenter());
      pin.fire("dragend");
    });
    $("send-now").addEventListener("click", flush);
    $("again").addEventListener("click", again);
    window.addEventListener("online", () => {
      // The categories were laid out offline, not for the nearest site: ask again.
      if (state.lon !== null && state.nearbyAt === null) moveTo(state.lon, state.lat);
    });
    flush();  // what an earlier visit left queued
    locate();
  }

  SW.signIn(start);
})();
