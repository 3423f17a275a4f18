"""Step-up ("sudo mode") in a real headless Chromium: a session whose sign-in is older than
the window ends another session only after confirming it's you with an emailed code.

The live server runs in this process, so the test moves the app's clock
(``passwordless.clock``) past the window instead of waiting. With ``SCREENSHOTS_DIR`` set,
the step-up page is saved at phone and desktop width (docs/screenshots/).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.core import mail

from passwordless.models import UserSession
from tests.browser.support import _AXE_RUN, AXE, BLOCKING, DESKTOP, KINDS, PHONE, screenshots_dir
from tests.conftest import Delivered, FrozenClock
from tests.test_browser import Tabs, _sign_in, axe, browser, expect, tabs

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page

__all__ = ["axe", "browser", "tabs"]  # fixtures shared with tests/test_browser.py

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
EMAIL = "grace@example.org"
_CODE = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)


def _step_up_code() -> str:
    message = [m for m in mail.outbox if EMAIL in m.to][-1]
    match = _CODE.search(str(message.body))
    assert match, message.body
    # CODE_IN_SUBJECT (issue 18): the subject starts with the code.
    subject = f"{match.group(1)} is your code to confirm it's you on "
    assert message.subject.startswith(subject), message.subject
    return match.group(1)


def _two_devices(
    tabs: Tabs, site: str, mailbox: Mailbox, kind: str = "desktop"
) -> tuple[Page, Page]:
    laptop = tabs.open(kind, bypass_csp=True)
    phone = tabs.open(PHONE)
    _sign_in(laptop, site, mailbox, EMAIL)
    _sign_in(phone, site, mailbox, EMAIL)
    return laptop, phone


def _end_the_phone(laptop: Page, site: str) -> None:
    laptop.goto(f"{site}/auth/sessions/")
    laptop.locator("li.session").filter(has_not_text="This device").get_by_role("button").click()


def test_ending_another_session_after_the_window_asks_to_confirm_by_code(
    tabs: Tabs, site: str, mailbox: Mailbox, settings: Any, frozen_clock: FrozenClock
) -> None:
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "10/m"
    laptop, phone = _two_devices(tabs, site, mailbox)
    frozen_clock.advance(minutes=6)  # past the 5 minutes a sign-in counts as a proof

    _end_the_phone(laptop, site)
    laptop.wait_for_url(re.compile(r"/auth/reauthenticate/\?next=%2Fauth%2Fsessions%2F$"))
    expect(laptop.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    expect(laptop.get_by_role("status")).to_contain_text("Nothing was changed yet")
    assert UserSession.objects.filter(ended_at=None).count() == 2  # nothing ended

    laptop.get_by_role("button", name="Email me a code").click()
    expect(laptop.get_by_role("status")).to_contain_text("We've emailed a code to g***@")
    laptop.get_by_label("Code").fill("000000" if _step_up_code() != "000000" else "111111")
    laptop.get_by_role("button", name="Confirm").click()
    expect(laptop.get_by_role("alert")).to_contain_text("That code isn't right.")
    laptop.get_by_label("Code").fill(_step_up_code())
    laptop.get_by_role("button", name="Confirm").click()

    laptop.wait_for_url(f"{site}/auth/sessions/")
    expect(laptop.get_by_role("status")).to_have_text("Thanks, that's confirmed.")
    expect(laptop.locator("li.session")).to_have_count(2)  # the first click was not replayed
    _end_the_phone(laptop, site)
    expect(laptop.get_by_role("status")).to_have_text("Signed out on Chrome on Android.")
    expect(laptop.locator("li.session")).to_have_count(1)
    phone.goto(f"{site}/auth/sessions/")
    assert phone.url.startswith(f"{site}/auth/login/?next=")


def test_a_fresh_sign_in_ends_another_session_without_asking(
    tabs: Tabs, site: str, mailbox: Mailbox, settings: Any
) -> None:
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "10/m"
    laptop, _phone = _two_devices(tabs, site, mailbox)
    _end_the_phone(laptop, site)
    expect(laptop.get_by_role("status")).to_have_text("Signed out on Chrome on Android.")


@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_the_step_up_page_passes_axe(
    tabs: Tabs,
    site: str,
    mailbox: Mailbox,
    settings: Any,
    frozen_clock: FrozenClock,
    axe: Path,
    kind: str,
) -> None:
    """No serious or critical axe-core issue, and no sideways scroll, before and after the
    code is sent; saved as ``<kind>-16-reauthenticate.png`` with ``SCREENSHOTS_DIR``."""
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "10/m"
    laptop, _phone = _two_devices(tabs, site, mailbox, kind)
    frozen_clock.advance(minutes=6)
    _end_the_phone(laptop, site)
    expect(laptop.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    _audit(laptop)
    laptop.get_by_role("button", name="Email me a code").click()
    expect(laptop.get_by_label("Code")).to_be_visible()
    _audit(laptop)
    shots = screenshots_dir()
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        laptop.screenshot(path=shots / f"{KINDS[kind].name}-16-reauthenticate.png", full_page=True)
    assert kind in (PHONE.name, DESKTOP.name)


def _audit(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.add_script_tag(path=AXE)
    violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], blocking
