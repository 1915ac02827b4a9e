// The regulator's supervision map: Leaflet over the country outlines served with the app (no tile server),
// each layer of /admin/map/layers.json drawn from its GeoJSON and switched on and off by the checkboxes the
// page lists. Popups are built from DOM nodes (text, never HTML), so no field can inject markup.
"use strict";

(function () {
  const element = document.getElementById("supervision-map");
  if (!element || typeof L === "undefined") return;
  const status = document.getElementById("map-status");
  const say = (text) => { if (status) status.textContent = text; };

  const map = L.map(element, { zoomSnap: 0.25, worldCopyJump: true, attributionControl: true });
  map.attributionControl.setPrefix(false);
  map.setView([20, 0], 2);
  map.createPane("outlines").style.zIndex = 200;
  map.createPane("flows").style.zIndex = 390;
  map.createPane("sites").style.zIndex = 420;

  function node(tag, text, className) {
    const el = document.createElement(tag);
    if (text !== undefined && text !== null) el.textContent = String(text);
    if (className) el.className = className;
    return el;
  }

  function popup(properties) {
    const box = node("div", null, "map-popup");
    box.appendChild(node("h3", properties.title));
    const lines = (properties.lines || []).filter((line) => line);
    if (lines.length) {
      const list = node("ul");
      for (const line of lines) list.appendChild(node("li", line));
      box.appendChild(list);
    }
    for (const link of properties.links || []) {
      const p = node("p");
      const a = node("a", link.label, "map-link");
      a.href = link.href;
      p.appendChild(a);
      box.appendChild(p);
    }
    return box;
  }

  function style(layer, feature) {
    const colour = (feature.properties && feature.properties.colour) || layer.colour;
    if (layer.shape === "flow") {
      const moving = feature.properties && feature.properties.in_transit;
      return { color: colour, weight: 2 + Math.min(4, feature.properties.count || 1), opacity: 0.8, dashArray: moving ? "6 6" : null };
    }
    if (layer.shape === "ring") {
      // each ring layer its own radius, so several at one site stay visible as concentric rings
      return { radius: 11 + 5 * (layer.ringIndex || 0), color: colour, weight: 4, opacity: 0.95, fillOpacity: 0 };
    }
    return { radius: 7, color: "#ffffff", weight: 2, fillColor: colour, fillOpacity: 0.95 };
  }

  function draw(layer) {
    let pane = layer.shape === "flow" ? "flows" : "sites";
    if (layer.shape === "ring") {
      // A pane per ring layer, the smaller rings above the larger and every ring below the site dots: a tap on
      // a dot opens the site, a tap in a ring (outside the smaller ones) opens that layer's point.
      pane = "ring-" + layer.key;
      map.createPane(pane).style.zIndex = String(410 - layer.ringIndex);
    }
    return L.geoJSON(layer.data, {
      pane: pane,
      style: (feature) => style(layer, feature),
      pointToLayer: (feature, latlng) => L.circleMarker(latlng, Object.assign({ pane: pane }, style(layer, feature))),
      onEachFeature: (feature, drawn) => {
        drawn.bindPopup(() => popup(feature.properties), { maxWidth: 300 });
        drawn.bindTooltip(feature.properties.title, { sticky: layer.shape === "flow" });
        if (drawn.getElement && drawn.getElement()) drawn.getElement().setAttribute("data-layer", layer.key);
        drawn.on("add", () => {
          const el = drawn.getElement && drawn.getElement();
          if (el) {
            el.setAttribute("data-layer", layer.key);
            el.setAttribute("role", "img");
            el.setAttribute("aria-label", feature.properties.title);
          }
        });
      },
    });
  }

  for (const swatch of document.querySelectorAll(".map-layers .swatch")) {
    const colour = swatch.getAttribute("data-colour");
    if (swatch.classList.contains("ring")) swatch.style.borderColor = colour;
    else swatch.style.background = colour;
  }

  const outlines = fetch(element.getAttribute("data-outlines-url"), { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((data) => {
      if (!data) return;
      L.geoJSON(data, {
        pane: "outlines",
        interactive: false,
        style: { color: "#8d9a8f", weight: 1, fillColor: "#f4f1e8", fillOpacity: 1 },
      }).addTo(map);
      map.attributionControl.addAttribution("Country outlines: Natural Earth, via world-atlas");
    });

  fetch(element.getAttribute("data-layers-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => {
      if (!r.ok) throw new Error("the layers did not load (HTTP " + r.status + ")");
      return r.json();
    })
    .then((result) => {
      let rings = 0;
      for (const layer of result.layers) {
        if (layer.shape === "ring") layer.ringIndex = rings++;
        const drawn = draw(layer);
        const box = document.getElementById("layer-" + layer.key);
        const count = document.querySelector('[data-count-for="' + layer.key + '"]');
        if (count) count.textContent = String(layer.count);
        if (!box) continue;
        const apply = () => (box.checked ? drawn.addTo(map) : drawn.remove());
        box.addEventListener("change", apply);
        apply();
      }
      if (result.bounds) map.fitBounds(result.bounds, { padding: [30, 30], maxZoom: 10 });
      element.setAttribute("data-ready", "true");
      say("");
      return outlines;
    })
    .catch((err) => say(String(err.message || err)));
})();
