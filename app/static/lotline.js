// Lotline's only script, and every page works without it (the server checks everything again).
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

document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-product-fields]")) bindProductFields(select);
});
