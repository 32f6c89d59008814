// /units/{unit}/work: the unit's assigned issues, nearest deadline first, each rectified with an
// "after" photo; and its supervision orders, signed for and opened for printing.
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

  async function loadIssues() {
    const issues = await allAssigned();
    $("issues").replaceChildren(...issues.map(card));
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
    const file = el("input", { type: "file", accept: "image/jpeg,image/png", class: "file",
                               capture: "environment", id: `after-${p.id}` });
    const chosen = el("span", { class: "hint" });
    file.addEventListener("change", () => { chosen.textContent = file.files[0]?.name || ""; });
    const button = el("button", { type: "button", class: "rectify" }, T.rectify);
    const item = el("li", { class: "card issue", "data-id": p.id, "data-version": p.version },
      el("div", { class: "issue-head" },
         el("span", { class: `light ${light}` }, T[light]),
         el("strong", {}, category),
         el("span", { class: "issue-id" }, p.id)),
      el("p", { class: "desc" }, p.description),
      place ? el("p", { class: "meta" }, place) : null,
      el("p", { class: "meta" }, `${T.deadline}: ${when(p.deadline)}`),
      el("p", { class: "meta" }, `${T.reported}: ${when(p.reported_at)}`),
      // geo: (RFC 5870, WGS84) opens the phone's own map app at the spot.
      el("a", { href: `geo:${lat},${lon}?q=${lat},${lon}`, class: "maplink" }, T.map),
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

  async function rectify(item, file, button) {
    if (!file.files[0]) { say(T.need_photo, "error"); return; }
    const id = item.dataset.id;
    button.disabled = true;
    say(T.rectifying);
    try {
      const ref = await SW.upload(file.files[0]);
      await api(`/api/v1/issues/${encodeURIComponent(id)}/transitions`, {
        method: "POST",
        json: { action: "rectify", version: Number(item.dataset.version), evidence: [ref] } });
      item.remove();
      counted();
      say(T.rectified, "ok");
    } catch (err) {
      if (err instanceof SW.ApiError && err.status === 409) await reloadOne(item, id);
      else say(SW.explain(err), "error");
    } finally {
      button.disabled = false;
    }
  }

  // Someone else changed the issue since it was listed: read it again; if it still waits for
  // rectification, keep the card (and the chosen photo) with the new version.
  async function reloadOne(item, id) {
    try {
      const fresh = await (await api(`/api/v1/issues/${encodeURIComponent(id)}`)).json();
      if (fresh.properties.status === "assigned") {
        item.dataset.version = fresh.properties.version;
        const light = fresh.properties.traffic_light || "green";
        item.querySelector(".light").className = `light ${light}`;
        item.querySelector(".light").textContent = T[light];
      } else {
        item.remove();
        counted();
      }
      say(T.stale, "error");
    } catch (err) {
      say(SW.explain(err), "error");
    }
  }

  // ---- orders -------------------------------------------------------------------------------

  async function loadOrders() {
    const listed = await (await api(`/api/v1/orders?${new URLSearchParams({ unit, limit: 100 })}`)).json();
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
    try {
      const found = await (await api(`/api/v1/units/${encodeURIComponent(unit)}`)).json();
      $("unit-name").textContent = found.name;
      await Promise.all([loadIssues(), loadOrders()]);
      $("work").hidden = false;
      say("");
    } catch (err) {
      say(SW.explain(err), "error");
    }
  }

  SW.signIn(start);
})();
