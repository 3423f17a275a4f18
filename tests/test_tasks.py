"""The Celery task: retries on transient failures, gives up into ``failed``."""

from __future__ import annotations

import smtplib
from unittest import mock

import pytest
from celery.exceptions import Retry

from passwordless.models import LoginRequest
from passwordless.tasks import TRANSIENT_ERRORS, send_login_email
from tests.factories import LoginRequestFactory

pytestmark = pytest.mark.django_db


def test_task_is_bounded_and_retries_with_jittered_backoff() -> None:
    assert send_login_email.max_retries == 6
    assert getattr(send_login_email, "retry_backoff", 0) and getattr(
        send_login_email, "retry_jitter", False
    )
    assert send_login_email.soft_time_limit and send_login_email.time_limit
    assert issubclass(smtplib.SMTPServerDisconnected, TRANSIENT_ERRORS)
    assert issubclass(ConnectionRefusedError, TRANSIENT_ERRORS)


def test_transient_failure_asks_for_a_retry() -> None:
    login_request = LoginRequestFactory.create()
    with (
        mock.patch(
            "django.core.mail.backends.locmem.EmailBackend.send_messages",
            side_effect=ConnectionRefusedError("smtp down"),
        ),
        mock.patch.object(send_login_email, "retry", side_effect=Retry()) as retry,
        pytest.raises(Retry),
    ):
        send_login_email.run(login_request.pk)
    assert retry.called
    login_request.refresh_from_db()
    assert login_request.delivery == LoginRequest.Delivery.DEFERRED


def test_giving_up_marks_the_request_failed() -> None:
    login_request = LoginRequestFactory.create(delivery=LoginRequest.Delivery.DEFERRED)
    send_login_email.on_failure(ConnectionRefusedError(), "task-id", (login_request.pk,), {}, None)
    login_request.refresh_from_db()
    assert login_request.delivery == LoginRequest.Delivery.FAILED
