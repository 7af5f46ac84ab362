// Small progressive enhancements shared by every page. No inline handlers; everything is wired here.
(function () {
  "use strict";

  // <time datetime="...Z">: show the viewer's local time, keep UTC in the title (hover).
  function localiseTimes(root) {
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
      });
    } catch (e) { return; }
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.localised) { return; }
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) { return; }
      var utcText = el.textContent;
      el.textContent = fmt.format(d);
      el.title = utcText.indexOf("UTC") >= 0 ? utcText : utcText + " UTC";
      el.dataset.localised = "1";
    });
  }

  function fetchJSON(url, options) {
    var opts = options || {};
    var headers = new Headers(opts.headers || {});
    headers.set("Accept", "application/json");
    opts.headers = headers;
    opts.credentials = "same-origin";
    return fetch(url, opts).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status + " from " + url); }
      return response.json();
    });
  }

  // Extends window.hrw (static/js/format.js put the shared duration formatter there).
  window.hrw = Object.assign(window.hrw || {}, { localiseTimes: localiseTimes, fetchJSON: fetchJSON });
  document.addEventListener("DOMContentLoaded", function () { localiseTimes(document); });
})();
