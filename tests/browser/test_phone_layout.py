"""The overview, group, worker and alerts pages on a 390-px phone (390x844, as an iPhone 12-15):
no horizontal scroll, table rows shown as cards with their column names, and the key values visible
in full (inside the viewport and not clipped by an ancestor's overflow)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.browser.pages_fleet import build_pages_fleet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}

# Every element wider than the viewport, or reaching past its right edge: what makes a page scroll.
OVERFLOW = """() => {
  const limit = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) { continue; }
    if (r.right > limit + 0.5 || r.left < -0.5) {
      out.push(`${el.tagName.toLowerCase()}.${el.className} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
    }
  }
  return out.slice(0, 15);
}"""

# True when the element's box is inside the viewport horizontally and no ancestor clips it (an
# overflow other than visible that is narrower than the element's content), and its text fits.
VISIBLE_IN_FULL = """(el) => {
  const limit = document.documentElement.clientWidth;
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0 || r.left < -0.5 || r.right > limit + 0.5) {
    return `outside the viewport: [${Math.round(r.left)}, ${Math.round(r.right)}] of ${limit}`;
  }
  if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== "inline") {
    return `its text is cut: ${el.scrollWidth} > ${el.clientWidth}`;
  }
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
    const cs = getComputedStyle(a);
    if (cs.overflowX !== "visible") {
      const ar = a.getBoundingClientRect();
      if (r.left < ar.left - 0.5 || r.right > ar.right + 0.5) { return `clipped by ${a.tagName}.${a.className}`; }
      if (a.scrollWidth > a.clientWidth + 1) { return `inside a horizontal scroller ${a.tagName}.${a.className}`; }
    }
  }
  return "";
}"""


@pytest.fixture
def fleet(make_emulator: Any, browser_user: Any) -> dict[str, Any]:
    from dashboard.roles import set_role

    set_role(browser_user, "operator")  # the widest pages: Acknowledge, Retry, the maintenance form
    return build_pages_fleet(make_emulator)


def _open_on_a_phone(watch: Any, path: str) -> Any:
    page = watch.page
    page.set_viewport_size(PHONE)
    response = page.goto(watch.origin + path, wait_until="networkidle")
    assert response is not None and response.status == 200, path
    return page


def _assert_no_horizontal_scroll(page: Any) -> None:
    scroll = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert scroll[1] == PHONE["width"], scroll
    assert scroll[0] <= scroll[1], (scroll, page.evaluate(OVERFLOW))


def _assert_visible_in_full(page: Any, selector: str, *, at_least: int = 1) -> None:
    elements = page.query_selector_all(selector)
    assert len(elements) >= at_least, f"{selector}: {len(elements)} found"
    for el in elements:
        problem = el.evaluate(VISIBLE_IN_FULL)
        assert problem == "", f"{selector} {el.text_content()!r}: {problem}"


def _assert_rows_are_cards(page: Any, table: str) -> None:
    """The rows of ``table`` stack as blocks with each cell named by its column (data-label)."""
    info = page.evaluate(
        """(sel) => {
          const rows = Array.from(document.querySelectorAll(sel + " tbody tr"));
          const head = document.querySelector(sel + " thead");
          return {rows: rows.length, display: rows.map(r => getComputedStyle(r).display),
                  head: head ? head.getBoundingClientRect().height : 0,
                  labels: rows.flatMap(r => Array.from(r.querySelectorAll("td[data-label]")).map(td => getComputedStyle(td, "::before").content))};
        }""",
        table,
    )
    assert info["rows"] >= 1, info
    assert set(info["display"]) <= {"block", "grid", "flex"}, info["display"]
    assert info["head"] <= 1, "the header row is hidden (each cell carries its label)"
    assert info["labels"] and all(label not in ("none", "normal", '""') for label in info["labels"]), info["labels"]


def test_the_overview_fits_a_phone(login_cookie, fleet):
    page = _open_on_a_phone(login_cookie, "/")
    _assert_no_horizontal_scroll(page)
    _assert_rows_are_cards(page, "[data-live-page=overview] .table-wrap table")
    _assert_visible_in_full(page, ".total .value", at_least=6)
    _assert_visible_in_full(page, "[data-live-page=overview] tbody th a", at_least=4)  # group names, in full
    _assert_visible_in_full(page, "[data-live-page=overview] tbody .badge", at_least=4)  # health
    _assert_visible_in_full(page, "[data-live-page=overview] tbody td.num", at_least=4)  # online / total, p95
    _assert_visible_in_full(page, ".alert-item .badge")
    assert fleet["group"].name in page.locator("[data-live-page=overview] tbody").inner_text()

    # On a wider screen the same rows are a table again, under their header.
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_function("() => innerWidth === 1280")
    assert page.evaluate("() => getComputedStyle(document.querySelector('[data-live-page=overview] tbody tr')).display") == "table-row"
    assert page.locator("[data-live-page=overview] thead").is_visible()
    login_cookie.assert_clean()


def test_the_group_page_fits_a_phone(login_cookie, fleet):
    page = _open_on_a_phone(login_cookie, f"/groups/{fleet['group'].pk}/")
    _assert_no_horizontal_scroll(page)
    _assert_rows_are_cards(page, "table[aria-describedby=members]")
    _assert_visible_in_full(page, "h1")
    _assert_visible_in_full(page, ".total .value", at_least=3)
    _assert_visible_in_full(page, "table[aria-describedby=members] tbody th a", at_least=2)  # worker names
    _assert_visible_in_full(page, "table[aria-describedby=members] tbody .badge", at_least=2)  # status
    _assert_visible_in_full(page, "table[aria-describedby=members] .sparkline", at_least=2)
    _assert_rows_are_cards(page, "[data-live-part=group-jobs] table")
    _assert_visible_in_full(page, "[data-live-part=group-jobs] tbody td.num", at_least=2)
    login_cookie.assert_clean()


def test_the_worker_page_fits_a_phone(login_cookie, fleet):
    page = _open_on_a_phone(login_cookie, f"/workers/{fleet['worker'].pk}/")
    _assert_no_horizontal_scroll(page)
    _assert_visible_in_full(page, "h1")
    _assert_visible_in_full(page, ".total .value", at_least=4)
    page.locator('[data-key="timeline"] .main-svg').first.wait_for()
    _assert_visible_in_full(page, '[data-key="timeline"] .main-svg')
    _assert_rows_are_cards(page, "[data-live-part=worker-changes] table")
    _assert_rows_are_cards(page, "[data-live-part=worker-jobs] table")
    _assert_visible_in_full(page, "[data-live-part=worker-jobs] tbody td.num", at_least=2)  # queue delay, duration
    _assert_visible_in_full(page, ".alert-item .badge")
    login_cookie.assert_clean()


def test_the_alerts_page_fits_a_phone(login_cookie, fleet):
    page = _open_on_a_phone(login_cookie, "/alerts/")
    _assert_no_horizontal_scroll(page)
    _assert_rows_are_cards(page, "[data-live-part=alert-lists] table")
    _assert_rows_are_cards(page, "[data-live-part=alert-emails] table")
    _assert_visible_in_full(page, "[data-live-part=alert-lists] tbody .badge", at_least=2)  # open / resolved
    _assert_visible_in_full(page, "[data-live-part=alert-lists] tbody a", at_least=2)  # group and worker links
    _assert_visible_in_full(page, "[data-live-part=alert-emails] tbody .badge")  # failed
    login_cookie.assert_clean()
