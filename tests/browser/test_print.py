"""The printable capacity review in Chromium: its charts print whole, one under the other, never on
top of each other and never wider than the page; the PDF Chromium makes has several pages; the dark
theme prints light; the Print button is there only when something was computed.

Print layout is checked as Chromium prints: print media (page.emulate_media(media="print")), the
width of the page static/css/capacity-print.css asks for (A4 landscape less its margins) and the
"beforeprint" event that Chromium sends before it prints (page.pdf() sends it too), on which
static/js/capacity-print.js redraws the charts for paper."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from tests.capacity.data import build_analysed_fleet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MM = 96 / 25.4  # CSS px per millimetre
PAGE = {"width": round((297 - 2 * 12) * MM), "height": round((210 - 2 * 12) * MM)}  # A4 landscape, 12 mm margins
REPORT = "/capacity/report/?window=7d"

# Each chart's box and the box of everything plotly drew in it (its absolutely placed SVG layers).
CHARTS = """() => Array.from(document.querySelectorAll('.chart[data-figure]')).map(el => {
  const box = el.getBoundingClientRect();
  const layers = Array.from(el.querySelectorAll('svg.main-svg')).map(s => s.getBoundingClientRect()).filter(r => r.width > 0);
  const drawn = layers.length ? {left: Math.min(...layers.map(r => r.left)), top: Math.min(...layers.map(r => r.top)),
                                 right: Math.max(...layers.map(r => r.right)), bottom: Math.max(...layers.map(r => r.bottom))} : null;
  const y = window.scrollY;
  return {key: el.dataset.key, layers: layers.length,
          box: {left: box.left, top: box.top + y, right: box.right, bottom: box.bottom + y},
          drawn: drawn && {left: drawn.left, top: drawn.top + y, right: drawn.right, bottom: drawn.bottom + y},
          font: el._fullLayout ? el._fullLayout.font.color : null, width: el.layout ? el.layout.width : null};
})"""


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5 and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5


def _pdf_pages(pdf: bytes) -> int:
    counts = {int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf)}
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    assert counts == {pages}, (counts, pages)
    return pages


@pytest.fixture
def analysed(db: Any) -> Any:
    """48 h of jobs and samples analysed now: the 7-day review draws two heat maps and two trends."""
    return build_analysed_fleet(now=timezone.now(), hours=48)


def _open_report(watch: Any, *, theme: str = "light") -> Any:
    page = watch.page
    page.emulate_media(color_scheme=theme)
    response = page.goto(watch.origin + REPORT, wait_until="networkidle")
    assert response is not None and response.status == 200
    page.wait_for_function("() => document.querySelectorAll('.chart[data-figure]').length >= 4 && "
                           "Array.from(document.querySelectorAll('.chart[data-figure]')).every(el => el.querySelector('svg.main-svg'))")
    return page


def _assert_printable(charts: list[dict[str, Any]]) -> None:
    assert len(charts) >= 4, charts
    for c in charts:
        box, drawn = c["box"], c["drawn"]
        assert drawn is not None, f"{c['key']} drew nothing"
        # Its drawing stays inside its own box (nothing spills onto the next chart)...
        assert drawn["left"] >= box["left"] - 0.5 and drawn["right"] <= box["right"] + 0.5, c
        assert drawn["top"] >= box["top"] - 0.5 and drawn["bottom"] <= box["bottom"] + 0.5, c
        # ...the box is within the page's width and short enough to move whole to the next page...
        assert box["left"] >= -0.5 and box["right"] <= PAGE["width"] + 0.5, c
        assert box["bottom"] - box["top"] <= PAGE["height"], c
        # ...and the drawing uses the paper's width (it was redrawn for print, not left at screen size).
        assert drawn["right"] - drawn["left"] >= 0.9 * (box["right"] - box["left"]), c
    for i, a in enumerate(charts):
        for b in charts[i + 1:]:
            assert not _overlap(a["box"], b["box"]), (a["key"], b["key"], a["box"], b["box"])
            assert not _overlap(a["drawn"], b["drawn"]), (a["key"], b["key"], a["drawn"], b["drawn"])


def _print_layout(page: Any) -> list[dict[str, Any]]:
    page.emulate_media(media="print")
    page.set_viewport_size(PAGE)
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page.evaluate(CHARTS)


def test_in_print_its_charts_are_whole_apart_and_as_wide_as_the_page(login_cookie, analysed):
    page = _open_report(login_cookie)
    on_screen = page.evaluate(CHARTS)
    assert any(a["box"]["top"] == b["box"]["top"] for a in on_screen for b in on_screen if a is not b), "two charts side by side on screen"

    charts = _print_layout(page)

    _assert_printable(charts)
    assert page.evaluate("() => getComputedStyle(document.querySelector('.topbar')).display") == "none"
    assert not page.locator("[data-print]").is_visible()
    login_cookie.assert_clean()


def test_the_dark_theme_prints_light(login_cookie, analysed):
    page = _open_report(login_cookie, theme="dark")
    assert page.get_attribute("html", "data-theme") == "dark"
    dark_fonts = {c["font"] for c in page.evaluate(CHARTS)}

    charts = _print_layout(page)

    _assert_printable(charts)
    assert page.get_attribute("html", "data-theme") == "light"
    assert {c["font"] for c in charts}.isdisjoint(dark_fonts), "charts redrawn with dark text for paper"
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"

    page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    assert page.get_attribute("html", "data-theme") == "dark"  # the screen gets its theme back
    login_cookie.assert_clean()


def test_chromium_prints_it_to_a_pdf_of_several_pages(login_cookie, analysed, tmp_path):
    page = _open_report(login_cookie)
    # Registered after capacity-print.js's own listener, so it sees the widths the charts print at.
    page.evaluate("() => { window.__printed = []; window.addEventListener('beforeprint', () => window.__printed.push("
                  "Array.from(document.querySelectorAll('.chart[data-figure]')).map(el => el._fullLayout.width))); }")

    pdf = page.pdf(path=str(tmp_path / "capacity-review.pdf"), prefer_css_page_size=True, print_background=True)

    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert _pdf_pages(pdf) >= 2
    # Chromium sent beforeprint, the charts were drawn at the printed width, and got their
    # screen size back after printing.
    printed = page.evaluate("() => window.__printed")
    assert len(printed) == 1, printed
    width = page.evaluate("() => window.hrw.printCharts.width")
    assert width <= PAGE["width"]
    assert printed[0] == [width] * len(printed[0]), printed
    assert page.evaluate("() => Array.from(document.querySelectorAll('.chart[data-figure]')).map(el => el.layout.width)") == [None] * len(printed[0])
    page.wait_for_function("() => Array.from(document.querySelectorAll('.chart[data-figure]'))"
                           ".every(el => Math.abs(el._fullLayout.width - el.clientWidth) <= 1 && el.clientWidth < 900)")
    print(f"\ncapacity review PDF: {tmp_path / 'capacity-review.pdf'} ({len(pdf)} bytes, {_pdf_pages(pdf)} pages)")
    login_cookie.assert_clean()


def test_the_print_button_shows_only_when_something_is_computed(login_cookie, db):
    page = login_cookie.page
    page.goto(login_cookie.origin + REPORT, wait_until="networkidle")
    assert "Not computed yet for this window" in page.inner_text("main")
    assert page.locator("[data-print]").count() == 0

    build_analysed_fleet(now=timezone.now(), hours=48)
    page.goto(login_cookie.origin + REPORT, wait_until="networkidle")
    assert page.locator("[data-print]").is_visible()
    login_cookie.assert_clean()
