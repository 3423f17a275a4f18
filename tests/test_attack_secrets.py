"""Secrets and single use, attacked over HTTP against the live server."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import pytest
from django.db import connection

from passwordless.models import LoginRequest, LoginSecret
from tests.attacker import Browser
from tests.conftest import Delivered, FrozenClock, RateLimitClock
from tests.helpers import all_at_once, link_token

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]


def test_links_expire_ten_minutes_after_minting(
    site: str, mailbox: Mailbox, frozen_clock: FrozenClock
) -> None:
    ok = Browser(site)
    ok.start("early@example.org")
    frozen_clock.advance(seconds=599)
    ok.open_link(mailbox("early@example.org").link)
    assert ok.confirm_link().headers["Location"] == "/"

    late = Browser(site)
    late.start("late@example.org")
    frozen_clock.advance(seconds=600)
    opened = late.open_link(mailbox("late@example.org").link)
    assert opened.status_code == 410
    assert "This code or link has expired. Request a new one." in opened.text


@pytest.mark.postgres
def test_twenty_concurrent_confirmations_of_one_link_sign_in_once(
    site: str, mailbox: Mailbox
) -> None:
    owner = Browser(site)
    owner.start("race@example.org")
    owner.open_link(mailbox("race@example.org").link)
    token = owner.csrf_token("/auth/link/")
    jars = [owner]
    for _ in range(19):  # copies of the browser that asked: the cookies are what it has
        jar = Browser(site)
        jar.session.cookies.update(owner.session.cookies)
        jars.append(jar)

    responses = all_at_once(
        [
            functools.partial(jar.post, "/auth/link/", {"action": "sign_in"}, token=token)
            for jar in jars
        ]
    )
    assert [r.headers.get("Location") for r in responses].count("/") == 1
    assert [jar.signed_in_as() for jar in jars].count("race@example.org") == 1


@pytest.mark.postgres
def test_twenty_concurrent_approvals_sign_in_the_waiting_device_once(
    site: str, mailbox: Mailbox
) -> None:
    waiting = Browser(site)
    waiting.start("race@example.org")
    number = LoginRequest.objects.get().match_number
    link = mailbox("race@example.org").link
    jars = [Browser(site) for _ in range(20)]
    for jar in jars:
        jar.open_link(link)
    tokens = [jar.csrf_token("/auth/link/") for jar in jars]

    responses = all_at_once(
        [
            functools.partial(
                jar.post,
                "/auth/link/",
                {"action": "approve", "number": f"{number:02d}"},
                token=token,
            )
            for jar, token in zip(jars, tokens, strict=True)
        ]
    )
    assert ["The device that asked is signing in" in r.text for r in responses].count(True) == 1
    assert waiting.get("/auth/code/").headers.get("Location") == "/"
    assert waiting.signed_in_as() == "race@example.org"
    assert all(jar.signed_in_as() is None for jar in jars)


def test_replaying_a_used_code_or_link_fails(site: str, mailbox: Mailbox) -> None:
    browser = Browser(site)
    browser.start("alice@example.org")
    delivered = mailbox("alice@example.org")
    assert browser.submit_code(delivered.code).status_code == 302

    thief = Browser(site)
    assert thief.open_link(delivered.link).status_code == 409
    assert thief.signed_in_as() is None


def test_three_most_recent_codes_stay_valid_and_share_one_counter(
    site: str, mailbox: Mailbox, rate_clock: RateLimitClock
) -> None:
    browser = Browser(site)
    browser.start("resend@example.org")
    for _ in range(3):
        rate_clock.advance(61)
        assert browser.resend().status_code == 302
    codes = [mailbox("resend@example.org", i).code for i in range(4)]
    assert len({link_token(mailbox("resend@example.org", i).link) for i in range(4)}) == 4

    # The oldest fell out of the window of three: it fails, and costs an attempt
    # on the same counter as any other wrong code.
    assert browser.submit_code(codes[0]).status_code == 400
    wrong = next(c for c in ("000000", "111111", "222222") if c not in codes)
    response = browser.submit_code(wrong)
    assert "3 attempts left" in response.text
    assert LoginRequest.objects.get().attempts == 2
    # The older of the three live codes still works.
    assert browser.submit_code(codes[1]).status_code == 302


def test_starting_again_in_the_same_browser_ends_its_older_request(
    site: str, mailbox: Mailbox, rate_clock: RateLimitClock
) -> None:
    browser = Browser(site)
    browser.start("again@example.org")
    first = mailbox("again@example.org")
    rate_clock.advance(61)
    browser.start("again@example.org")
    second = mailbox("again@example.org")

    stale = Browser(site).open_link(first.link)
    assert stale.status_code == 409
    assert "a newer email was requested" in stale.text
    assert browser.submit_code(second.code).status_code == 302


def test_another_browser_starting_for_the_same_address_ends_nothing(
    site: str, mailbox: Mailbox, rate_clock: RateLimitClock
) -> None:
    victim = Browser(site)
    victim.start("victim@example.org")
    code = mailbox("victim@example.org").code
    rate_clock.advance(61)
    Browser(site).start("victim@example.org")
    assert victim.submit_code(code).status_code == 302


def test_a_database_dump_recovers_no_live_secret(site: str, mailbox: Mailbox) -> None:
    browser = Browser(site)
    browser.start("dump@example.org")
    delivered = mailbox("dump@example.org")
    secret = LoginSecret.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT code_hash, token_hash FROM passwordless_loginsecret")
        code_hash, token_hash = cursor.fetchone()

    # The dump does not contain the secrets, and unkeyed hashing of the whole code space
    # does not find the code: the key is not in the database.
    assert delivered.code not in (code_hash + token_hash)
    request_id = secret.request.public_id
    candidates = {
        hashlib.sha256(f"{prefix}{n:06d}".encode()).hexdigest()
        for n in range(1_000_000)
        for prefix in ("", f"{request_id}:")
    }
    assert code_hash not in candidates

    # The stored hash is not a usable link either.
    assert Browser(site).open_link(f"{site}/auth/link/{token_hash}/").status_code == 404
    assert browser.submit_code(delivered.code).status_code == 302
