"""The helpers the app ships for its users' tests (``passwordless.testing``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from passwordless.testing import (
    Delivered,
    FrozenClock,
    link_token,
    read_sign_in_mail,
    request_code,
    sign_in_mails,
)


@pytest.mark.django_db
def test_request_code_returns_the_code_and_link_that_sign_in() -> None:
    from passwordless import services

    delivered = request_code("Alice@Example.org")
    assert delivered is not None
    code, link = delivered
    assert (code, link) == (delivered.code, delivered.link)
    assert delivered.message.to == ["alice@example.org"]
    assert delivered.token == link_token(link) and delivered.token in link
    login_request = services.preview_link(delivered.token).login_request
    services.verify_code(login_request.public_id, code)
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_request_code_returns_none_when_no_mail_goes_out(settings: Any) -> None:
    settings.PASSWORDLESS_SIGNUP_ENABLED = False
    assert request_code("nobody@example.org") is None
    assert mail.outbox == []


@pytest.mark.django_db
def test_sign_in_mails_reads_only_sign_in_mails_to_the_address() -> None:
    request_code("alice@example.org")
    request_code("bob@example.org")
    mail.send_mail("Hello", "no code here", None, ["alice@example.org"])
    assert [d.message.to for d in sign_in_mails("alice@example.org")] == [["alice@example.org"]]
    assert len(sign_in_mails()) == 2


@pytest.mark.django_db
def test_the_passwordless_code_fixture_is_request_code(passwordless_code: Any) -> None:
    assert passwordless_code is request_code
    assert passwordless_code("alice@example.org").code.isdigit()


def test_read_sign_in_mail_fails_on_another_mail() -> None:
    message = mail.EmailMessage("Hello", "no code here", to=["alice@example.org"])
    with pytest.raises(AssertionError, match="not a sign-in email"):
        read_sign_in_mail(message)


def test_the_frozen_clock_fixture_moves_the_apps_time(frozen_clock: FrozenClock) -> None:
    from passwordless import clock

    before = clock.now()
    frozen_clock.advance(minutes=10)
    assert (clock.now() - before).total_seconds() == 600


def test_delivered_unpacks_as_code_and_link() -> None:
    message: Any = None
    code, link = Delivered("123456", "http://testserver/auth/link/abc/", message)
    assert (code, link) == ("123456", "http://testserver/auth/link/abc/")
