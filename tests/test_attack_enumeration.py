"""Account enumeration, attacked over HTTP against the live server."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.core import mail

from passwordless import tasks
from tests.attacker import Browser
from tests.conftest import Delivered, FrozenClock, RateLimitClock
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
# Dates move, cookie values are random, and a rate limit's wait depends on the address
# string (django-ratelimit staggers windows by key), never on whether it has an account.
# X-Request-ID is random for every request, whatever the address.
_VOLATILE = {"Date", "Expires", "Set-Cookie", "Content-Length", "Retry-After", "X-Request-ID"}


def _normalised(response: requests.Response, email: str) -> dict[str, Any]:
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.text)
    body = re.sub(r"Try again in \d+ (second|minute)s?", "Try again in N", body)
    # The number to match is drawn per request, whoever owns the address.
    body = re.sub(r"\b\d\d\b", "NN", body)
    cookies = sorted(
        re.sub(r"=[^;]*;", "=;", c.strip()) for c in response.raw.headers.getlist("Set-Cookie")
    )
    return {
        "status": response.status_code,
        "location": response.headers.get("Location"),
        "headers": sorted((k, v) for k, v in response.headers.items() if k not in _VOLATILE),
        "header names": sorted(response.headers),
        "cookies": cookies,
        "body": body.replace(email, "EMAIL"),
    }


def _answers(site: str, email: str) -> list[dict[str, Any]]:
    browser = Browser(site)
    posted = browser.start(email)
    page = browser.get("/auth/code/")
    return [_normalised(posted, email), _normalised(page, email)]


@pytest.mark.parametrize("signup", [True, False])
def test_known_unknown_and_inactive_addresses_get_identical_answers(
    site: str, settings: Any, monkeypatch: pytest.MonkeyPatch, signup: bool
) -> None:
    settings.PASSWORDLESS_SIGNUP_ENABLED = signup
    UserFactory.create(email="known@example.org")
    UserFactory.create(email="inactive@example.org", is_active=False)
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        tasks.send_login_email, "apply_async", lambda args, **kw: queued.append(tuple(args))
    )

    answers = {
        email: _answers(site, email)
        for email in ("known@example.org", "unknown@example.org", "inactive@example.org")
    }
    first, *others = answers.values()
    for other in others:
        assert other == first
    # The same work: one task, carrying one row id, for every address.
    assert len(queued) == 3 and all(len(a) == 1 and isinstance(a[0], int) for a in queued)


def test_rate_limited_answers_are_the_same_for_every_address(site: str) -> None:
    UserFactory.create(email="known@example.org")
    limited = {}
    for email in ("known@example.org", "unknown@example.org"):
        Browser(site).start(email)
        limited[email] = _normalised(Browser(site).start(email), email)
    assert limited["known@example.org"]["status"] == 429
    assert limited["known@example.org"] == limited["unknown@example.org"]


def test_mail_goes_only_to_the_stored_address(
    site: str, mailbox: Mailbox, rate_clock: RateLimitClock
) -> None:
    UserFactory.create(email="alice@example.org")
    for typed in ("ALICE@EXAMPLE.ORG", "\uff41lice@example.org", "al\u0131ce@example.org"):
        rate_clock.advance(61)
        assert Browser(site).start(typed).status_code == 302
    recipients = [m.to for m in mail.outbox]
    # Case and compatibility forms reach the account's own stored address; the dotless-i
    # address is another mailbox and gets its own mail, never alice's account.
    assert recipients == [
        ["alice@example.org"],
        ["alice@example.org"],
        ["al\u0131ce@example.org"],
    ]
    browser = Browser(site)
    rate_clock.advance(61)
    browser.start("al\u0131ce@example.org")
    code = mailbox("al\u0131ce@example.org").code
    browser.submit_code(code)
    assert browser.signed_in_as() == "al\u0131ce@example.org"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("a" * 243 + "@example.org", "An email address has at most 254 characters."),
        ("alice@example.org\r\nBcc: all@example.org", "Enter a valid email address."),
        ("alice@example.org\n", "Enter a valid email address."),
        ("ali\x00ce@example.org", "Null characters are not allowed."),
        ("ali\tce@example.org", "Enter a valid email address."),
        ("", "Enter your email address."),
    ],
)
def test_bad_addresses_are_refused_with_a_clear_message(
    site: str, typed: str, message: str
) -> None:
    response = Browser(site).start(typed)
    assert response.status_code == 400
    assert message.replace("'", "&#x27;") in response.text
    assert mail.outbox == []


def test_expiry_after_a_resend_is_the_same_for_every_address(
    site: str, settings: Any, frozen_clock: FrozenClock, rate_clock: RateLimitClock
) -> None:
    """The worker never moves a request's expiry, so mail sent or not cannot show through it."""
    settings.PASSWORDLESS_SIGNUP_ENABLED = False
    UserFactory.create(email="known@example.org")
    browsers = {email: Browser(site) for email in ("known@example.org", "unknown@example.org")}
    for email, browser in browsers.items():
        browser.start(email)
    frozen_clock.advance(minutes=9)
    rate_clock.advance(61)
    for browser in browsers.values():
        browser.resend()
    frozen_clock.advance(seconds=90)
    answers = [
        (browser.submit_code("000000").status_code, browser.poll().json().get("status"))
        for browser in browsers.values()
    ]
    assert answers[0] == answers[1]
