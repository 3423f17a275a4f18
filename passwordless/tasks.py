"""Celery tasks. Their messages carry row ids, never a code or link, and no address but
the one that only the address-change notice can be sent to (``send_security_notice``).

A surface: ``services.mail`` queues these by name, so nothing below imports this module."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import services
from .services import mail
from .services.delivery import DeliveryDeferred, is_permanent_failure, mark_delivery_failed
from .services.invitation_links import deliver_invitation

__all__ = [
    "purge",
    "send_email_changed_email",
    "send_invitation_email",
    "send_login_email",
    "send_new_sign_in_email",
    "send_security_notice",
    "sweep_outbox",
]

logger = logging.getLogger("passwordless")

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
        # Retries are exhausted: record it so that admins can see it. Nothing raised here may
        # escape: an error in a failure handler stops a solo worker.
        try:
            mark_delivery_failed(args[0] if args else kwargs["login_request_id"])
        except Exception as error:
            logger.error("could not record a failed sign-in email: %s", type(error).__name__)


#: Every mail task: retried on transient errors with exponential backoff and jitter, for
#: about five minutes at most; time limits far below the broker's visibility timeout.
MAIL_TASK_OPTIONS: dict[str, Any] = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 6,
    "soft_time_limit": 30,
    "time_limit": 45,
    "acks_late": True,
    "ignore_result": True,
}


@shared_task(base=_LoginEmailTask, name="passwordless.send_login_email", **MAIL_TASK_OPTIONS)
def send_login_email(login_request_id: int) -> str:
    """Mint and email the code and link of one sign-in request."""
    return services.deliver_login_email(login_request_id)


@shared_task(name="passwordless.send_security_notice", **MAIL_TASK_OPTIONS)
def send_security_notice(**message: Any) -> None:
    """Tell a person what was just done to their account (``services.notices``).

    The message holds the account's id, the id of the session it was done from, the time,
    a few plain details (``notices.check_details``), and for ``email_changed`` only, the
    old address (``to``). Once that change commits no row holds the old address, and
    keeping it at rest (in the audit trail, say) only to send one notice would store full
    addresses where we store masked ones. An address is not a secret (knowing it signs
    nobody in), so it travels, only as far as the broker, masked in the task's
    ``kwargsrepr``. Failures re-raise by class name only: an SMTP error's text can hold it.
    """
    _notify(mail.send_security_notice_now, message)


@shared_task(name="passwordless.send_new_sign_in_email", **MAIL_TASK_OPTIONS)
def send_new_sign_in_email(user_session_id: int) -> None:
    """A message queued before an upgrade (now ``send_security_notice``): a new sign-in
    that ended the oldest session."""
    _notify(mail.send_new_sign_in_notice, user_session_id)


@shared_task(name="passwordless.send_email_changed_email", **MAIL_TASK_OPTIONS)
def send_email_changed_email(user_id: Any, old_email: str) -> None:
    """A message queued before an upgrade (now ``send_security_notice``): tell the address
    an account had that its address was changed."""
    _notify(mail.send_email_changed_notice, user_id, old_email)


def _notify(send: Callable[..., object], *args: Any) -> None:
    try:
        send(*args)
    except Exception as exc:
        if is_permanent_failure(exc):
            logger.warning("security notice refused: %s", type(exc).__name__)
            return
        raise DeliveryDeferred(type(exc).__name__) from None


@shared_task(name="passwordless.send_invitation_email", **MAIL_TASK_OPTIONS)
def send_invitation_email(invitation_id: int) -> None:
    """Mint an invitation's link and email it (issue 18, ``services.invitations``)."""
    _notify(deliver_invitation, invitation_id)


@shared_task(name="passwordless.sweep_outbox", ignore_result=True, soft_time_limit=20)
def sweep_outbox() -> dict[str, int]:
    """Celery beat, every 30 s: queue again what the broker lost, and expire what is late."""
    return services.sweep_outbox()


@shared_task(name="passwordless.purge", ignore_result=True, soft_time_limit=600)
def purge() -> dict[str, int]:
    """Celery beat, hourly: delete old requests and audit rows, in small batches."""
    return services.purge()
