"""Languages in a real headless Chromium (issue 18): a browser that asks for German
(Accept-Language, from Playwright's ``locale``) signs in on German pages with a German
email, and one that asks for French gets French ones."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth import get_user_model
from django.utils import translation

from passwordless.models import LoginRequest
from tests import services
from tests.conftest import Delivered

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"

if not shutil.which(CHROMIUM):
    if services.REQUIRED:
        raise RuntimeError(f"Chromium is not installed at {CHROMIUM} and REQUIRE_SERVICES=1")
    pytest.skip(f"Chromium is not installed at {CHROMIUM}", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.django_db(transaction=True)


def words(language: str, message: str) -> str:
    """``message`` in ``language``, as the catalogue has it (and not the English one)."""
    with translation.override(language):
        text = translation.gettext(message)
    assert text != message, f"{message!r} has no {language} translation"
    return text


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _page(browser: Browser, locale: str) -> Page:
    context = browser.new_context(locale=locale, viewport={"width": 375, "height": 812})
    return context.new_page()


def _ask(page: Page, site: str, language: str, email: str) -> None:
    page.goto(f"{site}/auth/login/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    page.get_by_label(words(language, "Email address")).fill(email)
    page.get_by_role("button", name=words(language, "Email me a sign-in code")).click()
    page.wait_for_url(f"{site}/auth/code/")
    expect(page.get_by_role("heading", name=words(language, "Check your email"))).to_be_visible()


def test_a_german_browser_signs_in_in_german(
    browser: Browser, site: str, mailbox: Callable[..., Delivered]
) -> None:
    email = "jonas@example.com"
    get_user_model()._default_manager.create_user(email=email)
    page = _page(browser, "de-DE")
    _ask(page, site, "de", email)
    assert LoginRequest.objects.get(email=email).locale == "de"
    sent = mailbox(email)
    # The email is German too: its greeting, its text and its HTML part.
    assert words("de", "Hello,") in sent.message.body
    html = str(sent.message.alternatives[0][0])
    assert words("de", "Or sign in with one click:") in html
    page.get_by_label("Code", exact=True).fill(sent.code)  # "Code" in German too
    page.get_by_role("button", name=words("de", "Sign in"), exact=True).click()
    page.wait_for_url(f"{site}/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    page.context.close()


def test_a_french_browser_gets_french_pages_and_mail(
    browser: Browser, site: str, mailbox: Callable[..., Delivered]
) -> None:
    email = "camille@example.com"
    get_user_model()._default_manager.create_user(email=email)
    page = _page(browser, "fr-FR")
    _ask(page, site, "fr", email)
    sent = mailbox(email)
    assert words("fr", "Hello,") in sent.message.body
    assert LoginRequest.objects.get(email=email).locale == "fr"
    page.context.close()
