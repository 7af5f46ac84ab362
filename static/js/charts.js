// Renders every element with data-figure="<id of a json_script element>" (and optional data-key into
// a dict of figures) using the vendored plotly.js. No inline scripts or handlers anywhere.
// In the dark theme (static/js/theme.js) the figures take their colours from app.css's variables,
// and they are drawn again when the theme changes.
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
  function isDark() { return document.documentElement.getAttribute("data-theme") === "dark"; }
  function themed(layout) {
    if (!isDark()) { return layout; }
    var css = window.getComputedStyle(document.documentElement);
    var fg = css.getPropertyValue("--fg").trim();
    var grid = css.getPropertyValue("--chart-grid").trim();
    var line = css.getPropertyValue("--line").trim();
    layout.paper_bgcolor = "rgba(0,0,0,0)";
    layout.plot_bgcolor = "rgba(0,0,0,0)";
    layout.font = Object.assign({}, layout.font || {}, { color: fg });
    if (layout.legend) { layout.legend.bgcolor = "rgba(0,0,0,0)"; }
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key) || key === "coloraxis") {
        layout[key] = Object.assign({}, layout[key], { gridcolor: grid, linecolor: line, zerolinecolor: line });
      }
    });
    ["xaxis", "yaxis"].forEach(function (key) {
      if (!layout[key]) { layout[key] = { gridcolor: grid, linecolor: line, zerolinecolor: line }; }
    });
    return layout;
  }
  function render() {
    if (typeof window.Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var figure = source(el.dataset.figure);
      if (figure && el.dataset.key) { figure = figure[el.dataset.key]; }
      if (!figure) { return; }
      var config = Object.assign({ displaylogo: false, responsive: true }, figure.config || {});
      if (el.classList.contains("sparkline")) { config.staticPlot = true; config.responsive = false; }
      var layout = JSON.parse(JSON.stringify(figure.layout || {}));  // a copy: theming edits it
      window.Plotly.react(el, figure.data || [], themed(layout), config);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    render();
    document.addEventListener("hrw:themechange", render);
  });
})();
