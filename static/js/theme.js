// Light or dark: the choice stored by the switch (localStorage "hrw-theme"), else the system's
// (prefers-color-scheme, which app.css also follows without JavaScript). Loaded in <head> without
// defer so the page never flashes the other theme; wires the top bar's switch once the DOM is there.
// Other scripts (charts.js) listen for "hrw:themechange" on document.
(function () {
  "use strict";
  var KEY = "hrw-theme";
  var root = document.documentElement;
  var system = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch (e) { return null; }
  }
  function current() { return stored() || (system && system.matches ? "dark" : "light"); }

  function apply(theme) {
    root.setAttribute("data-theme", theme);
    document.querySelectorAll("[data-theme-switch]").forEach(function (button) {
      var dark = theme === "dark";
      button.setAttribute("aria-pressed", dark ? "true" : "false");
      button.textContent = dark ? "Light theme" : "Dark theme";
      button.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
    });
    document.dispatchEvent(new CustomEvent("hrw:themechange", { detail: { theme: theme } }));
  }

  root.setAttribute("data-theme", current());
  window.hrw = Object.assign(window.hrw || {}, { theme: current });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-theme-switch]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var next = current() === "dark" ? "light" : "dark";
        try { window.localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
        apply(next);
      });
    });
    apply(current());
  });
  if (system && system.addEventListener) {
    system.addEventListener("change", function () { if (!stored()) { apply(current()); } });
  }
})();
