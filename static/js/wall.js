/* The NOC wall's script. Loaded with `defer`; configuration comes from <script id="wall-config"
   type="application/json"> (json_script), so the page needs no inline script (CSP).

   - Fetches the JSON feed every `refresh_seconds` and patches the DOM in place: a fixed pool of tile
     nodes (one per grid cell, each a clone of the page's <template id="wall-tile">) is reused; nodes are only replaced when the grid itself changes size,
     so the DOM never grows however long the wall runs.
   - Worst first; if the groups do not fit at a legible size, pages of one grid each rotate every
     `rotate_seconds`, with a page indicator. Nothing ever scrolls.
   - Stale: when the server says a poll failed or is overdue, when the data's freshness window runs
     out without a newer answer, or when the server cannot be reached, a "DATA STALE since hh:mm"
     banner shows and the tiles are greyed. A CSS watchdog (wall.css) greys them even if this
     script dies, because only a successful update restarts it.
   - Times are shown in the viewer's time zone with UTC in the title (hover).
   Everything from the server is set with textContent (Azure strings are untrusted). */
(function () {
  "use strict";

  var configNode = document.getElementById("wall-config");
  if (!configNode) { return; }
  var config = JSON.parse(configNode.textContent);
  var body = document.body;
  var tilesNode = document.getElementById("wall-tiles");
  var staleNode = document.getElementById("wall-stale");
  var staleHead = document.getElementById("wall-stale-head");
  var staleReason = document.getElementById("wall-stale-reason");
  var emptyNode = document.getElementById("wall-empty");
  var unmatchedNode = document.getElementById("wall-unmatched");
  var pageNode = document.getElementById("wall-page");
  var dotsNode = document.getElementById("wall-dots");
  var asofNode = document.getElementById("wall-asof");
  var nowNode = document.getElementById("wall-now");

  // The tile markup and the health icons come from the server's <template id="wall-tile">
  // (dashboard/templatetags/hrw.py, the one place the tile is written); this script only fills it.
  var tileTemplate = document.getElementById("wall-tile");
  var ICONS = JSON.parse(tileTemplate.dataset.icons);
  var refreshMs = config.refresh_seconds * 1000;
  var rotateMs = config.rotate_seconds * 1000;
  // No successful answer for this long means we cannot vouch for what is on screen.
  var contactLimitMs = Math.max(2 * refreshMs + 5000, 30000);
  var hhmm = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  var hhmmss = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  var state = {
    data: config.initial,
    fetchedAt: Date.now(),   // when `data` arrived (client clock)
    lastContact: Date.now(), // last successful answer
    error: null,             // why the latest fetch failed, if it did
    errorSince: null,
    page: 0,
    pages: 1,
    cols: 0,
    rows: 0,
    perPage: 0,
    slots: [],               // the tile node pool
    dots: [],
    inFlight: false
  };

  // ---------------------------------------------------------------- small helpers
  function setText(node, text) {
    if (node.textContent !== text) { node.textContent = text; }
  }
  function setAttr(node, name, value) {
    if (node.getAttribute(name) !== value) { node.setAttribute(name, value); }
  }
  function utcTitle(date) {
    return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  function setTime(node, iso, withSeconds) {
    if (!iso) { setText(node, "\u2014"); setAttr(node, "datetime", ""); setAttr(node, "title", ""); return; }
    var date = new Date(iso);
    setText(node, (withSeconds ? hhmmss : hhmm).format(date));
    setAttr(node, "datetime", iso);
    setAttr(node, "title", utcTitle(date));
  }
  // Durations through the shared formatter (static/js/format.js, loaded first).
  function seconds(value) { return window.hrw.duration(value, "n/a"); }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  // ---------------------------------------------------------------- layout
  function computeLayout(count) {
    var width = tilesNode.clientWidth;
    var height = tilesNode.clientHeight;
    // Legible from across a room (24 px text at 1080p): a tile is never narrower than 1/6 of the
    // screen nor shorter than 1/5 of its height, so at most 6 x 4 tiles; beyond that, pages rotate.
    // Stale tiles carry a STALE stamp line too: they get a quarter of the height.
    var minW = Math.max(150, window.innerWidth / 6);
    var minH = Math.max(80, window.innerHeight / (body.classList.contains("is-stale") ? 4 : 5));
    var maxCols = Math.max(1, Math.floor(width / minW));
    var maxRows = Math.max(1, Math.floor(height / minH));
    var capacity = maxCols * maxRows;
    if (count > capacity) {
      return { cols: maxCols, rows: maxRows, perPage: capacity };
    }
    var n = Math.max(count, 1);
    var best = null;
    for (var cols = 1; cols <= Math.min(n, maxCols); cols++) {
      var rows = Math.ceil(n / cols);
      if (rows > maxRows) { continue; }
      // Prefer big tiles close to 2:1 (name on one line, count below), then fewer empty cells.
      var tileW = width / cols;
      var tileH = height / rows;
      var score = Math.min(tileW, tileH * 2.2);
      var waste = cols * rows - n;
      if (!best || score > best.score + 0.5 || (Math.abs(score - best.score) <= 0.5 && waste < best.waste)) {
        best = { cols: cols, rows: rows, perPage: cols * rows, score: score, waste: waste };
      }
    }
    return best || { cols: maxCols, rows: maxRows, perPage: capacity };
  }

  function part(tile, cls) {
    // An element with exactly one Text node that lives as long as the element: updates change
    // the node's data, so a tile's node count never changes, whatever it shows.
    var node = tile.querySelector("." + cls);
    if (!node.firstChild) { node.appendChild(document.createTextNode("")); }
    return { node: node, text: node.firstChild };
  }

  function makeTile() {
    var tile = tileTemplate.content.firstElementChild.cloneNode(true);
    var name = part(tile, "tile-name");
    return {
      node: tile, icon: part(tile, "tile-icon").text, name: name.text, nameNode: name.node,
      online: part(tile, "tile-online").text, total: part(tile, "tile-total").text,
      health: part(tile, "tile-health").text, extra: part(tile, "tile-extra").text
    };
  }

  function setData(text, value) {
    if (text.data !== value) { text.data = value; }
  }

  function ensurePool(layout) {
    if (layout.cols === state.cols && layout.rows === state.rows && state.slots.length === layout.perPage) { return; }
    state.cols = layout.cols;
    state.rows = layout.rows;
    state.perPage = layout.perPage;
    // The grid changed: replace every child (server-rendered tiles on the first call) with a pool
    // of exactly one node per cell. replaceChildren drops the old nodes, so the count stays bounded.
    var slots = [];
    for (var i = 0; i < layout.perPage; i++) { slots.push(makeTile()); }
    tilesNode.replaceChildren.apply(tilesNode, slots.map(function (s) { return s.node; }));
    state.slots = slots;
    tilesNode.style.setProperty("--cols", String(layout.cols));
    tilesNode.style.setProperty("--rows", String(layout.rows));
    tilesNode.classList.add("is-laid-out");
  }

  function fillTile(slot, group) {
    if (!group) {
      // A cell past the last group on the last page: hidden, its old text kept (invisible), so
      // the page's node count stays the same from page to page.
      if (!slot.node.classList.contains("is-blank")) {
        slot.node.className = "tile is-blank";
        slot.node.removeAttribute("data-group-id");
        slot.node.removeAttribute("data-health");
      }
      return;
    }
    var health = ICONS.hasOwnProperty(group.health) ? group.health : "empty";
    // A group whose own worker poll is failing: its counts are the last known state, greyed.
    var cls = "tile health-" + health + (group.poll_problem ? " is-unpolled" : "");
    if (slot.node.className !== cls) { slot.node.className = cls; }
    setAttr(slot.node, "data-group-id", String(group.id));
    setAttr(slot.node, "data-health", health);
    setData(slot.icon, ICONS[health]);
    setData(slot.name, group.name);
    setAttr(slot.nameNode, "title", group.account + " / " + group.name + (group.poll_problem ? ": " + group.poll_problem : ""));
    setData(slot.online, String(group.workers_online));
    setData(slot.total, "/" + group.workers_total);
    setData(slot.health, group.label || health.toUpperCase());
    setData(slot.extra, group.detail || "");
  }

  function renderDots() {
    var wanted = state.pages > 1 && state.pages <= 24 ? state.pages : 0;
    if (state.dots.length !== wanted) {
      var dots = [];
      for (var i = 0; i < wanted; i++) {
        var dot = document.createElement("span");
        dot.className = "wall-dot";
        dots.push(dot);
      }
      dotsNode.replaceChildren.apply(dotsNode, dots);
      state.dots = dots;
    }
    for (var j = 0; j < state.dots.length; j++) {
      var cls = j === state.page ? "wall-dot is-current" : "wall-dot";
      if (state.dots[j].className !== cls) { state.dots[j].className = cls; }
    }
  }

  function renderTiles() {
    var groups = state.data.groups;
    var layout = computeLayout(groups.length);
    ensurePool(layout);
    state.pages = Math.max(1, Math.ceil(groups.length / state.perPage));
    if (state.page >= state.pages) { state.page = 0; }
    var start = state.page * state.perPage;
    for (var i = 0; i < state.slots.length; i++) {
      fillTile(state.slots[i], groups[start + i]);
    }
    setText(pageNode, state.pages > 1
      ? "Page " + (state.page + 1) + " / " + state.pages + " \u00B7 groups " + (start + 1) + "\u2013" + Math.min(start + state.perPage, groups.length) + " of " + groups.length
      : "Page 1 / 1 \u00B7 " + plural(groups.length, "group"));
    renderDots();
  }

  function kpi(name) {
    return document.querySelector('[data-kpi="' + name + '"]');
  }
  function setKpi(name, value, label, bad) {
    var node = kpi(name);
    if (!node) { return; }
    setText(node.querySelector(".kpi-value"), value);
    if (label !== null) { setText(node.querySelector(".kpi-label"), label); }
    node.classList.toggle("is-bad", !!bad);
  }

  function renderTotals() {
    var t = state.data.totals;
    var byHealth = t.groups_by_health || {};
    setKpi("groups", String(t.groups), "groups \u00B7 " + (byHealth.down || 0) + " down \u00B7 " + (byHealth.degraded || 0) + " degraded", (byHealth.down || 0) > 0);
    setKpi("workers", t.workers_online + " / " + t.workers_total, "workers online", t.workers_online < t.workers_total);
    setKpi("offline", String(t.workers_offline), "workers offline \u00B7 " + t.workers_late + " late", t.workers_offline > 0);
    var acked = t.acknowledged_alerts || 0;
    setKpi("alerts", String(t.open_alerts), "open alerts" + (acked ? " \u00B7 " + acked + " acknowledged" : ""), t.open_alerts > acked);
    setKpi("queued", String(t.jobs_queued), "jobs queued now", false);
    setKpi("p95", seconds(t.queue_p95_seconds_24h), "queue delay p95 \u00B7 24 h \u00B7 " + plural(t.queue_jobs_24h, "job"), false);
  }

  function renderEmpty() {
    var data = state.data;
    var message = data.empty_message || "";
    setText(emptyNode, message);
    emptyNode.hidden = !message;
    var unmatched = data.unmatched_groups || [];
    setText(unmatchedNode, unmatched.length ? "Not found: " + unmatched.join(", ") : "");
    unmatchedNode.hidden = !(unmatched.length && data.groups.length);
  }

  // ---------------------------------------------------------------- staleness
  function staleVerdict(now) {
    var fresh = state.data.freshness;
    if (fresh.accounts === 0) { return null; }
    if (state.error) {
      return "cannot reach the server since " + hhmmss.format(new Date(state.errorSince)) + " (" + state.error + ")";
    }
    if (now - state.lastContact > contactLimitMs) {
      return "no answer from the server for " + seconds((now - state.lastContact) / 1000);
    }
    if (fresh.stale) {
      return fresh.reasons.length ? fresh.reasons.join(" \u00B7 ") : "the latest poll failed or is overdue";
    }
    if (fresh.fresh_for_seconds !== null && now > state.fetchedAt + fresh.fresh_for_seconds * 1000) {
      return "no newer poll arrived in time";
    }
    return null;
  }

  function renderFreshness() {
    var now = Date.now();
    var fresh = state.data.freshness;
    var reason = staleVerdict(now);
    var wasStale = body.classList.contains("is-stale");
    body.classList.toggle("is-stale", reason !== null);
    if (wasStale !== (reason !== null)) { renderTiles(); }
    staleNode.hidden = reason === null;
    if (reason !== null) {
      if (fresh.last_ok_at) {
        var date = new Date(fresh.last_ok_at);
        setText(staleHead, "DATA STALE since " + hhmm.format(date));
        setAttr(staleHead, "title", "last good poll " + utcTitle(date));
      } else {
        setText(staleHead, "NO DATA YET");
        setAttr(staleHead, "title", "");
      }
      setText(staleReason, reason);
    }
    var age = fresh.age_seconds === null ? null : fresh.age_seconds + (now - state.fetchedAt) / 1000;
    setKpi("age", seconds(age), "data age (oldest source)", reason !== null);
    setTime(asofNode, fresh.last_ok_at, false);
    setTime(nowNode, new Date(now).toISOString(), true);
  }

  function rearmWatchdog() {
    // Restart the CSS watchdog animations: they fire only if no update arrives in time.
    var animations = typeof body.getAnimations === "function" ? body.getAnimations({ subtree: true }) : [];
    for (var i = 0; i < animations.length; i++) {
      var name = animations[i].animationName || "";
      if (name.indexOf("wd-") === 0) { animations[i].currentTime = 0; }
    }
  }

  function render() {
    renderTiles();
    renderTotals();
    renderEmpty();
    renderFreshness();
  }

  // ---------------------------------------------------------------- timers
  function dataUrl() {
    var params = new URLSearchParams(config.query || {});
    var qs = params.toString();
    return config.data_url + (qs ? "?" + qs : "");
  }

  function refresh() {
    if (state.inFlight) { return; }
    state.inFlight = true;
    // A display token travels in its HttpOnly cookie (same-origin credentials), never in the page.
    var headers = { Accept: "application/json" };
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, Math.min(refreshMs, 10000));
    fetch(dataUrl(), { headers: headers, cache: "no-store", credentials: "same-origin", signal: controller.signal })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        state.data = data;
        state.fetchedAt = Date.now();
        state.lastContact = state.fetchedAt;
        state.error = null;
        state.errorSince = null;
        render();
        rearmWatchdog();
      })
      .catch(function (err) {
        if (!state.error) { state.errorSince = Date.now(); }
        state.error = err && err.name === "AbortError" ? "timed out" : (err && err.message) || "network error";
        renderFreshness();
      })
      .then(function () {
        clearTimeout(timer);
        state.inFlight = false;
        setTimeout(refresh, refreshMs);
      });
  }

  function rotate() {
    if (state.pages > 1) {
      state.page = (state.page + 1) % state.pages;
      renderTiles();
    }
    setTimeout(rotate, rotateMs);
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(renderTiles, 150);
  });

  // The template arms the watchdog with a 120 s default; tie it to this wall's refresh instead.
  body.style.setProperty("--wd-delay", Math.round(contactLimitMs / 1000 + 15) + "s");
  render();
  setInterval(renderFreshness, 1000);
  setTimeout(refresh, refreshMs);
  setTimeout(rotate, rotateMs);
})();
