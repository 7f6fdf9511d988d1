"""Layout checks in a real browser: is an element on the screen without scrolling (inside the viewport, not
clipped by a scrolling ancestor, not covered), and does a page fit the screen's width."""

from __future__ import annotations

from typing import Any

# The element's box must lie inside the viewport and inside every ancestor that clips (overflow other than
# visible) at its current scroll position, and the point at its centre must hit it (not a sticky header).
_ON_SCREEN_JS = """el => {
  const r = el.getBoundingClientRect();
  const W = document.documentElement.clientWidth, H = document.documentElement.clientHeight;
  const box = {x: r.x, y: r.y, right: r.right, bottom: r.bottom, w: W, h: H};
  if (r.width === 0 || r.height === 0) return {ok: false, why: 'not rendered', box};
  if (r.left < -0.5 || r.top < -0.5 || r.right > W + 0.5 || r.bottom > H + 0.5)
    return {ok: false, why: 'outside the viewport', box};
  for (let p = el.parentElement; p && p !== document.documentElement; p = p.parentElement) {
    const s = getComputedStyle(p);
    if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
    const c = p.getBoundingClientRect();
    if (r.left < c.left - 0.5 || r.top < c.top - 0.5 || r.right > c.right + 0.5 || r.bottom > c.bottom + 0.5)
      return {ok: false, why: 'clipped by ' + p.tagName + '.' + p.className, box};
  }
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (!hit || !(hit === el || el.contains(hit)))
    return {ok: false, why: 'covered by ' + (hit ? hit.tagName + '.' + hit.className : 'nothing'), box};
  return {ok: true, why: '', box};
}"""

_PAGE_SCROLL_JS = """() => ({sw: document.documentElement.scrollWidth, sh: document.documentElement.scrollHeight,
  w: document.documentElement.clientWidth, h: document.documentElement.clientHeight,
  x: window.scrollX, y: window.scrollY})"""


def off_screen(page: Any, selector: str) -> list[str]:
    """Every element matching `selector` that a person could not tap without scrolling, with the reason."""
    problems = []
    loc = page.locator(selector)
    count = loc.count()
    assert count, f"nothing matches {selector}"
    for i in range(count):
        el = loc.nth(i)
        res = el.evaluate(_ON_SCREEN_JS)
        if not res["ok"]:
            problems.append(f"{selector}[{i}] {el.inner_text()[:30]!r}: {res['why']} {res['box']}")
    return problems


def page_extent(page: Any) -> dict[str, int]:
    """The document's scroll size against the viewport, and how far the window is scrolled."""
    out: dict[str, int] = page.evaluate(_PAGE_SCROLL_JS)
    return out


def sign_in(page: Any, base_url: str, email: str, password: str) -> None:
    """Through the real login form, as a person would."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, f"could not sign in as {email}"
