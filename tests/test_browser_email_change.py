"""Changing the email address in a real headless Chromium, as a person would: sign in,
change the address, read both mails (the new address's code, the old address's notice
with its undo link), confirm, sign out, sign in with the new address; then undo it from
the old address's link in another browser.

With ``SCREENSHOTS_DIR`` set (``docs/screenshots``), the email page and the code page are
saved at phone and desktop width, named ``<kind>-17-email*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.core import mail

from accounts.models import User
from tests import test_browser
from tests.browser.support import AXE, screenshots_dir
from tests.conftest import Delivered
from tests.test_browser import Tabs, _expect_signed_in, _sign_in, expect

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.django_db(transaction=True)

# The fixtures of the sign-in flow's browser tests: one Chromium, and tabs of any kind.
browser = test_browser.browser
tabs = test_browser.tabs

Mailbox = Callable[..., Delivered]
OLD, NEW = "alice@example.org", "new.alice@example.org"
UNDO = re.compile(r"(https?://\S+/auth/email/undo/[A-Za-z0-9_-]+/)")
_AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", "));
}"""


def _look(page: Page, kind: str, name: str) -> None:
    """No serious accessibility issue (when axe-core is installed), no sideways scroll,
    and a screenshot when asked for."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    if AXE.is_file() and "no-js" not in kind:
        page.add_script_tag(path=AXE)
        assert page.evaluate(_AXE_RUN) == [], name
    shots = screenshots_dir()
    if shots is not None and kind in ("desktop", "phone"):
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / f"{kind}-17-{name}.png", full_page=True)


def _notice_to_old() -> tuple[str, str]:
    """The old address's notice: its text, and the undo link in it."""
    notices = [m for m in mail.outbox if m.to == [OLD] and "was changed" in m.subject]
    assert len(notices) == 1, [(m.to, m.subject) for m in mail.outbox]
    body = str(notices[0].body)
    link = UNDO.search(body)
    assert link, body
    return body, link.group(1)


@pytest.mark.parametrize("kind", ["desktop", "phone", "phone-no-js"])
def test_change_the_address_read_both_mails_and_sign_in_with_the_new_one(
    tabs: Tabs, site: str, mailbox: Mailbox, settings: Any, kind: str
) -> None:
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "100/m"
    # axe-core is injected as a script: only for the pages of the scripted kinds.
    page = tabs.open(kind, bypass_csp=kind != "phone-no-js")
    _sign_in(page, site, mailbox, OLD)

    page.get_by_role("link", name="Email address").click()
    page.wait_for_url(f"{site}/auth/email/")
    expect(page.get_by_role("heading", name="Email address")).to_be_visible()
    expect(page.locator(".lead")).to_contain_text(OLD)
    _look(page, kind, "email")

    page.get_by_label("New email address").fill("New.Alice@Example.org")
    page.get_by_role("button", name="Send a code to the new address").click()
    page.wait_for_url(f"{site}/auth/email/code/")
    expect(page.get_by_role("heading", name="Check your new address")).to_be_visible()
    expect(page.locator(".lead")).to_have_text("We sent a 6-digit code to n***@example.org.")
    _look(page, kind, "email-code")

    # The new address's mail: a code and a link; nothing has changed yet.
    delivered = mailbox(NEW)
    assert "new email address" in delivered.message.subject
    assert User.objects.get().email == OLD
    page.get_by_label("Code").fill(delivered.code)
    page.get_by_role("button", name="Change my address").click()
    page.wait_for_url(f"{site}/auth/email/")
    expect(page.get_by_role("status")).to_contain_text(f"Your email address is now {NEW}")
    expect(page.locator(".lead")).to_contain_text(NEW)

    # The old address's notice, at once, with the undo link.
    body, undo_link = _notice_to_old()
    assert "changed to n***@example.org" in body and NEW not in body

    page.goto(f"{site}/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{site}/auth/login/")
    _sign_in(page, site, mailbox, NEW)

    # The old address's reader, in another browser, undoes it: everyone is signed out.
    other = tabs.open(kind, bypass_csp=kind != "phone-no-js")
    other.goto(undo_link)
    other.wait_for_url(f"{site}/auth/email/undo/")  # the token left the address bar
    expect(other.get_by_role("heading", name="Put back a***@example.org?")).to_be_visible()
    _look(other, kind, "email-undo")
    assert User.objects.get().email == NEW  # opening it changed nothing
    other.get_by_role("button", name="Undo the change").click()
    expect(other.get_by_role("heading", name="Your address is back")).to_be_visible()
    assert User.objects.get().email == OLD
    page.goto(f"{site}/")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    _sign_in(page, site, mailbox, OLD)
    _expect_signed_in(page, site, OLD)
