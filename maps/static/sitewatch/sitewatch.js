/* sitewatch map pages: behaviour folium has no element for. Reads window.SW (maps/page.py).
 * Every value shown comes from data, so it is set as text (textContent), never as HTML. */
(function () {
  "use strict";

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function table(rows) {
    var t = el("table");
    rows.forEach(function (r) {
      var tr = el("tr");
      tr.appendChild(el("th", r[0], {style: "text-align:left;padding-right:6px"}));
      tr.appendChild(el("td", r[1]));
      t.appendChild(tr);
    });
    return t;
  }

  /* GCJ-02 offset at a point, bilinear on the lattice geo.crs computed server-side. */
  function offset(lat, lng) {
    var s = SW.shift;
    if (!s) return [0, 0];
    var fx = Math.min(Math.max((lng - s.lon0) / s.step, 0), s.nx - 1.000001);
    var fy = Math.min(Math.max((lat - s.lat0) / s.step, 0), s.ny - 1.000001);
    var i = Math.floor(fx), j = Math.floor(fy), u = fx - i, v = fy - j;
    function at(a) {
      var k = j * s.nx + i;
      return a[k] * (1 - u) * (1 - v) + a[k + 1] * u * (1 - v) +
             a[k + s.nx] * (1 - u) * v + a[k + s.nx + 1] * u * v;
    }
    return [at(s.dlat), at(s.dlon)];
  }

  function moved(ll, on) {
    if (!on) return L.latLng(ll.lat, ll.lng);
    var d = offset(ll.lat, ll.lng);
    return L.latLng(ll.lat + d[0], ll.lng + d[1]);
  }

  function deep(lls, on) {
    return Array.isArray(lls) ? lls.map(function (x) { return deep(x, on); }) : moved(lls, on);
  }

  /* Shift (on) or restore (off) a layer and everything inside it; originals are kept. */
  function applyShift(layer, on) {
    if (layer.options && layer.options.swTileUrl) {
      layer.setUrl(layer.options.swTileUrl + (on ? "&crs=gcj02" : ""));
      return;
    }
    if (layer instanceof L.LayerGroup) {
      layer.eachLayer(function (l) { applyShift(l, on); });
      return;
    }
    if (layer.setLatLngs && layer.getLatLngs && !(layer instanceof L.GridLayer)) {
      if (!layer._swOrig) layer._swOrig = layer.getLatLngs();
      layer.setLatLngs(deep(layer._swOrig, on));
    } else if (layer.setLatLng && layer.getLatLng) {
      if (!layer._swOrig) layer._swOrig = layer.getLatLng();
      layer.setLatLng(moved(layer._swOrig, on));
    } else if (layer._latlngs && layer.redraw) {  /* heat layer */
      if (!layer._swOrig) layer._swOrig = layer._latlngs.slice();
      layer.setLatLngs(layer._swOrig.map(function (p) {
        var m = moved(L.latLng(p[0], p[1]), on);
        return [m.lat, m.lng, p[2]];
      }));
    }
  }

  function overlays(control) {
    return Object.keys(control.overlays).map(function (k) { return control.overlays[k]; });
  }

  function cellSwitcher(map) {
    var group = SW.cells && window[SW.cells.group];
    if (!group) return;
    var byRes = SW.cells.layers;
    function pick() {
      var z = map.getZoom(), want = z <= 13 ? "8" : z <= 15 ? "9" : "10";
      Object.keys(byRes).forEach(function (res) {
        var layer = window[byRes[res]];
        if (!layer) return;
        if (res === want && !group.hasLayer(layer)) group.addLayer(layer);
        if (res !== want && group.hasLayer(layer)) group.removeLayer(layer);
      });
      window.swCellRes = want;
    }
    map.on("zoomend", pick);
    pick();
  }

  function issuePopups(map) {
    var tiles = SW.tiles && window[SW.tiles];
    if (!tiles) return;
    var t = SW.t;
    tiles.on("click", function (e) {
      var p = e.layer.properties || {};
      var light = p.light ? t["light_" + p.light] : "";
      var body = table([[t.id, p.id], [t.category, (SW.categories || {})[p.category] || p.category],
                        [t.status, (t[p.status] || p.status) + (light ? " · " + light : "")],
                        [t.reported_at, p.reported_at], [t.deadline, p.deadline],
                        [t.lead_unit, p.lead_unit]]);
      L.popup().setLatLng(e.latlng).setContent(body).openOn(map);
    });
  }

  function ordersPanel() {
    var box = document.getElementById("sw-orders");
    if (!box || !SW.unit) return;
    var t = SW.t, key = "sitewatch.token";
    var list = el("div", null, {id: "sw-orders-list"});
    var input = el("input", null, {type: "password", id: "sw-token", placeholder: t.orders_token,
                                   style: "width:100%;box-sizing:border-box"});
    var save = el("button", t.orders_save, {type: "button"});
    var forget = el("button", t.orders_forget, {type: "button"});
    box.appendChild(el("b", t.orders));
    box.appendChild(list);
    function load() {
      list.textContent = "";
      var token = window.localStorage.getItem(key);
      if (!token) { list.appendChild(el("div", t.orders_token)); return; }
      fetch("/api/v1/orders?unit=" + encodeURIComponent(SW.unit),
            {headers: {Authorization: "Bearer " + token}})
        .then(function (r) {
          if (r.status === 401 || r.status === 403) throw new Error(t.orders_denied);
          if (!r.ok) throw new Error(t.orders_error);
          return r.json();
        })
        .then(function (body) {
          var mine = body.orders.filter(function (o) { return o.unit === SW.unit; });
          if (!mine.length) list.appendChild(el("div", t.orders_none));
          mine.forEach(function (o) {
            list.appendChild(el("div", o.code + " · " + t.issued_at + " " +
              o.issued_at.slice(0, 16).replace("T", " ") + " · " + t.still_open + " " +
              o.still_open + " · " + t.overdue_now + " " + o.overdue_now + " · " +
              (o.acknowledged_at ? t.acknowledged : t.not_acknowledged),
              {"class": "sw-order"}));
          });
        })
        .catch(function (err) { list.appendChild(el("div", err.message)); });
    }
    save.addEventListener("click", function () {
      if (input.value) window.localStorage.setItem(key, input.value.trim());
      input.value = "";
      load();
    });
    forget.addEventListener("click", function () {
      window.localStorage.removeItem(key);
      load();
    });
    var form = el("form");
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    form.appendChild(input);
    form.appendChild(save);
    form.appendChild(forget);
    box.appendChild(form);
    load();
  }

  /* folium's scripts run at the end of the body, before DOMContentLoaded. */
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.SW) return;
    var map = window[SW.map];
    var control = SW.control && window[SW.control + "_layers"];
    window.swMap = map;
    window.swShifted = false;
    if (control) {
      map.on("baselayerchange", function (e) {
        var on = !!(e.layer.options && e.layer.options.swGcj);
        if (on === window.swShifted) return;
        window.swShifted = on;
        overlays(control).forEach(function (l) { applyShift(l, on); });
      });
    }
    cellSwitcher(map);
    issuePopups(map);
    ordersPanel();
    window.swReadyDone = true;
  });
})();
