"""Celery tasks. Their messages carry a row id only: never a code, link or address."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import services
from .services.delivery import DeliveryDeferred

__all__ = ["send_login_email"]

#: Failures worth another try: the mail server or the network may recover.
TRANSIENT_ERRORS = (DeliveryDeferred, smtplib.SMTPException, OSError, SoftTimeLimitExceeded)


if TYPE_CHECKING:
    _BaseTask = Task[Any, Any]
else:
    _BaseTask = Task


class _LoginEmailTask(_BaseTask):
    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        # Retries are exhausted: record it so that admins can see it.
        services.mark_delivery_failed(args[0] if args else kwargs["login_request_id"])


@shared_task(
    base=_LoginEmailTask,
    name="passwordless.send_login_email",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
    soft_time_limit=30,
    time_limit=45,
    acks_late=True,
    ignore_result=True,
)
def send_login_email(login_request_id: int) -> str:
    """Mint and email the code and link of one sign-in request."""
    return services.deliver_login_email(login_request_id)


@shared_task(
    name="passwordless.send_new_sign_in_email",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
    soft_time_limit=30,
    time_limit=45,
    acks_late=True,
    ignore_result=True,
)
def send_new_sign_in_email(user_session_id: int) -> None:
    """Tell a user that a new device signed in and the oldest one was signed out."""
    from .adapter import get_adapter
    from .models import UserSession

    user_session = UserSession.objects.select_related("user").filter(pk=user_session_id).first()
    if user_session is not None:
        get_adapter().send_new_sign_in_email(user_session)
