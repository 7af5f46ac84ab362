// The one duration formatter of the browser, twin of workers/rules/format.py (same units, same
// cut-offs): "0.4 s", "42 s", "7 min", "3.5 min", "2 h", "1.5 d". Loaded before app.js and wall.js.
(function () {
  "use strict";

  function trim(value, decimals) {
    var text = value.toFixed(decimals);
    return text.slice(-2) === ".0" ? text.slice(0, -2) : text;
  }

  // Below 10 s one decimal, then whole seconds up to 119 s; minutes below 2 h, hours below 48 h,
  // days beyond. Negative values (clock skew) count as 0 s; null/undefined/NaN give `empty` ("–").
  function duration(seconds, empty) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) { return empty === undefined ? "\u2013" : empty; }
    var value = Math.max(0, Number(seconds));
    if (value < 10) { return trim(value, 1) + " s"; }
    if (value < 120) { return trim(value, 0) + " s"; }
    if (value < 7200) { return trim(value / 60, 1) + " min"; }
    if (value < 172800) { return trim(value / 3600, 1) + " h"; }
    return trim(value / 86400, 1) + " d";
  }

  window.hrw = Object.assign(window.hrw || {}, { duration: duration });
})();
