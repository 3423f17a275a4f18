"""The service layer, ``services/start.py``: starting a sign-in and asking for the email again."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.core import mail

from passwordless import services
from passwordless.models import LoginRequest
from tests.conftest import RateLimitClock, read_sign_in_mail
from tests.factories import LoginRequestFactory

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
