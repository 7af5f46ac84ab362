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
  // Zoom carries into the page's range: where the range picker takes custom ranges
  // (templates/_range_picker.html, data-custom), zooming a time axis navigates to the same page with
  // from/to (UTC, whole minutes) so the view is shareable and re-queried at the right resolution;
  // a double-click (autorange) goes back to the preset.
  function utcMinute(value, up) {
    var text = String(value).trim().replace(" ", "T");
    if (!/[zZ]|[+-]\d\d:?\d\d$/.test(text)) { text += "Z"; }
    var ms = Date.parse(text);
    if (isNaN(ms)) { return null; }
    var minute = 60000;
    ms = up ? Math.ceil(ms / minute) * minute : Math.floor(ms / minute) * minute;
    return new Date(ms).toISOString().slice(0, 16) + "Z";
  }
  function onRelayout(el, event) {
    if (!document.querySelector("[data-range-picker][data-custom]")) { return; }
    if (!el._fullLayout || !el._fullLayout.xaxis || el._fullLayout.xaxis.type !== "date") { return; }
    var url = new URL(window.location.href);
    url.searchParams.delete("partial");
    if (event["xaxis.autorange"]) {
      if (!url.searchParams.has("from") && !url.searchParams.has("to")) { return; }
      url.searchParams.delete("from");
      url.searchParams.delete("to");
    } else {
      var range = event["xaxis.range"] || [event["xaxis.range[0]"], event["xaxis.range[1]"]];
      if (range[0] === undefined || range[1] === undefined) { return; }
      var from = utcMinute(range[0], false);
      var to = utcMinute(range[1], true);
      if (!from || !to) { return; }
      var now = new Date(Math.floor(Date.now() / 60000) * 60000).toISOString().slice(0, 16) + "Z";
      if (to > now) { to = now; }
      url.searchParams.set("from", from);
      url.searchParams.set("to", to);
    }
    window.location.assign(url.toString());
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
      if (!el.dataset.zoomBound && !config.staticPlot && typeof el.on === "function") {
        el.dataset.zoomBound = "1";
        el.on("plotly_relayout", function (event) { onRelayout(el, event); });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    render();
    document.addEventListener("hrw:themechange", render);
  });
})();
