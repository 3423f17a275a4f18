"""The HTML part of the emails in a real headless Chromium at a phone's width (375 px), in
light and in dark mode: what a phone's mail app, a WebKit or Blink view, shows.

The mails are the ones a real SMTP server on loopback received (``tests.test_mail_format``),
loaded as they arrived. With ``SCREENSHOTS_DIR`` set, the sign-in email and the notice of a
changed address are saved there (``phone-18-mail.png``, ``phone-dark-18-mail.png``,
``phone-18-notice.png``, ``phone-dark-18-notice.png``; docs/screenshots/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.support import _AXE_RUN, BLOCKING, KINDS, PHONE, Kind, screenshots_dir
from tests.stack import SMTPServer
from tests.test_browser import axe, browser
from tests.test_mail_format import _html, _secrets, _sent, _text, sink

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser, Page, Route

__all__ = ["axe", "browser", "sink"]  # fixtures shared with the modules they come from

pytestmark = pytest.mark.django_db(transaction=True)

PHONE_DARK = KINDS["phone-dark"]
#: Computed colours of the layout's page, card and text, light and dark (base.html).
LOOKS = {
    PHONE.name: ("rgb(246, 247, 249)", "rgb(255, 255, 255)", "rgb(29, 35, 48)"),
    PHONE_DARK.name: ("rgb(17, 19, 24)", "rgb(28, 32, 41)", "rgb(232, 234, 239)"),
}
SCREENSHOTS = {"login": "mail", "email_changed": "notice"}


def _open(browser: Browser, kind: Kind, html: str) -> tuple[Page, list[str]]:
    """The mail's HTML in a fresh page; every request it makes is refused and recorded."""
    context = browser.new_context(
        viewport={"width": kind.width, "height": kind.height},
        is_mobile=kind.mobile,
        has_touch=kind.mobile,
        color_scheme="dark" if kind.dark else "light",
    )
    fetched: list[str] = []

    def refuse(route: Route) -> None:
        fetched.append(route.request.url)
        route.abort()

    context.route("**/*", refuse)
    page = context.new_page()
    page.set_content(html)
    return page, fetched


def _colour(page: Page, selector: str, prop: str) -> str:
    value: str = page.eval_on_selector(
        selector, f"(el) => getComputedStyle(el).getPropertyValue('{prop}')"
    )
    return value


def _save(page: Page, kind: Kind, name: str) -> None:
    shots = screenshots_dir()
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / f"{kind.name}-18-{name}.png", full_page=True)


@pytest.mark.parametrize("kind", [PHONE, PHONE_DARK], ids=lambda k: k.name)
@pytest.mark.parametrize("mail", ["login", "reauthenticate", "change_email", "email_changed"])
def test_the_mail_reads_well_on_a_phone_in_light_and_dark(
    browser: Browser, sink: SMTPServer, axe: Path, kind: Kind, mail: str
) -> None:
    message = _sent(sink, mail)
    page, fetched = _open(browser, kind, _html(message))
    try:
        page_bg, card_bg, text = LOOKS[kind.name]
        assert _colour(page, "body", "background-color") == page_bg
        assert _colour(page, ".pl-card", "background-color") == card_bg
        assert _colour(page, ".pl-card-cell", "color") == text
        # The preheader is for the inbox's list only: hidden here, to screen readers too.
        assert page.locator(".pl-preheader").is_hidden()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        card = page.locator(".pl-card").bounding_box()
        assert card is not None and card["width"] <= kind.width - 20

        code, _ = _secrets(_text(message))
        if code is not None:
            shown = page.locator(".pl-code")
            assert shown.inner_text() == code and shown.is_visible()
            assert _colour(page, ".pl-code", "font-size") == "28px"  # the phone size
        buttons = page.locator("a.pl-button")
        if mail != "reauthenticate":
            box = buttons.bounding_box()
            assert box is not None and box["height"] >= 44, box  # a finger-sized target
            label, background = buttons.inner_text(), _colour(page, "a.pl-button", "color")
            assert label and background != _colour(page, "a.pl-button", "background-color")
        else:
            assert buttons.count() == 0

        page.add_script_tag(path=str(axe))
        violations = [v for v in page.evaluate(_AXE_RUN) if v["impact"] in BLOCKING]
        assert violations == [], violations
        assert fetched == [], "the mail loads nothing: no images, fonts or trackers"
        if mail in SCREENSHOTS:
            _save(page, kind, SCREENSHOTS[mail])
    finally:
        page.context.close()
