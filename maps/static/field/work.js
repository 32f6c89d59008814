// /units/{unit}/work: the unit's assigned issues, nearest deadline first, each rectified with an
// "after" photo; and its supervision orders, signed for and opened for printing. Offline, the
// last list read is shown with its age, and a rectification waits in the phone's outbox
// (store.js) with its shrunk photo until the connection returns.
"use strict";

(() => {
  const { T, api, el, fmt, say, when } = SW;
  const unit = document.querySelector("main").dataset.unit;
  const $ = (id) => document.getElementById(id);

  // ---- issues -------------------------------------------------------------------------------

  async function allAssigned() {
    const issues = [];
    let next = `/api/v1/issues?${new URLSearchParams({ unit, status: "assigned", limit: 1000 })}`;
    while (next) {
      const page = await (await api(next)).json();
      issues.push(...page.features);
      const link = page.links.find((l) => l.rel === "next");
      next = link ? SW.local(link.href) : null;
    }
    // Nearest deadline first; an issue without a deadline last.
    const due = (f) => (f.properties.deadline ? Date.parse(f.properties.deadline) : Infinity);
    return issues.sort((a, b) => due(a) - due(b) || a.id.localeCompare(b.id));
  }

  // Fresh from the server and kept; offline, what was kept, with its age shown. Returns
  // whether the answer came from the server.
  async function fresh(name, read) {
    try {
      const value = await read();
      Store.keep(`${name}:${unit}`, value).catch(() => {});
      return { value, live: true };
    } catch (err) {
      const kept = SW.retryable(err) ? await Store.kept(`${name}:${unit}`) : null;
      if (!kept) throw err;
      $("list-age").hidden = false;
      $("list-age").textContent = fmt(T.list_age, { age: SW.age(kept.at) });
      return { value: kept.value, live: false };
    }
  }

  async function loadIssues() {
    const { value: issues } = await fresh("issues", allAssigned);
    // Those rectified on this phone and not yet sent are not to be done again.
    const waiting = new Set((await Store.queued("rectify")).map((i) => i.issue));
    $("issues").replaceChildren(...issues.filter((f) => !waiting.has(f.id)).map(card));
    counted();
  }

  function counted() {
    const n = $("issues").children.length;
    $("count").textContent = `(${n})`;
    $("none-open").hidden = n > 0;
  }

  function card(issue) {
    const p = issue.properties;
    const [lon, lat] = issue.geometry.coordinates;
    const light = p.traffic_light || "green";
    const category = SW.LANG === "en" ? p.category_en : p.category_zh;
    const place = [p.site_name, p.jurisdiction_name].filter(Boolean).join(" · ");
    // The same buttons and links on every card: each names its card's issue to a reader.
    const about = `cat-${p.id} id-${p.id}`;
    const file = el("input", { type: "file", accept: "image/jpeg,image/png", class: "file",
                               capture: "environment", id: `after-${p.id}`,
                               "aria-describedby": about });
    const chosen = el("span", { class: "hint" });
    file.addEventListener("change", () => { chosen.textContent = file.files[0]?.name || ""; });
    const button = el("button", { type: "button", class: "rectify", "aria-describedby": about },
                      T.rectify);
    const item = el("li", { class: "card issue", "data-id": p.id, "data-version": p.version },
      el("div", { class: "issue-head" },
         el("span", { class: `light ${light}` }, T[light]),
         el("strong", { id: `cat-${p.id}` }, category),
         el("span", { class: "issue-id", id: `id-${p.id}` }, p.id)),
      el("p", { class: "desc" }, p.description),
      place ? el("p", { class: "meta" }, place) : null,
      el("p", { class: "meta" }, `${T.deadline}: ${when(p.deadline)}`),
      el("p", { class: "meta" }, `${T.reported}: ${when(p.reported_at)}`),
      // geo: (RFC 5870, WGS84) opens the phone's own map app at the spot.
      el("a", { href: `geo:${lat},${lon}?q=${lat},${lon}`, class: "maplink",
                "aria-describedby": about }, T.map),
      file, el("label", { for: `after-${p.id}`, class: "pick" }, T.after_photo), chosen,
      el("br"), button);
    const ref = p.photos.find((r) => r.startsWith("sha256:"));
    if (ref) {
      const img = el("img", { class: "photo", alt: T.photo });
      item.querySelector(".desc").after(img);
      SW.photoUrl(ref).then((url) => { img.src = url; })
        .catch(() => { img.replaceWith(el("p", { class: "meta" }, T.no_photo)); });
    }
    button.addEventListener("click", () => rectify(item, file, button));
    return item;
  }

  // The rectification goes to the phone's outbox first (with the photo, shrunk), then to the
  // server as soon as it can; the card leaves the list at once.
  async function rectify(card, file, button) {
    if (!file.files[0]) { say(T.need_photo, "error"); return; }
    button.disabled = true;
    say(T.rectifying);
    try {
      const photo = await Photos.shrink(file.files[0]);
      const id = card.dataset.id;
      await Store.put({
        key: crypto.getRandomValues(new Uint32Array(4)).join("-"), kind: "rectify",
        created: Date.now(), token: SW.token(), issue: id, version: Number(card.dataset.version),
        label: fmt(T.rectify_item, { id }), photo, ref: null, state: "queued", error: null,
        card: { id, category: card.querySelector("strong").textContent } });
      const next = card.nextElementSibling?.querySelector("button.rectify");
      card.remove();
      counted();
      if (next) next.focus();
      say(navigator.onLine ? T.rectifying : T.rectify_saved, navigator.onLine ? "" : "ok");
      await flush();
    } catch (err) {
      say(SW.explain(err), "error");
    } finally {
      button.disabled = false;
    }
  }

  // One rectification's request (its photo is uploaded by the outbox).
  async function sendRectification(item) {
    await api(`/api/v1/issues/${encodeURIComponent(item.issue)}/transitions`, {
      method: "POST", bearer: item.token,
      json: { action: "rectify", version: item.version, evidence: [item.ref] } });
    say(T.rectified, "ok");
  }

  const flush = SW.outbox("rectify", {
    send: sendRectification, render: (item) => render(item),
    conflict: (item, err) => (err instanceof SW.ApiError && err.status === 409
      ? stale(item) : Promise.resolve(null)) });

  // The issue changed since it was listed (409). Read it again: already rectified (this
  // phone's own send whose answer was lost, or someone else's) means done; still waiting for
  // rectification, the item is refused with the reason, and "fix" sends it at the new version.
  async function stale(item) {
    try {
      const now = (await (await api(`/api/v1/issues/${encodeURIComponent(item.issue)}`, {
        bearer: item.token })).json()).properties;
      if (now.status !== "assigned") { await Store.remove(item.key); return true; }
      item.version = now.version;
      item.state = "refused";
      item.error = T.stale;
    } catch (err) {
      item.state = SW.retryable(err) ? "waiting" : "refused";
      item.error = SW.explain(err);
    }
    await Store.put(item);
    return item.state === "refused";
  }

  function focusQueue() {
    if (!$("queue").hidden) $("queue-title").focus();
  }

  async function render(current) {
    const items = await Store.queued("rectify");
    const shown = items.map((item) => (current && item.key === current.key ? current : item));
    $("queue").hidden = !shown.length;
    $("queue-title").textContent = fmt(T.queue_title, { n: shown.length });
    $("send-now").hidden = !shown.some((i) => i.state !== "refused");
    $("queue-items").replaceChildren(...shown.map((item) => {
      const li = el("li", { class: `queued ${item.state}`, "data-key": item.key },
        el("span", { class: "what", id: `q-${item.key}` }, `${item.label} · ${item.card.category}`),
        el("p", { class: "state" }, SW.stateText(item)));
      if (item.state === "refused") {
        const fix = el("button", { type: "button", class: "fix",
                                   "aria-describedby": `q-${item.key}` }, T.fix);
        fix.addEventListener("click", async () => {
          await Store.put({ ...item, state: "queued", error: null });
          await flush();
          focusQueue();
        });
        li.append(fix);
      }
      if (item.state !== "sending") {
        const drop = el("button", { type: "button", class: "secondary discard",
                                    "aria-describedby": `q-${item.key}` }, T.discard);
        drop.addEventListener("click", async () => {
          await Store.remove(item.key);
          await render();
          focusQueue();
          loadIssues().catch(() => {});  // the card comes back to the list
        });
        li.append(drop);
      }
      return li;
    }));
  }

  // ---- orders -------------------------------------------------------------------------------

  async function loadOrders() {
    const { value: listed } = await fresh("orders", async () => (await api(
      `/api/v1/orders?${new URLSearchParams({ unit, limit: 100 })}`)).json());
    $("orders").replaceChildren(...listed.orders.map(orderCard));
    $("no-orders").hidden = listed.orders.length > 0;
  }

  function orderCard(order) {
    const item = el("li", { class: "card order", "data-code": order.code });
    fillOrder(item, order);
    return item;
  }

  function fillOrder(item, order) {
    const ack = order.acknowledged_at
      ? el("p", { class: "meta acknowledged" }, fmt(T.acknowledged, { at: when(order.acknowledged_at) }))
      : el("button", { type: "button", class: "acknowledge" }, T.acknowledge);
    const open = el("button", { type: "button", class: "secondary print" }, T.print);
    item.replaceChildren(
      el("div", { class: "issue-head" },
         el("strong", {}, order.kind === "escalation" ? T.escalation : T.order),
         el("span", { class: "issue-id" }, order.code)),
      el("p", { class: "meta" }, `${T.issued}: ${when(order.issued_at)} · ${order.issued_by}`),
      el("p", { class: "meta" }, fmt(T.open_count, { n: order.still_open, total: order.issues }),
         order.overdue_now ? el("span", { class: "light red" },
                                fmt(T.overdue_count, { n: order.overdue_now })) : null),
      ack, open);
    if (!order.acknowledged_at) ack.addEventListener("click", () => acknowledge(item, order, ack));
    open.addEventListener("click", () => openPrintable(order.code));
  }

  async function acknowledge(item, order, button) {
    button.disabled = true;
    try {
      const signed = await (await api(
        `/api/v1/orders/${encodeURIComponent(order.code)}/acknowledge`, { method: "POST" })).json();
      fillOrder(item, { ...order, ...signed });
    } catch (err) {
      button.disabled = false;
      say(SW.explain(err), "error");
    }
  }

  // The printable page needs the token too: fetch it and open it from a blob URL. The window
  // opens on the tap itself, as phones block windows opened after an await.
  async function openPrintable(code) {
    const win = window.open("", "_blank");
    try {
      const query = new URLSearchParams({ lang: SW.LANG });
      const response = await api(`/api/v1/orders/${encodeURIComponent(code)}/print?${query}`);
      const html = await response.blob();
      const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
      if (win) win.location.href = url;
      else location.href = url;
    } catch (err) {
      if (win) win.close();
      say(SW.explain(err), "error");
    }
  }

  // ---- start --------------------------------------------------------------------------------

  async function start() {
    say(T.loading);
    $("send-now").addEventListener("click", flush);
    try {
      const { value: found } = await fresh("unit", async () => (await api(
        `/api/v1/units/${encodeURIComponent(unit)}`)).json());
      $("unit-name").textContent = found.name;
      await Promise.all([loadIssues(), loadOrders()]);
      $("work").hidden = false;
      say("");
    } catch (err) {
      say(SW.explain(err), "error");
    }
    await flush();
  }

  SW.signIn(start);
})();
