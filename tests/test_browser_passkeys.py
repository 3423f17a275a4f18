"""Passkeys in a real headless Chromium, with its virtual authenticator (the CDP ``WebAuthn``
domain): a person signs in by email, adds a passkey from the offer and from the passkeys
page, signs out, signs in with it through the button and through the autofill
(conditional UI), steps up with it before removing it, and removes it; and steps up with it
before ending the session of another device.

WebAuthn needs a secure context and a relying party id that is a host name, never an IP
address: the live server is opened as ``http://localhost:PORT`` (``site``), which is both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.core import mail

from passwordless.models import Passkey, UserSession
from passwordless.testing import FrozenClock
from tests.browser.support import screenshots_dir
from tests.conftest import CODE_RE, RateLimitClock, read_sign_in_mail
from tests.test_browser import Tabs, browser, expect, tabs  # noqa: F401  (fixtures)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "ada@example.org"
VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


def _with_authenticator(page: Page) -> Any:
    """Give the page's browser a platform authenticator that verifies its user."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
    return cdp, added["authenticatorId"]


def _code(email: str) -> str:
    for message in reversed(mail.outbox):
        if email in message.to and CODE_RE.search(str(message.body)):
            return read_sign_in_mail(message).code
    raise AssertionError(f"no sign-in email to {email}")


def _sign_in_by_email(page: Page, site: str) -> None:
    page.goto(f"{site}/auth/login/")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_role("button", name="Email me a sign-in code").click()
    page.wait_for_url(f"{site}/auth/code/")
    page.get_by_label("Code").fill(_code(EMAIL))
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{site}/")
    expect(page.get_by_role("heading", name="You're signed in")).to_be_visible()


def _sign_out(page: Page, site: str) -> None:
    page.goto(f"{site}/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{site}/auth/login/")  # then the autofill may sign in at once


def _shot(page: Page, kind: str, name: str) -> None:
    shots = screenshots_dir()
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / f"{kind}-{name}.png", full_page=True)


Clock = Callable[[], None]


@pytest.mark.parametrize("kind", ["desktop", "phone"])
def test_a_passkey_from_the_offer_to_its_removal(
    tabs: Tabs,  # noqa: F811
    site: str,
    rate_clock: RateLimitClock,
    frozen_clock: FrozenClock,
    kind: str,
) -> None:
    page = tabs.open(kind)
    cdp, authenticator = _with_authenticator(page)
    _sign_in_by_email(page, site)

    # The offer, right after the email sign-in: fresh, so no step-up is asked.
    offer = page.get_by_role("complementary", name="Sign in faster next time?")
    expect(offer).to_be_visible()
    _shot(page, kind, "15-passkey-offer")
    offer.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Added the passkey")).to_be_visible()
    expect(offer).to_have_count(0)
    assert Passkey.objects.get().user.email == EMAIL
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1
    assert credentials["credentials"][0]["isResidentCredential"] is True

    page.goto(f"{site}/auth/passkeys/")
    expect(page.get_by_role("heading", name="Your passkeys")).to_be_visible()
    expect(page.get_by_text("never used yet")).to_be_visible()
    _shot(page, kind, "15-passkeys")

    # Signed out, the autofill (conditional UI) signs in with it: nothing typed. Chromium's
    # virtual authenticator, simulating the person's presence, picks the one passkey as
    # soon as the page asks; a real browser shows it in the email field's suggestions.
    _sign_out(page, site)
    page.wait_for_url(f"{site}/")
    expect(page.get_by_text(f"Signed in as {EMAIL}")).to_be_visible()
    assert UserSession.objects.filter(method="passkey", ended_at=None).count() == 1
    expect(page.get_by_role("complementary", name="Sign in faster next time?")).to_have_count(0)

    # Where the browser has no autofill for passkeys, the button does it.
    page.add_init_script(
        "PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);"
    )
    _sign_out(page, site)
    expect(page.get_by_label("Email address")).to_have_attribute(
        "autocomplete", "username webauthn"
    )
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{site}/")
    expect(page.get_by_text(f"Signed in as {EMAIL}")).to_be_visible()
    assert UserSession.objects.filter(method="passkey").count() == 2
    assert UserSession.objects.filter(ended_at=None).count() == 1

    # Minutes later, removing it asks for a step-up, which the passkey gives.
    frozen_clock.advance(minutes=6)
    page.goto(f"{site}/auth/passkeys/")
    page.get_by_role("button", name="Remove").click()
    page.wait_for_url(f"{site}/auth/reauthenticate/?next=%2Fauth%2Fpasskeys%2F")
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url(f"{site}/auth/passkeys/")
    assert UserSession.objects.get(ended_at=None).reauthenticated_at is not None
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("Removed the passkey")).to_be_visible()
    expect(page.get_by_text("No passkeys yet.")).to_be_visible()
    assert not Passkey.objects.exists()


def test_a_passkey_added_from_the_passkeys_page(
    tabs: Tabs,  # noqa: F811
    site: str,
    rate_clock: RateLimitClock,
) -> None:
    page = tabs.open("desktop")
    _with_authenticator(page)
    _sign_in_by_email(page, site)
    page.get_by_role("button", name="Not now").click()
    expect(page.get_by_role("complementary", name="Sign in faster next time?")).to_have_count(0)
    page.get_by_role("link", name="Your passkeys").click()
    page.get_by_label("Name (optional)").fill("Work laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Added the passkey “Work laptop”.")).to_be_visible()
    expect(page.locator(".passkey .session-device")).to_have_text(["Work laptop"])

    # Renamed without any script.
    page.get_by_text("Rename").click()
    page.get_by_label("New name").fill("Laptop")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".passkey .session-device")).to_have_text(["Laptop"])
    assert Passkey.objects.get().name == "Laptop"

    # The same authenticator again: it already holds one for this account.
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("already has a passkey")).to_be_visible()
    assert Passkey.objects.count() == 1


def test_without_javascript_the_button_says_why(tabs: Tabs, site: str) -> None:  # noqa: F811
    page = tabs.open("phone-no-js")
    page.goto(f"{site}/auth/login/")
    expect(page.get_by_text("Passkeys need JavaScript")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_disabled()


def test_a_step_up_by_passkey_before_ending_another_session(
    tabs: Tabs,  # noqa: F811
    site: str,
    rate_clock: RateLimitClock,
    frozen_clock: FrozenClock,
    settings: Any,
) -> None:
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "10/m"  # two sign-ins by email
    laptop = tabs.open("desktop")
    _with_authenticator(laptop)
    _sign_in_by_email(laptop, site)
    offer = laptop.get_by_role("complementary", name="Sign in faster next time?")
    offer.get_by_role("button", name="Add a passkey").click()
    expect(laptop.get_by_text("Added the passkey")).to_be_visible()
    assert Passkey.objects.get().user.email == EMAIL
    current = UserSession.objects.get(ended_at=None)

    phone = tabs.open("phone")  # its own cookies, no authenticator: the other session
    _sign_in_by_email(phone, site)
    assert UserSession.objects.filter(ended_at=None).count() == 2

    # Minutes later, the laptop's sign-in (and the passkey it added) no longer count.
    frozen_clock.advance(minutes=6)
    laptop.goto(f"{site}/auth/sessions/")
    expect(laptop.locator("li.session")).to_have_count(2)
    other = laptop.locator("li.session").filter(has_not_text="This device")
    expect(other).to_contain_text("Chrome on Android")
    other.get_by_role("button", name="End").click()
    laptop.wait_for_url(f"{site}/auth/reauthenticate/?next=%2Fauth%2Fsessions%2F")
    expect(laptop.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    expect(laptop.get_by_text("Nothing was changed yet")).to_be_visible()
    expect(laptop.get_by_role("button", name="Email me a code")).to_be_visible()
    assert UserSession.objects.filter(ended_at=None).count() == 2  # nothing ended
    mails = len(mail.outbox)

    # The passkey answers (the virtual authenticator verifies the person); no code is sent.
    laptop.get_by_role("button", name="Use your passkey").click()
    laptop.wait_for_url(f"{site}/auth/sessions/")
    assert len(mail.outbox) == mails
    expect(laptop.get_by_role("status")).to_have_text("Thanks, that's confirmed.")
    expect(laptop.locator("li.session")).to_have_count(2)  # the first click was not replayed
    current.refresh_from_db()
    assert current.reauthenticated_at is not None

    other.get_by_role("button", name="End").click()
    expect(laptop.get_by_role("status")).to_have_text("Signed out on Chrome on Android.")
    expect(laptop.locator("li.session")).to_have_count(1)
    assert list(UserSession.objects.filter(ended_at=None)) == [current]

    # The phone's next page load finds it signed out.
    phone.goto(f"{site}/auth/sessions/")
    assert phone.url.startswith(f"{site}/auth/login/?next=")
    expect(phone.get_by_label("Email address")).to_be_visible()
