"""The wall read from across the room, measured in headless Chromium at 1920x1080 and 1280x720:
computed font sizes (no text under 24 px at 1080p, 16 px at 720p: the same angle on the same TV),
contrast of every label against what is behind it (>= 4.5:1), down in red and degraded in amber
(with their symbol and word), full group names (no truncation of a name that fits), acknowledged
alerts marked, and a STALE stamp that covers nothing."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.browser.fleet import build_fleet
from workers.models import Alert, WorkerStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = [((1920, 1080), 24.0), ((1280, 720), 16.0)]
NAMES = [
    "update-management-weekly", "hrw-linux-prod", "hrw-win-prod-eu-west", "sql-maintenance-nightly",
    "patching-ring-0", "patching-ring-1", "backup-verification", "ad-sync-emea", "citrix-farm-reboots",
    "sap-batch-jobs", "exchange-hygiene", "cert-renewal-hybrid", "dns-scavenging", "file-share-audit",
    "hr-onboarding-flows", "finance-month-end", "iis-app-pools", "vm-start-stop-dev", "log-rotation",
    "print-spooler-fix", "teams-rooms-reboot", "intune-compliance", "defender-scans", "legacy-v1-jobs",
]
DOWN, DEGRADED = 0, 1  # index of the group in NAMES

# Every visible element with its own text: its font size, its colour, and the first opaque background
# colour behind it (its own or an ancestor's), as rgba arrays.
TEXT_STYLES_JS = """() => {
  const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number).concat([1]).slice(0, 4);
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (['SCRIPT', 'STYLE', 'TEMPLATE', 'TITLE'].includes(el.tagName)) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility !== 'visible' || !el.getClientRects().length || el.closest('[hidden]')) continue;
    let bg = null;
    for (let a = el; a; a = a.parentElement) {
      const c = rgba(getComputedStyle(a).backgroundColor);
      if (c[3] > 0.5) { bg = c; break; }
    }
    out.push({text: el.textContent.trim().slice(0, 40), cls: el.className, size: parseFloat(cs.fontSize),
              color: rgba(cs.color), bg: bg || [255, 255, 255, 1]});
  }
  return out;
}"""


def _small_and_faint(page: Any, min_px: float) -> tuple[list[Any], list[Any]]:
    styles = page.evaluate(TEXT_STYLES_JS)
    assert len(styles) > 50
    small = [(s["text"], s["cls"], s["size"]) for s in styles if s["size"] < min_px - 0.5]
    faint = [(s["text"], s["cls"], round(_contrast(s["color"], s["bg"]), 2)) for s in styles if _contrast(s["color"], s["bg"]) < 4.5]
    return small, faint


def _luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: list[float], b: list[float]) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _hue(rgb: list[float]) -> float:
    import colorsys

    h, _l, _s = colorsys.rgb_to_hls(*(c / 255 for c in rgb[:3]))
    return h * 360


def _fleet(now, *, poll_age_seconds: float = 5):
    def status(g: int, w: int) -> str:
        if g == DOWN or (g == DEGRADED and w == 0):
            return WorkerStatus.OFFLINE.value
        return WorkerStatus.ONLINE.value

    fleet = build_fleet(now=now, groups=len(NAMES), workers_per_group=3, group_names=NAMES, status=status,
                        poll_age_seconds=poll_age_seconds)
    Alert.objects.create(kind="worker_down", group=fleet.groups[DOWN], account=fleet.account, title="DOWN",
                         opened_at=now - timedelta(minutes=9), acknowledged_at=now - timedelta(minutes=2))
    Alert.objects.create(kind="worker_down", group=fleet.groups[DEGRADED], account=fleet.account, title="DOWN",
                         opened_at=now - timedelta(minutes=4))
    return fleet


def _open(watch: Any, size: tuple[int, int], theme: str = "dark") -> Any:
    watch.page.set_viewport_size({"width": size[0], "height": size[1]})
    response = watch.page.goto(f"{watch.origin}/wall/?refresh=300&rotate=300&theme={theme}", wait_until="domcontentloaded")
    assert response is not None and response.status == 200
    watch.page.wait_for_selector("#wall-tiles.is-laid-out")
    return watch.page


@pytest.mark.parametrize(("size", "min_px"), SIZES, ids=["1080p", "720p"])
def test_every_label_is_big_enough_and_contrasted_enough(login_cookie, size, min_px):
    fleet = _fleet(timezone.now())
    page = _open(login_cookie, size)

    small, faint = _small_and_faint(page, min_px)

    page.screenshot(path=str(_artifact(f"wall-readable-{size[0]}x{size[1]}.png")))
    assert small == [], f"text under {min_px} px"
    assert faint == [], "text under 4.5:1 contrast"
    assert page.locator(".tile[data-group-id]").count() >= 12, "a 6 x 3 grid at least: pages rotate beyond it"
    assert page.get_attribute(f'.tile[data-group-id="{fleet.groups[DOWN].pk}"]', "data-health") == "down"
    login_cookie.assert_clean()


@pytest.mark.parametrize("theme", ["light", "contrast"])
def test_the_other_themes_are_as_readable(login_cookie, theme):
    _fleet(timezone.now())
    page = _open(login_cookie, (1920, 1080), theme)

    small, faint = _small_and_faint(page, 24.0)

    assert (small, faint) == ([], [])


@pytest.mark.parametrize(("size", "min_px"), SIZES, ids=["1080p", "720p"])
def test_down_is_red_and_degraded_amber_with_their_symbol_and_word(login_cookie, size, min_px):
    fleet = _fleet(timezone.now())
    page = _open(login_cookie, size)

    def tile(group: Any) -> dict[str, Any]:
        return page.evaluate(
            """id => { const t = document.querySelector(`.tile[data-group-id="${id}"]`);
                       const rgba = s => s.match(/[\\d.]+/g).map(Number);
                       return {bg: rgba(getComputedStyle(t).backgroundColor), icon: t.querySelector('.tile-icon').textContent,
                               word: t.querySelector('.tile-health').textContent, extra: t.querySelector('.tile-extra').textContent}; }""",
            group.pk,
        )

    down, degraded = tile(fleet.groups[DOWN]), tile(fleet.groups[DEGRADED])

    assert (down["icon"], down["word"], degraded["icon"], degraded["word"]) == ("✕", "DOWN", "▲", "DEGRADED")
    assert _hue(down["bg"]) < 10 or _hue(down["bg"]) > 345, down["bg"]  # red, not orange
    assert 35 <= _hue(degraded["bg"]) <= 50, degraded["bg"]  # amber
    # Told apart without colour vision too: the amber tile is much lighter than the red one.
    assert _luminance(degraded["bg"]) > 3 * _luminance(down["bg"])
    assert "1 open alert, acknowledged" in down["extra"]
    assert "1 open alert" in degraded["extra"] and "acknowledged" not in degraded["extra"]
    assert page.text_content('[data-kpi="alerts"] .kpi-label') == "open alerts · 1 acknowledged"


@pytest.mark.parametrize(("size", "min_px"), SIZES, ids=["1080p", "720p"])
def test_full_names_are_never_cut_when_they_fit(login_cookie, size, min_px):
    _fleet(timezone.now())
    page = _open(login_cookie, size)

    names = page.eval_on_selector_all(
        ".tile[data-group-id] .tile-name",
        # .tile-top holds the icon and the name, clamped at three lines: it must not overflow.
        """els => els.map(e => { const box = e.parentElement;
                                return {text: e.textContent, dims: [box.scrollHeight, box.clientHeight, box.scrollWidth, box.clientWidth],
                                        over: box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1}; })""",
    )

    assert len(names) >= 12 and {n["text"] for n in names} <= set(NAMES)
    assert [(n["text"], n["dims"]) for n in names if n["over"]] == []


@pytest.mark.parametrize(("size", "min_px"), SIZES, ids=["1080p", "720p"])
@pytest.mark.parametrize("stale", [False, True], ids=["fresh", "stale"])
def test_no_text_is_clipped_and_the_stale_stamp_covers_none(login_cookie, size, min_px, stale):
    _fleet(timezone.now(), poll_age_seconds=900 if stale else 5)
    page = _open(login_cookie, size)
    page.wait_for_selector("#wall-stale:not([hidden])" if stale else "#wall-stale", state="visible" if stale else "hidden")

    report = page.evaluate(
        """() => {
          const within = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1 && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
          const meets = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
          const textRects = el => { const r = document.createRange(); r.selectNodeContents(el); return [...r.getClientRects()]; };
          const out = {tiles: 0, stamps: 0, overlaps: [], clipped: []};
          for (const tile of document.querySelectorAll('#wall-tiles .tile[data-group-id]')) {
            out.tiles++;
            const box = tile.getBoundingClientRect();
            const stamp = tile.querySelector('.tile-stale').getBoundingClientRect();
            if (stamp.width > 0) out.stamps++;
            for (const part of tile.querySelectorAll('.tile-icon, .tile-name, .tile-count, .tile-health, .tile-extra')) {
              for (const r of textRects(part)) {
                if (meets(r, stamp)) out.overlaps.push(part.className + ': ' + part.textContent);
                if (!within(r, box)) out.clipped.push(part.className + ': ' + part.textContent);
              }
            }
          }
          return out;
        }"""
    )

    page.screenshot(path=str(_artifact(f"wall-readable-{'stale' if stale else 'fresh'}-{size[0]}x{size[1]}.png")))
    assert report["tiles"] > 0 and report["stamps"] == (report["tiles"] if stale else 0), "every tile says STALE, only when stale"
    assert report["overlaps"] == []
    assert report["clipped"] == []


def _artifact(name: str) -> Any:
    from tests.browser.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
