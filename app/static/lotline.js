// Lotline's only script, and every page works without it (the server checks everything again).
//
// Phones: the signed-in menu folds behind a "Menu" button; each table cell gets its column's name (data-label)
// so tables read as cards on a narrow screen; the label sheet gets a print button; the site form can fill in
// the phone's position.
//
// Product-bound fields: on "Create a lot", the unit, commodity and variety come from the chosen product.
// When the product changes, its values replace the old product's; the fields the product defines are made
// read-only, the others stay editable (what was typed is kept unless it was the old product's default).
"use strict";

function bindProductFields(select) {
  const names = ["unit", "commodity", "variety"];
  let previous = null;
  const apply = () => {
    const option = select.selectedOptions[0];
    if (!option) return;
    for (const name of names) {
      const input = document.getElementById("kde-" + name);
      if (!input) continue;
      const value = option.dataset[name] || "";
      const bound = name === "unit" || (name + "Bound") in option.dataset;
      const untouched = previous === null ? input.value === "" : input.value === (previous.dataset[name] || "");
      if (bound || input.readOnly || untouched) input.value = value;
      input.readOnly = bound;
      if (bound) input.setAttribute("aria-readonly", "true");
      else input.removeAttribute("aria-readonly");
    }
    previous = option;
  };
  select.addEventListener("change", apply);
  apply();
}

document.documentElement.classList.add("js");

function bindMenu(button) {
  const nav = document.getElementById(button.getAttribute("aria-controls"));
  if (!nav) return;
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
}

// Copies each column heading into its cells as data-label, unless the template already set one.
function labelCells(table) {
  const heads = table.tHead ? [...table.tHead.rows[0].cells].map((th) => th.textContent.trim()) : [];
  if (!heads.length) return;
  for (const body of table.tBodies) {
    for (const row of body.rows) {
      let column = 0;
      for (const cell of row.cells) {
        if (!cell.hasAttribute("data-label") && cell.colSpan === 1) cell.setAttribute("data-label", heads[column] || "");
        column += cell.colSpan;
      }
    }
  }
}

function bindPrint(button) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}

// "Use my location": the phone's position into the latitude and longitude fields. Typing them still works.
function bindLocate(button) {
  const status = document.getElementById(button.dataset.status);
  const lat = document.getElementById(button.dataset.latitude);
  const lon = document.getElementById(button.dataset.longitude);
  const say = (text) => { if (status) status.textContent = text; };
  if (!status || !lat || !lon) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    if (!("geolocation" in navigator)) {
      say(button.dataset.unavailable);
      return;
    }
    say(button.dataset.asking);
    navigator.geolocation.getCurrentPosition(
      (position) => {
        lat.value = position.coords.latitude.toFixed(5);
        lon.value = position.coords.longitude.toFixed(5);
        say(button.dataset.done.replace("{accuracy}", Math.round(position.coords.accuracy)));
      },
      (error) => say(error.code === error.PERMISSION_DENIED ? button.dataset.denied : button.dataset.unavailable),
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 },
    );
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-product-fields]")) bindProductFields(select);
  for (const button of document.querySelectorAll(".menu-toggle[aria-controls]")) bindMenu(button);
  for (const table of document.querySelectorAll("main table")) labelCells(table);
  for (const button of document.querySelectorAll("button[data-print]")) bindPrint(button);
  for (const button of document.querySelectorAll("button[data-locate]")) bindLocate(button);
});
