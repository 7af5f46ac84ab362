// "Print / Save as PDF" on the capacity review: the browser's print dialog makes the PDF.
// Before printing, every plotly chart is redrawn at the printed page's width (Plotly.relayout
// draws at once; Plotly.Plots.resize waits 100 ms, too late for the print snapshot) and in the
// light theme (paper is white); afterwards the screen size and theme come back. The page and its
// margins are set in static/css/capacity-print.css (@page: A4 landscape, 12 mm margins).
(function () {
  "use strict";
  // A4 landscape less 2 x 12 mm is 273 mm = 1031 CSS px; a little less, so rounding never clips.
  var PRINT_WIDTH = 1000;
  var saved = null;

  function charts() { return Array.prototype.slice.call(document.querySelectorAll(".chart.js-plotly-plot")); }
  function setTheme(theme) {
    document.documentElement.setAttribute("data-theme", theme);
    document.dispatchEvent(new CustomEvent("hrw:themechange", { detail: { theme: theme } }));
  }

  function beforePrint() {
    if (saved || typeof window.Plotly === "undefined") { return; }
    saved = { theme: document.documentElement.getAttribute("data-theme"), sizes: [] };
    if (saved.theme === "dark") { setTheme("light"); }  // charts.js redraws them in light colours
    charts().forEach(function (el) {
      var layout = el.layout || {};
      saved.sizes.push({ el: el, width: layout.width, height: layout.height });
      var height = el._fullLayout && el._fullLayout.height ? el._fullLayout.height : el.offsetHeight;
      window.Plotly.relayout(el, { width: PRINT_WIDTH, height: height });
    });
    document.documentElement.classList.add("is-printing");
  }

  function afterPrint() {
    if (!saved) { return; }
    var was = saved;
    saved = null;
    document.documentElement.classList.remove("is-printing");
    was.sizes.forEach(function (s) {
      if (!document.body.contains(s.el)) { return; }
      window.Plotly.relayout(s.el, { width: s.width === undefined ? null : s.width, height: s.height === undefined ? null : s.height });
      window.Plotly.Plots.resize(s.el);
    });
    if (was.theme === "dark") { setTheme("dark"); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    window.addEventListener("beforeprint", beforePrint);
    window.addEventListener("afterprint", afterPrint);
    // Browsers without before/afterprint (older Safari) tell through the print media query.
    if (window.matchMedia && !("onbeforeprint" in window)) {
      window.matchMedia("print").addListener(function (query) { if (query.matches) { beforePrint(); } else { afterPrint(); } });
    }
  });
  window.hrw = Object.assign(window.hrw || {}, { printCharts: { before: beforePrint, after: afterPrint, width: PRINT_WIDTH } });
})();
