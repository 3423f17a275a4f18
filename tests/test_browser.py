"""The pages in a real headless Chromium (Debian's, driven by Playwright), at phone width."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail

from tests import services
from tests.conftest import read_sign_in_mail

CHROMIUM = "/usr/bin/chromium"

if not shutil.which(CHROMIUM):
    if services.REQUIRED:
        raise RuntimeError(f"Chromium is not installed at {CHROMIUM} and REQUIRE_SERVICES=1")
    pytest.skip(f"Chromium is not installed at {CHROMIUM}", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
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
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(live_server.url) else outside.append(request.url)
        ),
    )
    page.outside_requests = outside
    yield page
    context.close()


def _no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_sign_in_with_the_code_in_a_browser(page: Any, live_server: Any, settings: Any) -> None:
    settings.PASSWORDLESS_SITE_URL = live_server.url
    page.goto(f"{live_server.url}/auth/login/")
    assert page.title() == "Sign in · Passwordless"
    assert _no_horizontal_scroll(page)
    page.get_by_label("Email address").fill("alice@example.org")
    page.get_by_role("button", name="Email me a sign-in code").click()
    page.wait_for_url("**/auth/code/")

    code_input = page.get_by_label("Code")
    assert code_input.get_attribute("autocomplete") == "one-time-code"
    assert code_input.get_attribute("inputmode") == "numeric"
    code_input.fill("12ab56")
    page.get_by_role("button", name="Sign in").click()
    assert "Enter the 6-digit code from the email." in page.content()

    delivered = read_sign_in_mail(mail.outbox[-1])
    page.get_by_label("Code").fill(delivered.code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_text("Signed in as alice@example.org").is_visible()
    assert _no_horizontal_scroll(page)
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_text("You're signed out.").is_visible()
    assert page.outside_requests == []


def test_sign_in_with_the_link_in_a_browser(page: Any, live_server: Any, settings: Any) -> None:
    settings.PASSWORDLESS_SITE_URL = live_server.url
    page.goto(f"{live_server.url}/auth/login/")
    page.get_by_label("Email address").fill("bob@example.org")
    page.get_by_role("button", name="Email me a sign-in code").click()
    page.wait_for_url("**/auth/code/")

    delivered = read_sign_in_mail(mail.outbox[-1])
    page.goto(delivered.link)
    # The token left the address bar.
    assert page.url == f"{live_server.url}/auth/link/"
    assert page.get_by_role("heading", name="Sign in as b***@example.org?").is_visible()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_text("Signed in as bob@example.org").is_visible()
    assert page.outside_requests == []


def test_cross_device_approval_in_two_browsers(
    browser: Any, live_server: Any, settings: Any
) -> None:
    settings.PASSWORDLESS_SITE_URL = live_server.url
    laptop = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    phone = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
    try:
        laptop.goto(f"{live_server.url}/auth/login/")
        laptop.get_by_label("Email address").fill("carol@example.org")
        laptop.get_by_role("button", name="Email me a sign-in code").click()
        laptop.wait_for_url("**/auth/code/")
        number = laptop.locator(".match-number").inner_text()

        phone.goto(read_sign_in_mail(mail.outbox[-1]).link)
        assert phone.get_by_role("heading", name="Approve the sign-in on the device that asked?")
        phone.get_by_role("button", name=number, exact=True).click()
        assert phone.get_by_text("The device that asked is signing in now.").is_visible()

        # The laptop's script notices the approval by itself and lands signed in.
        laptop.wait_for_url(f"{live_server.url}/", timeout=15000)
        assert laptop.get_by_text("Signed in as carol@example.org").is_visible()
        phone.goto(f"{live_server.url}/")
        assert phone.get_by_role("link", name="Sign in").is_visible()
    finally:
        laptop.context.close()
        phone.context.close()
