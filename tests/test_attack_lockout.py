"""Nobody can lock a person out of signing in: attacked over HTTP from other addresses.

An attacker who spends an address's send budget and feeds wrong codes into the requests
they started leaves the address-wide budgets exhausted. The person's own browser, trusted
for the address since it last signed in there, is judged by budgets of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from passwordless.conf import app_settings
from passwordless.models import FailureBudget
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock
from tests.helpers import wrong_code

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
VICTIM = "victim@example.org"


def _signed_in_before(site: str, mailbox: Mailbox, ip: str, email: str = VICTIM) -> Browser:
    """A browser that signed in as ``email`` once, then signed out."""
    browser = Browser(site, **{"X-Forwarded-For": ip})
    browser.start(email)
    assert browser.submit_code(mailbox(email).code).headers["Location"] == "/"
    assert browser.cookie("passwordless_device")
    assert browser.post("/auth/logout/", token=browser.csrf_token("/")).status_code == 302
    assert browser.signed_in_as() is None
    assert browser.cookie("passwordless_device")  # signing out keeps the device trusted
    return browser


def _flood(site: str, mailbox: Mailbox, rate_clock: RateLimitClock) -> None:
    """From many addresses: every send the address allows, each request fed wrong codes."""
    for i in range(7):
        attacker = Browser(site, **{"X-Forwarded-For": f"203.0.113.{i}"})
        started = attacker.start(VICTIM)
        if started.status_code == 302:
            code = mailbox(VICTIM).code  # the attacker does not see it; it keeps us honest
            for n in range(5):
                attacker.submit_code(wrong_code(code, n))
        rate_clock.advance(61)


@pytest.mark.postgres
def test_an_attacker_cannot_lock_the_person_out_of_their_own_browser(
    site: str, mailbox: Mailbox, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_TRUSTED_PROXIES = ["127.0.0.1"]
    victim = _signed_in_before(site, mailbox, "198.51.100.7")
    rate_clock.advance(3600)
    # The flood spans 7 minutes: within one hourly window of the address, whatever the time.
    rate_clock.start_of_window(hashlib.sha256(VICTIM.encode()).hexdigest(), 3600)
    _flood(site, mailbox, rate_clock)

    # The address-wide budgets are spent: a browser that never signed in here waits.
    budget = FailureBudget.objects.get(email=VICTIM)
    assert budget.failures >= app_settings.FAILURE_LIMIT
    stranger = Browser(site, **{"X-Forwarded-For": "192.0.2.50"})
    assert stranger.start(VICTIM).status_code == 429

    # The person's own browser starts a sign-in and completes it by code...
    assert victim.start(VICTIM).headers["Location"] == "/auth/code/"
    delivered = mailbox(VICTIM)
    assert victim.submit_code(delivered.code).headers["Location"] == "/"
    assert victim.signed_in_as() == VICTIM

    # ...and, another time, by its one-click link.
    victim.post("/auth/logout/", token=victim.csrf_token("/"))
    _flood(site, mailbox, rate_clock)
    assert victim.start(VICTIM).headers["Location"] == "/auth/code/"
    victim.open_link(mailbox(VICTIM).link)
    assert victim.confirm_link().headers["Location"] == "/"
    assert victim.signed_in_as() == VICTIM


@pytest.mark.postgres
def test_the_address_wide_budget_still_stops_guessing_across_requests(
    site: str, mailbox: Mailbox, settings: Any, rate_clock: RateLimitClock
) -> None:
    """The attacker's own requests are bound to the attacker's browser: that earns nothing."""
    settings.PASSWORDLESS_FAILURE_LIMIT = 5
    attacker = Browser(site)
    attacker.start(VICTIM)
    code = mailbox(VICTIM).code
    for n in range(5):
        attacker.submit_code(wrong_code(code, n))
    rate_clock.advance(61)
    attacker.start(VICTIM)
    refused = attacker.submit_code(mailbox(VICTIM).code)  # even the right code waits
    assert refused.status_code == 429


@pytest.mark.postgres
def test_a_device_cookie_of_another_address_or_forged_earns_nothing(
    site: str, mailbox: Mailbox, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_TRUSTED_PROXIES = ["127.0.0.1"]
    attacker = _signed_in_before(site, mailbox, "203.0.113.200", email="mallory@example.org")
    rate_clock.advance(3600)
    # The flood spans 7 minutes: within one hourly window of the address, whatever the time.
    rate_clock.start_of_window(hashlib.sha256(VICTIM.encode()).hexdigest(), 3600)
    _flood(site, mailbox, rate_clock)
    # Trusted for mallory@, not for the victim's address.
    assert attacker.start(VICTIM).status_code == 429
    # A forged signature is no better.
    device_id = (attacker.cookie("passwordless_device") or "").split(".")[0]
    attacker.session.cookies.set("passwordless_device", f"{device_id}.{'0' * 64}")
    assert attacker.start(VICTIM).status_code == 429


@pytest.mark.postgres
def test_a_trusted_device_that_types_wrong_codes_stops_being_trusted(
    site: str, mailbox: Mailbox, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_FAILURE_LIMIT = 5
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "100/h"
    victim = _signed_in_before(site, mailbox, "127.0.0.1")
    # Someone with this browser guesses: five wrong codes, within the device's own budget.
    victim.start(VICTIM)
    code = mailbox(VICTIM).code
    for n in range(5):
        victim.submit_code(wrong_code(code, n))
    # The device is judged like any browser now: the address-wide wait applies to it.
    victim.start(VICTIM)
    assert victim.submit_code(mailbox(VICTIM).code).status_code == 429
