/* Live pages (overview, group, worker, alerts): no full reload, no layout jump.

   - Every element with class "live-age" (dashboard/templatetags/hrw.py `live_age`) ticks once a
     second: its age is counted from data-timestamp against the server's data-now, plus the time
     since the element arrived, so a browser clock that is off does not change what is shown.
   - A page that opts in (an element with data-live-page) re-fetches itself every ~15 s with
     ?partial=1 (and at once when the tab regains focus) and swaps each server-rendered
     [data-live-part] element whose HTML changed. Charts are not inside parts, so they stay.
     ?refresh=N (2-300 s) sets another interval.
   - window.hrw.live says when the last update landed (tests and the status line read it).
   Everything is server-rendered HTML (escaped there); nothing here builds markup from data. */
(function () {
  "use strict";

  var DEFAULT_SECONDS = 15;
  var page = document.querySelector("[data-live-page]");
  var sources = {}; // part key -> the server HTML it was last drawn from
  var state = { inFlight: false, lastStart: 0, lastUpdate: null, error: null, stopped: false, timer: null, polls: 0 };
  var statusNode = null;

  function duration(seconds) {
    return window.hrw && window.hrw.duration ? window.hrw.duration(seconds) : Math.round(seconds) + " s";
  }

  // ------------------------------------------------------------------ ticking ages
  function tick(root) {
    var now = Date.now();
    (root || document).querySelectorAll(".live-age[data-timestamp]").forEach(function (el) {
      if (!el.dataset.offset) {
        var server = Date.parse(el.dataset.now || "");
        el.dataset.offset = String(isNaN(server) ? 0 : server - now);
      }
      var ts = Date.parse(el.dataset.timestamp);
      if (isNaN(ts)) { return; }
      var text = (el.dataset.prefix || "") + duration((now + Number(el.dataset.offset) - ts) / 1000) + (el.dataset.suffix || "");
      if (el.textContent !== text) { el.textContent = text; }
    });
  }

  // ------------------------------------------------------------------ partial swaps
  function partKey(el) { return el.getAttribute("data-live-part"); }

  function remember(root) {
    root.querySelectorAll("[data-live-part]").forEach(function (el) { sources[partKey(el)] = el.outerHTML; });
  }

  function findPart(key) {
    var all = document.querySelectorAll("[data-live-part]");
    for (var i = 0; i < all.length; i++) { if (partKey(all[i]) === key) { return all[i]; } }
    return null;
  }

  function swap(fresh) {
    var changed = 0;
    fresh.querySelectorAll("[data-live-part]").forEach(function (incoming) {
      var key = partKey(incoming);
      var html = incoming.outerHTML;
      var current = findPart(key);
      if (!current || sources[key] === html) { return; }
      // Never pull a form control out from under the person using it; the next poll catches up.
      var active = document.activeElement;
      if (active && active !== document.body && current.contains(active) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName)) { return; }
      var node = document.importNode(incoming, true);
      current.replaceWith(node);
      sources[key] = html;
      if (window.hrw && window.hrw.localiseTimes) { window.hrw.localiseTimes(node); }
      tick(node);
      changed++;
    });
    return changed;
  }

  function partialUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    url.hash = "";
    return url.toString();
  }

  function intervalMs() {
    var asked = parseInt(new URLSearchParams(window.location.search).get("refresh") || "", 10);
    var seconds = isNaN(asked) ? DEFAULT_SECONDS : Math.min(300, Math.max(2, asked));
    return seconds * 1000;
  }

  function showStatus() {
    if (!statusNode) { return; }
    var text;
    if (state.stopped) {
      text = "Live updates stopped: " + state.error + ". Reload the page.";
    } else if (state.error) {
      text = "Live updates failing (" + state.error + "); retrying every " + Math.round(intervalMs() / 1000) + " s";
    } else if (state.lastUpdate) {
      text = "Live: updated " + duration((Date.now() - state.lastUpdate) / 1000) + " ago";
    } else {
      text = "Live: updates every " + Math.round(intervalMs() / 1000) + " s";
    }
    if (statusNode.textContent !== text) { statusNode.textContent = text; }
    statusNode.classList.toggle("is-failing", !!state.error);
  }

  function schedule() {
    clearTimeout(state.timer);
    if (!state.stopped) { state.timer = setTimeout(poll, intervalMs()); }
  }

  function poll() {
    if (state.inFlight || state.stopped) { return; }
    if (document.hidden) { schedule(); return; } // a hidden tab catches up when it is shown again
    state.inFlight = true;
    state.lastStart = Date.now();
    var controller = new AbortController();
    var timeout = setTimeout(function () { controller.abort(); }, Math.min(intervalMs(), 20000));
    fetch(partialUrl(), { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" }, signal: controller.signal })
      .then(function (response) {
        if (response.redirected && response.url.indexOf("/login/") >= 0) {
          state.stopped = true;
          throw new Error("the session ended (log in again)");
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        swap(fresh);
        state.lastUpdate = Date.now();
        state.error = null;
        state.polls++;
      })
      .catch(function (err) {
        state.error = err && err.name === "AbortError" ? "timed out" : (err && err.message) || "network error";
      })
      .then(function () {
        clearTimeout(timeout);
        state.inFlight = false;
        showStatus();
        schedule();
      });
  }

  function pollSoon() {
    // Back on the tab: update at once unless an update just started.
    if (!document.hidden && Date.now() - state.lastStart > 2000) { clearTimeout(state.timer); poll(); }
  }

  // Deferred scripts run before DOMContentLoaded, so the parts are still exactly the server's HTML
  // here (app.js localises the times later): remember it, so an unchanged part is never redrawn.
  remember(document);

  window.hrw = Object.assign(window.hrw || {}, {
    live: { state: state, pollNow: function () { clearTimeout(state.timer); poll(); }, tick: tick }
  });

  document.addEventListener("DOMContentLoaded", function () {
    tick(document);
    setInterval(function () { tick(document); showStatus(); }, 1000);
    if (!page) { return; }
    statusNode = document.createElement("p");
    statusNode.className = "live-status";
    statusNode.setAttribute("aria-live", "off");
    document.body.appendChild(statusNode);
    showStatus();
    document.addEventListener("visibilitychange", pollSoon);
    window.addEventListener("focus", pollSoon);
    schedule();
  });
})();
