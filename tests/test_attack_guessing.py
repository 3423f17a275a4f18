"""Guessing and flooding, attacked over HTTP against the live server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from passwordless.models import LoginRequest
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock
from tests.helpers import wrong_code

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]


def test_the_link_still_works_while_codes_wait(
    site: str, mailbox: Mailbox, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_FAILURE_LIMIT = 3
    attacker = Browser(site)
    attacker.start("owner@example.org")
    code = mailbox("owner@example.org").code
    for i in range(3):
        attacker.submit_code(wrong_code(code, i))

    rate_clock.advance(61)
    owner = Browser(site)
    owner.start("owner@example.org")
    delivered = mailbox("owner@example.org")
    assert owner.submit_code(delivered.code).status_code == 429
    owner.open_link(delivered.link)
    assert owner.confirm_link().status_code == 302
    assert owner.signed_in_as() == "owner@example.org"


def test_send_limit_per_client_and_its_configuration(site: str, settings: Any) -> None:
    settings.PASSWORDLESS_SEND_RATES_PER_IP = "3/h"
    browser = Browser(site)
    assert [browser.start(f"p{i}@example.org").status_code for i in range(4)] == [
        302,
        302,
        302,
        429,
    ]


def test_verify_limit_per_client(
    site: str, mailbox: Mailbox, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_VERIFY_RATES_PER_IP = "8/5m"
    browser = Browser(site)
    browser.start("guess@example.org")
    code = mailbox("guess@example.org").code
    statuses = [browser.submit_code(wrong_code(code, i)).status_code for i in range(9)]
    assert statuses[-1] == 429
    assert statuses[:5] == [400, 400, 400, 400, 423]


def test_flooding_a_victims_address_does_not_lock_the_victim_out(
    site: str, mailbox: Mailbox, settings: Any
) -> None:
    settings.PASSWORDLESS_TRUSTED_PROXIES = ["127.0.0.1"]
    victim = Browser(site, **{"X-Forwarded-For": "198.51.100.7"})
    victim.start("victim@example.org")
    code = mailbox("victim@example.org").code

    attacker = Browser(site, **{"X-Forwarded-For": "203.0.113.66"})
    flood = [attacker.start("victim@example.org").status_code for _ in range(10)]
    assert set(flood) == {429}
    assert len(mail.outbox) == 1
    # The victim's request is untouched: no lock, no ending, the code still works.
    assert victim.submit_code(code).status_code == 302
    assert victim.signed_in_as() == "victim@example.org"


def test_forged_forwarded_for_changes_nothing(site: str, settings: Any) -> None:
    settings.PASSWORDLESS_SEND_RATES_PER_IP = "3/h"
    statuses = [
        Browser(site, **{"X-Forwarded-For": f"203.0.113.{i}"}).start(f"f{i}@example.org")
        for i in range(5)
    ]
    assert [r.status_code for r in statuses] == [302, 302, 302, 429, 429]
    assert LoginRequest.objects.filter(requester_ip="127.0.0.1").count() == 3


def test_trusted_proxy_counts_clients_apart_and_groups_ipv6_by_64(
    site: str, settings: Any
) -> None:
    settings.PASSWORDLESS_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.PASSWORDLESS_SEND_RATES_PER_IP = "2/h"

    def start(client: str, email: str) -> int:
        return Browser(site, **{"X-Forwarded-For": client}).start(email).status_code

    assert [start("203.0.113.1", f"a{i}@example.org") for i in range(3)] == [302, 302, 429]
    assert start("203.0.113.2", "b@example.org") == 302
    # Forged hops to the left of the proxy's own entry are ignored.
    assert start("1.2.3.4, 203.0.113.1", "c@example.org") == 429

    assert start("2001:db8::1", "d1@example.org") == 302
    assert start("2001:db8::2", "d2@example.org") == 302
    assert start("2001:db8::ffff", "d3@example.org") == 429  # the same /64
    assert start("2001:db8:0:1::1", "e@example.org") == 302  # another /64
    assert LoginRequest.objects.filter(requester_ip="203.0.113.2").count() == 1


def test_rate_limit_cache_down_fails_closed_with_a_503(
    site: str, settings: Any, mailbox: Mailbox
) -> None:
    signed_in = Browser(site)
    signed_in.start("carol@example.org")
    signed_in.submit_code(mailbox("carol@example.org").code)
    browser = Browser(site)
    browser.start("alice@example.org")
    code = mailbox("alice@example.org").code
    healthy = settings.CACHES["ratelimit"]
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens here
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        },
    }
    for response in (browser.start("bob@example.org"), browser.submit_code(code)):
        assert response.status_code == 503
        assert "Sign-in is unavailable for a moment" in response.text
        assert "Traceback" not in response.text
    assert browser.signed_in_as() is None
    assert not LoginRequest.objects.filter(email="bob@example.org").exists()  # nothing queued
    assert signed_in.signed_in_as() == "carol@example.org"  # signed-in pages work

    settings.CACHES = {**settings.CACHES, "ratelimit": healthy}  # recovered
    assert browser.submit_code(code).headers["Location"] == "/"
