// Renders every element with data-figure="<id of a json_script element>" (and optional data-key into
// a dict of figures) using the vendored plotly.js. No inline scripts or handlers anywhere.
(function () {
  "use strict";
  var cache = {};
  function source(id) {
    if (!(id in cache)) {
      var el = document.getElementById(id);
      cache[id] = el ? JSON.parse(el.textContent) : null;
    }
    return cache[id];
  }
  function render() {
    if (typeof window.Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var figure = source(el.dataset.figure);
      if (figure && el.dataset.key) { figure = figure[el.dataset.key]; }
      if (!figure) { return; }
      var config = Object.assign({ displaylogo: false, responsive: true }, figure.config || {});
      if (el.classList.contains("sparkline")) { config.staticPlot = true; config.responsive = false; }
      window.Plotly.newPlot(el, figure.data || [], figure.layout || {}, config);
    });
  }
  document.addEventListener("DOMContentLoaded", render);
})();
