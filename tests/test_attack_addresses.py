"""Other spellings of one mailbox, and look-alike domains, over HTTP: never a second account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from passwordless.models import LoginRequest
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]

REFUSED = [
    '"al,ice"@example.org',  # a quoted local part that needs its quotes
    "alice@ex\u0430mple.org",  # Cyrillic a among Latin letters
    "alice@\u03b5xample.org",  # Greek epsilon
    "alice@xn--exmple-4nf.org",  # the same look-alike, typed as punycode
    "alice@exam\u2665ple.org",  # a symbol (IDNA 2008 disallows it)
    "alice@fa\u00df.de",  # IDNA 2003 and UTS #46 disagree on which domain this is
    "alice@[127.0.0.1]",  # an address literal: another name for a mailbox with a domain
]


def _sign_in(site: str, mailbox: Mailbox, typed: str, to: str) -> str | None:
    browser = Browser(site)
    assert browser.start(typed).status_code == 302
    assert browser.submit_code(mailbox(to).code).status_code == 302
    return browser.signed_in_as()


@pytest.mark.parametrize("typed", ['"alice"@example.org', '"al\\ice"@EXAMPLE.org'])
def test_a_quoted_local_part_is_the_same_account(site: str, mailbox: Mailbox, typed: str) -> None:
    UserFactory.create(email="alice@example.org")
    assert _sign_in(site, mailbox, typed, "alice@example.org") == "alice@example.org"
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]
    assert list(get_user_model()._default_manager.values_list("email", flat=True)) == [
        "alice@example.org"
    ]


def test_punycode_and_unicode_spellings_of_a_domain_are_one_account(
    site: str, mailbox: Mailbox, rate_clock: RateLimitClock
) -> None:
    first = _sign_in(site, mailbox, "alice@b\u00fccher.de", "alice@b\u00fccher.de")
    rate_clock.advance(61)
    second = _sign_in(site, mailbox, "alice@XN--BCHER-KVA.de", "alice@b\u00fccher.de")
    assert first == second == "alice@b\u00fccher.de"
    assert get_user_model()._default_manager.count() == 1


@pytest.mark.parametrize("typed", REFUSED)
def test_look_alike_and_ambiguous_addresses_are_refused_by_the_form(site: str, typed: str) -> None:
    response = Browser(site).start(typed)
    assert response.status_code == 400
    assert "Enter a valid email address." in response.text
    assert mail.outbox == []
    assert not LoginRequest.objects.exists()


@pytest.mark.parametrize("typed", REFUSED)
def test_look_alike_and_ambiguous_addresses_are_refused_by_the_api(site: str, typed: str) -> None:
    response = ApiClient(site).send(typed)
    assert response.status_code == 400
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "email_invalid"
    assert error["message"] == "Enter a valid email address."
    assert mail.outbox == []
    assert not LoginRequest.objects.exists()
    assert not get_user_model()._default_manager.exists()


@pytest.mark.parametrize("typed", ["alice@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444"])
def test_a_domain_in_one_script_still_signs_in(site: str, mailbox: Mailbox, typed: str) -> None:
    # The rule refuses mixes, not other scripts: an all-Cyrillic domain is a domain.
    assert _sign_in(site, mailbox, typed, typed) == typed
