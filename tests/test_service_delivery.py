"""The service layer, ``services/delivery.py``: sending the sign-in email, once."""

from __future__ import annotations

import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.test import override_settings

from passwordless import services
from passwordless.crypto import hash_code
from passwordless.models import LoginRequest, LoginSecret
from passwordless.services.delivery import DeliveryDeferred
from tests.conftest import FrozenClock, read_sign_in_mail
from tests.factories import LoginRequestFactory, UserFactory

pytestmark = pytest.mark.django_db

Delivery = LoginRequest.Delivery


def test_deliver_sends_one_email_with_code_link_and_expiry() -> None:
    login_request = LoginRequestFactory.create(email="alice@example.org")
    assert services.deliver_login_email(login_request.pk) == Delivery.SENT
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert isinstance(message, mail.EmailMultiAlternatives)
    delivered = read_sign_in_mail(message)
    assert message.to == ["alice@example.org"]
    assert "10 minutes" in message.body
    assert "ignore this email" in message.body
    html, mimetype = message.alternatives[0]
    assert isinstance(html, str)
    assert mimetype == "text/html"
    assert delivered.code in html
    assert delivered.link in html
    assert delivered.link.startswith("http://testserver/auth/link/")
    # CODE_IN_SUBJECT (issue 18): the code, never the link (tests/test_mail_format.py).
    assert message.subject == f"{delivered.code} is your sign-in code for testserver"
    assert delivered.token not in message.subject


def test_only_keyed_hashes_are_stored() -> None:
    login_request = LoginRequestFactory.create()
    services.deliver_login_email(login_request.pk)
    delivered = read_sign_in_mail(mail.outbox[0])
    token = delivered.token
    secret = LoginSecret.objects.get(request=login_request)
    stored = " ".join(str(v) for v in LoginSecret.objects.values_list().get(pk=secret.pk))
    stored += " ".join(str(v) for v in LoginRequest.objects.values_list().get(pk=login_request.pk))
    assert delivered.code not in stored
    assert token not in stored
    assert secret.code_hash == hash_code(login_request.public_id, delivered.code)


def test_deliver_is_idempotent() -> None:
    login_request = LoginRequestFactory.create()
    services.deliver_login_email(login_request.pk)
    assert services.deliver_login_email(login_request.pk) == Delivery.SENT
    assert len(mail.outbox) == 1
    assert LoginSecret.objects.filter(request=login_request).count() == 1


def test_mail_goes_to_the_stored_address_of_a_known_account() -> None:
    user = UserFactory.create(email="alice@example.org")
    login_request = LoginRequestFactory.create(email="alice@example.org")
    services.deliver_login_email(login_request.pk)
    login_request.refresh_from_db()
    assert login_request.user == user
    assert mail.outbox[0].to == [user.email]


@override_settings(PASSWORDLESS_SIGNUP_ENABLED=False)
def test_unknown_address_gets_no_mail_when_signup_is_closed() -> None:
    login_request = LoginRequestFactory.create()
    assert services.deliver_login_email(login_request.pk) == Delivery.SUPPRESSED
    assert mail.outbox == []


def test_inactive_account_gets_no_mail() -> None:
    UserFactory.create(email="gone@example.org", is_active=False)
    login_request = LoginRequestFactory.create(email="gone@example.org")
    assert services.deliver_login_email(login_request.pk) == Delivery.SUPPRESSED
    assert mail.outbox == []


def test_expired_request_is_not_sent(frozen_clock: FrozenClock) -> None:
    login_request = LoginRequestFactory.create()
    frozen_clock.advance(minutes=10)
    assert services.deliver_login_email(login_request.pk) == Delivery.EXPIRED
    assert mail.outbox == []


def test_transient_smtp_failure_defers_and_keeps_the_secret() -> None:
    """The message may have reached the server before the error: its code must work."""
    login_request = LoginRequestFactory.create()
    with (
        mock.patch(
            "django.core.mail.backends.locmem.EmailBackend.send_messages",
            side_effect=smtplib.SMTPServerDisconnected("gone"),
        ),
        pytest.raises(DeliveryDeferred),
    ):
        services.deliver_login_email(login_request.pk)
    login_request.refresh_from_db()
    assert login_request.delivery == Delivery.DEFERRED
    assert LoginSecret.objects.filter(request=login_request).count() == 1
    # The retry sends a new code and link, which join the first.
    assert services.deliver_login_email(login_request.pk) == Delivery.SENT
    assert LoginSecret.objects.filter(request=login_request).count() == 2


def test_permanent_smtp_failure_marks_failed() -> None:
    login_request = LoginRequestFactory.create()
    refused = smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"no such user")})
    with mock.patch(
        "django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=refused
    ):
        assert services.deliver_login_email(login_request.pk) == Delivery.FAILED
    login_request.refresh_from_db()
    assert login_request.delivery == Delivery.FAILED
