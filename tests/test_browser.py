"""The pages in a real headless Chromium (Debian's, driven by Playwright).

Each flow runs as a person would: on a phone (375 by 812) and a desktop (1280 by 800), some with
JavaScript off, and one pass through every page with axe-core, which can also save a
screenshot of each (``python -m tests.browser.screenshots``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.core import mail

from passwordless.models import UserSession
from tests import services
from tests.browser.support import (
    AXE,
    DESKTOP,
    INSTALL_AXE,
    KINDS,
    PHONE,
    SCREENS,
    SCREENSHOT_KINDS,
    Audit,
    Kind,
    screenshots_dir,
)
from tests.conftest import Delivered
from tests.helpers import wrong_code

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request

CHROMIUM = "/usr/bin/chromium"

if not shutil.which(CHROMIUM):
    if services.REQUIRED:
        raise RuntimeError(f"Chromium is not installed at {CHROMIUM} and REQUIRE_SERVICES=1")
    pytest.skip(f"Chromium is not installed at {CHROMIUM}", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make around it are plain synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def axe() -> Path:
    """axe-core, installed by npm into tests/browser: missing, it fails the run under CI."""
    if not AXE.is_file():
        message = f"axe-core is not installed at {AXE}; run `{INSTALL_AXE}`"
        if services.REQUIRED:
            pytest.fail(f"{message} (REQUIRE_SERVICES=1)")
        pytest.skip(message)
    return AXE


class Tabs:
    """Opens a page in a new browser context (its own cookies), of any kind.

    Every request any of them makes is recorded unless it goes to the test server.
    """

    def __init__(self, browser: Browser, site: str) -> None:
        self.browser = browser
        self.site = site
        self.contexts: list[BrowserContext] = []
        self.outside: list[str] = []

    def open(self, kind: Kind | str = PHONE, *, bypass_csp: bool = False) -> Page:
        context = (KINDS[kind] if isinstance(kind, str) else kind).open(
            self.browser, bypass_csp=bypass_csp
        )
        context.on("request", self._record)
        self.contexts.append(context)
        return context.new_page()

    def _record(self, request: Request) -> None:
        if not request.url.startswith(self.site):
            self.outside.append(request.url)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def tabs(browser: Browser, site: str) -> Iterator[Tabs]:
    opened = Tabs(browser, site)
    yield opened
    opened.close()
    assert opened.outside == [], "requests left the test server"


def _no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _start(page: Page, site: str, mailbox: Mailbox, email: str) -> Delivered:
    """Ask for a sign-in email and land on the code page; the email that was sent."""
    page.goto(f"{site}/auth/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in code").click()
    page.wait_for_url(f"{site}/auth/code/")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    return mailbox(email)


def _enter_code(page: Page, code: str) -> None:
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _expect_signed_in(page: Page, site: str, email: str) -> None:
    page.wait_for_url(f"{site}/")
    expect(page.get_by_role("heading", name="You're signed in")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()


def _sign_in(page: Page, site: str, mailbox: Mailbox, email: str) -> None:
    _enter_code(page, _start(page, site, mailbox, email).code)
    _expect_signed_in(page, site, email)


def _expect_signed_out(page: Page, site: str) -> None:
    page.goto(f"{site}/")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    page.goto(f"{site}/auth/sessions/")
    assert page.url.startswith(f"{site}/auth/login/?next=")


@pytest.mark.parametrize("kind", ["desktop", "phone", "phone-no-js"])
def test_sign_in_with_the_code(tabs: Tabs, site: str, mailbox: Mailbox, kind: str) -> None:
    page = tabs.open(kind)
    page.goto(f"{site}/auth/login/")
    assert page.title() == "Sign in · Passwordless"
    assert _no_horizontal_scroll(page)
    page.get_by_label("Email address").fill("alice@example.org")
    page.get_by_role("button", name="Email me a sign-in code").click()
    page.wait_for_url(f"{site}/auth/code/")
    expect(page.locator(".lead")).to_contain_text("alice@example.org")
    assert _no_horizontal_scroll(page)

    code_input = page.get_by_label("Code")
    assert code_input.get_attribute("autocomplete") == "one-time-code"
    assert code_input.get_attribute("inputmode") == "numeric"
    _enter_code(page, "12ab56")
    expect(page.get_by_text("Enter the 6-digit code from the email.")).to_be_visible()

    _enter_code(page, mailbox("alice@example.org").code)
    _expect_signed_in(page, site, "alice@example.org")
    assert _no_horizontal_scroll(page)


@pytest.mark.parametrize("kind", ["phone", "desktop-no-js"])
def test_sign_in_with_the_link_in_the_same_browser(
    tabs: Tabs, site: str, mailbox: Mailbox, kind: str
) -> None:
    page = tabs.open(kind)
    delivered = _start(page, site, mailbox, "bob@example.org")
    page.goto(delivered.link)
    # The token left the address bar.
    assert page.url == f"{site}/auth/link/"
    expect(page.get_by_role("heading", name="Sign in as b***@example.org?")).to_be_visible()
    page.get_by_role("button", name="Sign in").click()
    _expect_signed_in(page, site, "bob@example.org")


@pytest.mark.parametrize("javascript", [True, False], ids=["scripts", "no-scripts"])
def test_cross_device_approval_in_two_browsers(
    tabs: Tabs, site: str, mailbox: Mailbox, javascript: bool
) -> None:
    laptop = tabs.open("desktop" if javascript else "desktop-no-js")
    phone = tabs.open("phone" if javascript else "phone-no-js")
    delivered = _start(laptop, site, mailbox, "carol@example.org")
    number = laptop.locator(".match-number").inner_text()
    assert number.isdigit()
    if not javascript:
        # The waiting page refreshes itself instead of polling.
        expect(laptop.locator('meta[http-equiv="refresh"]')).to_have_count(1)

    phone.goto(delivered.link)
    expect(
        phone.get_by_role("heading", name="Did you ask to sign in on another device?")
    ).to_be_visible()
    number_field = phone.get_by_label("Number shown on the device that asked")
    expect(number_field).to_be_visible()
    number_field.fill(number)
    phone.get_by_role("button", name="Approve", exact=True).click()
    expect(phone.get_by_role("heading", name="Approved")).to_be_visible()
    expect(phone.get_by_text("The device that asked is signing in now.")).to_be_visible()

    # The waiting page notices the approval by itself (a poll, or its refresh every 10 s).
    laptop.wait_for_url(f"{site}/", timeout=20_000)
    _expect_signed_in(laptop, site, "carol@example.org")
    # Approving signed the phone in nowhere.
    _expect_signed_out(phone, site)


def test_resend_sends_a_new_code(tabs: Tabs, site: str, mailbox: Mailbox, settings: Any) -> None:
    page = tabs.open(PHONE)
    first = _start(page, site, mailbox, "dave@example.org")
    resend = page.get_by_role("button", name="send a new code")

    # One email a minute per address: asking again at once is refused, with the wait.
    resend.click()
    expect(page.get_by_role("alert")).to_contain_text("Too many attempts. Try again in")

    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "5/m"
    resend.click()
    page.wait_for_url(f"{site}/auth/code/")
    expect(page.get_by_role("status").first).to_contain_text(
        "We've sent a new email with a new code and link."
    )
    second = mailbox("dave@example.org")
    assert second.link != first.link
    assert len([m for m in mail.outbox if "dave@example.org" in m.to]) == 2
    _enter_code(page, second.code)
    _expect_signed_in(page, site, "dave@example.org")


def test_a_wrong_code_then_the_right_one(tabs: Tabs, site: str, mailbox: Mailbox) -> None:
    page = tabs.open(DESKTOP)
    delivered = _start(page, site, mailbox, "erin@example.org")
    _enter_code(page, wrong_code(delivered.code))
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "That code isn't right. Check the email and try again. 4 attempts left."
    )
    assert page.url == f"{site}/auth/code/"
    expect(page.get_by_label("Code")).to_have_value("")

    _enter_code(page, delivered.code)
    _expect_signed_in(page, site, "erin@example.org")


def test_sign_out(tabs: Tabs, site: str, mailbox: Mailbox) -> None:
    page = tabs.open(PHONE)
    _sign_in(page, site, mailbox, "frank@example.org")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{site}/auth/login/")
    expect(page.get_by_role("status")).to_have_text("You're signed out.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    _expect_signed_out(page, site)
    # Ended on the server, not only forgotten by the browser.
    assert UserSession.objects.filter(ended_at__isnull=True).count() == 0


def test_the_sessions_page_ends_another_session(
    tabs: Tabs, site: str, mailbox: Mailbox, settings: Any
) -> None:
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "5/m"
    laptop = tabs.open(DESKTOP)
    phone = tabs.open(PHONE)
    _sign_in(laptop, site, mailbox, "grace@example.org")
    _sign_in(phone, site, mailbox, "grace@example.org")

    laptop.get_by_role("link", name="Your sessions").click()
    laptop.wait_for_url(f"{site}/auth/sessions/")
    expect(laptop.get_by_role("heading", name="Your sessions")).to_be_visible()
    rows = laptop.locator("li.session")
    expect(rows).to_have_count(2)
    this = rows.filter(has_text="This device")
    expect(this).to_contain_text("Chrome on Linux")
    other = rows.filter(has_not_text="This device")
    expect(other).to_contain_text("Chrome on Android")
    other.get_by_role("button").click()

    laptop.wait_for_url(f"{site}/auth/sessions/")
    expect(laptop.get_by_role("status")).to_have_text("Signed out on Chrome on Android.")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("This device")
    _expect_signed_out(phone, site)
    laptop.goto(f"{site}/")
    _expect_signed_in(laptop, site, "grace@example.org")


@pytest.mark.parametrize("kind", ["phone", "desktop", "phone-dark"])
def test_every_page_passes_axe(
    tabs: Tabs,
    site: str,
    mailbox: Mailbox,
    settings: Any,
    axe: Path,
    kind: str,
) -> None:
    """Each page and state of the flow, checked by axe-core: no serious or critical issue."""
    # The pass signs one address in twice, and resends once, within a minute.
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "10/m"
    shots = screenshots_dir() if KINDS[kind] in SCREENSHOT_KINDS else None
    audit = Audit(KINDS[kind], shots)
    # Two devices of this kind: the one that asks, and the one the email is opened on.
    laptop = tabs.open(kind, bypass_csp=True)
    phone = tabs.open(kind, bypass_csp=True)
    email = "ada@example.org"

    laptop.goto(f"{site}/")
    expect(laptop.get_by_role("heading", name="Welcome")).to_be_visible()
    audit(laptop, "welcome")
    laptop.get_by_role("link", name="Sign in").click()
    laptop.wait_for_url(f"{site}/auth/login/")
    audit(laptop, "sign-in")
    laptop.get_by_label("Email address").fill("ada@")
    laptop.get_by_role("button", name="Email me a sign-in code").click()
    expect(laptop.get_by_text("Enter a valid email address.")).to_be_visible()
    audit(laptop, "sign-in-invalid")

    first = _start(laptop, site, mailbox, email)
    expect(laptop.locator(".match-number")).to_be_visible()
    audit(laptop, "code")
    number = laptop.locator(".match-number").inner_text()
    phone.goto(first.link)
    expect(phone.get_by_label("Number shown on the device that asked")).to_be_visible()
    audit(phone, "approve")
    phone.get_by_label("Number shown on the device that asked").fill(number)
    phone.get_by_role("button", name="Approve", exact=True).click()
    expect(phone.get_by_role("heading", name="Approved")).to_be_visible()
    audit(phone, "approved")
    laptop.wait_for_url(f"{site}/", timeout=10_000)
    _expect_signed_in(laptop, site, email)
    audit(laptop, "home")
    phone.goto(first.link)
    expect(phone.get_by_role("heading", name="This link can't sign you in")).to_be_visible()
    expect(phone.get_by_role("alert")).to_contain_text("already been used")
    audit(phone, "link-used")

    second = _start(phone, site, mailbox, email)
    _enter_code(phone, wrong_code(second.code))
    expect(phone.get_by_role("alert")).to_contain_text("That code isn't right.")
    audit(phone, "code-wrong")
    phone.get_by_role("button", name="send a new code").click()
    expect(phone.get_by_role("status").first).to_contain_text("We've sent a new email")
    audit(phone, "code-resent")
    phone.goto(mailbox(email).link)
    expect(phone.get_by_role("heading", name="Sign in as a***@example.org?")).to_be_visible()
    audit(phone, "link-confirm")
    phone.get_by_role("button", name="Sign in").click()
    _expect_signed_in(phone, site, email)

    laptop.goto(f"{site}/auth/sessions/")
    expect(laptop.locator("li.session")).to_have_count(2)
    audit(laptop, "sessions")
    laptop.locator("li.session").filter(has_not_text="This device").get_by_role("button").click()
    expect(laptop.locator("li.session")).to_have_count(1)
    expect(laptop.get_by_role("status")).to_contain_text("Signed out on")
    audit(laptop, "session-ended")
    laptop.goto(f"{site}/")
    laptop.get_by_role("button", name="Sign out").click()
    expect(laptop.get_by_text("You're signed out.")).to_be_visible()
    audit(laptop, "signed-out")

    assert audit.seen == list(SCREENS)
