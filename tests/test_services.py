"""The flows of the service layer, called directly."""

from __future__ import annotations

import smtplib
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.test import override_settings

from passwordless import services
from passwordless.crypto import hash_code
from passwordless.errors import SignInError
from passwordless.models import LoginRequest, LoginSecret
from passwordless.services.delivery import DeliveryDeferred
from tests.conftest import FrozenClock, RateLimitClock, read_sign_in_mail
from tests.factories import LoginRequestFactory, UserFactory, bound_request, issue_secret

pytestmark = pytest.mark.django_db

Delivery = LoginRequest.Delivery


def test_start_queues_one_task_carrying_only_the_row_id(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with (
        mock.patch("passwordless.tasks.send_login_email.apply_async") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        login_request = services.start_sign_in("Alice@Example.org").login_request
    delay.assert_called_once_with((login_request.pk,), expires=login_request.expires_at)
    assert login_request.email == "alice@example.org"
    assert login_request.delivery == Delivery.PENDING
    assert len(login_request.public_id) >= 22


def test_start_does_not_queue_before_commit(django_capture_on_commit_callbacks: Any) -> None:
    with mock.patch("passwordless.tasks.send_login_email.apply_async") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.start_sign_in("alice@example.org")
        assert not delay.called
    assert len(callbacks) == 1


def test_a_broker_that_refuses_the_task_does_not_fail_the_request(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with (
        mock.patch(
            "passwordless.tasks.send_login_email.apply_async",
            side_effect=ConnectionError("broker down"),
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        login_request = services.start_sign_in("alice@example.org").login_request
    login_request.refresh_from_db()
    assert login_request.delivery == Delivery.PENDING


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
    assert delivered.code not in message.subject


def test_only_keyed_hashes_are_stored() -> None:
    login_request = LoginRequestFactory.create()
    services.deliver_login_email(login_request.pk)
    delivered = read_sign_in_mail(mail.outbox[0])
    token = delivered.link.rstrip("/").rsplit("/", 1)[1]
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


def test_right_code_signs_in_and_creates_the_account() -> None:
    login_request = LoginRequestFactory.create(email="new@example.org")
    issued = issue_secret(login_request)
    signed, user = services.verify_code(login_request.public_id, issued.code)
    assert signed.status == LoginRequest.Status.SIGNED_IN
    assert user.email == "new@example.org"  # type: ignore[attr-defined]
    assert not user.has_usable_password()


@override_settings(PASSWORDLESS_SIGNUP_ENABLED=False)
def test_right_code_for_unknown_address_with_signup_closed_is_refused() -> None:
    login_request = LoginRequestFactory.create()
    issued = issue_secret(login_request)
    with pytest.raises(SignInError) as error:
        services.verify_code(login_request.public_id, issued.code)
    assert error.value.code == "signup_closed"


def test_a_code_works_once() -> None:
    login_request = LoginRequestFactory.create()
    issued = issue_secret(login_request)
    services.verify_code(login_request.public_id, issued.code)
    with pytest.raises(SignInError) as error:
        services.verify_code(login_request.public_id, issued.code)
    assert error.value.code == "link_used"


def test_wrong_codes_count_and_lock_the_request() -> None:
    login_request = LoginRequestFactory.create()
    issued = issue_secret(login_request)
    wrong = "000000" if issued.code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(SignInError) as error:
            services.verify_code(login_request.public_id, wrong)
        assert error.value.code == "code_invalid"
        assert error.value.params["attempts_left"] == left
    with pytest.raises(SignInError) as error:
        services.verify_code(login_request.public_id, wrong)
    assert error.value.code == "request_locked"
    with pytest.raises(SignInError) as error:
        services.verify_code(login_request.public_id, issued.code)
    assert error.value.code == "request_locked"
    assert error.value.message == "Too many wrong codes. Request a new code."


def test_code_expires_ten_minutes_after_minting(frozen_clock: FrozenClock) -> None:
    first = LoginRequestFactory.create()
    issued = issue_secret(first)
    frozen_clock.advance(seconds=599)
    services.verify_code(first.public_id, issued.code)

    second = LoginRequestFactory.create()
    issued = issue_secret(second)
    frozen_clock.advance(seconds=600)
    with pytest.raises(SignInError) as error:
        services.verify_code(second.public_id, issued.code)
    assert error.value.code == "code_expired"


def test_a_code_of_one_request_does_not_complete_another() -> None:
    a, b = LoginRequestFactory.create(), LoginRequestFactory.create()
    issued_a = issue_secret(a)
    issue_secret(b, code="999999" if issued_a.code != "999999" else "888888")
    with pytest.raises(SignInError):
        services.verify_code(b.public_id, issued_a.code)


def test_resend_keeps_the_three_most_recent_codes_valid() -> None:
    login_request = LoginRequestFactory.create()
    codes = [issue_secret(login_request, code=f"{n}{n}{n}{n}{n}{n}").code for n in range(4)]
    with pytest.raises(SignInError):
        services.verify_code(login_request.public_id, codes[0])
    services.verify_code(login_request.public_id, codes[1])


def test_resend_queues_a_new_email_with_a_new_code(
    django_capture_on_commit_callbacks: Any, rate_clock: RateLimitClock
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        login_request = services.start_sign_in("alice@example.org").login_request
    rate_clock.advance(61)
    with django_capture_on_commit_callbacks(execute=True):
        services.resend(login_request.public_id)
    assert len(mail.outbox) == 2
    first, second = (read_sign_in_mail(m) for m in mail.outbox)
    assert first.link != second.link
    services.verify_code(login_request.public_id, first.code)


def test_resend_of_a_locked_request_starts_a_new_one(
    django_capture_on_commit_callbacks: Any,
) -> None:
    locked = LoginRequestFactory.create(status=LoginRequest.Status.LOCKED, next_url="/admin/")
    with django_capture_on_commit_callbacks(execute=True):
        fresh = services.resend(locked.public_id).login_request
    assert fresh.pk != locked.pk
    assert (fresh.email, fresh.next_url) == (locked.email, "/admin/")
    locked.refresh_from_db()
    assert locked.status == LoginRequest.Status.LOCKED
    services.verify_code(fresh.public_id, read_sign_in_mail(mail.outbox[-1]).code)


def test_previewing_a_link_consumes_nothing_and_confirming_does() -> None:
    login_request = LoginRequestFactory.create()
    issued = issue_secret(login_request)
    for _ in range(3):
        preview = services.preview_link(issued.token)
    login_request.refresh_from_db()
    assert login_request.status == LoginRequest.Status.PENDING
    with pytest.raises(SignInError) as error:
        services.confirm_link(preview.token_hash)  # not the browser that asked
    assert error.value.code == "browser_mismatch"
    browser = bound_request(login_request)
    services.confirm_link(preview.token_hash, request=browser)
    with pytest.raises(SignInError) as error:
        services.confirm_link(preview.token_hash, request=browser)
    assert error.value.code == "link_used"


def test_unknown_link_is_refused() -> None:
    with pytest.raises(SignInError) as error:
        services.preview_link("not-a-real-token")
    assert error.value.code == "request_not_found"
    assert error.value.status == 404


@override_settings(PASSWORDLESS_MAX_SESSIONS=1, PASSWORDLESS_SESSION_LIMIT_POLICY="refuse")
@pytest.mark.parametrize("mode", ["session", "jwt"])
def test_a_refused_sign_in_leaves_the_callers_transaction_usable(mode: str) -> None:
    """A view that catches the refusal inside a transaction of its own (``ATOMIC_REQUESTS``)
    goes on querying: the sign-in rolls back to its savepoint, not the whole transaction."""
    from django.contrib.sessions.backends.cache import SessionStore
    from django.db import transaction

    from passwordless.services import tokens
    from passwordless.services.tracking import track

    user = UserFactory.create(email="alice@example.org")
    track(None, user, "code")  # the one device allowed
    login_request = LoginRequestFactory.create(email="alice@example.org")
    request = bound_request(login_request)
    request.session = SessionStore()
    with transaction.atomic():
        with pytest.raises(SignInError) as refused:
            if mode == "jwt":
                tokens.sign_in_with_tokens(request, user, login_request, "code")
            else:
                services.sign_in(request, user, login_request, "code")
        assert refused.value.code == "too_many_sessions"
        assert LoginRequest.objects.filter(pk=login_request.pk).exists()  # still usable
