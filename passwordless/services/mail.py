"""Queueing mail, after the transaction commits, as ``PASSWORDLESS_MAIL_QUEUE`` says.

With ``"celery"`` a task is sent by its name (``passwordless.send_login_email``, ...), so
nothing below ``tasks.py`` imports it; with ``"sync"`` (projects without Celery) the
email is sent in the request, after commit, and Celery is never imported. Like Celery's
``delay_on_commit``, but a broker that refuses a task must not turn into an error page:
a sign-in email's row stays ``pending`` and the sweeper sends it later
(``outbox.sweep_outbox``); a notice is logged and dropped. Only row ids travel, and the
one address that only the address-change notice can be sent to.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from ..adapter import get_adapter
from ..addresses import mask_email
from ..conf import app_settings
from ..models import LoginRequest, UserSession
from .delivery import DeliveryDeferred, deliver_login_email

__all__ = [
    "queue_email_changed_email",
    "queue_login_email",
    "queue_new_sign_in_email",
    "send_email_changed_notice",
    "send_login_task",
    "send_new_sign_in_notice",
]

logger = logging.getLogger("passwordless")

LOGIN_TASK = "passwordless.send_login_email"
NEW_SIGN_IN_TASK = "passwordless.send_new_sign_in_email"
EMAIL_CHANGED_TASK = "passwordless.send_email_changed_email"


def queue_login_email(login_request: LoginRequest) -> None:
    """Send the sign-in email once the request commits: the task only carries its id."""
    pk, expires_at = login_request.pk, login_request.expires_at
    if app_settings.MAIL_QUEUE == "sync":
        transaction.on_commit(lambda: _deliver_now(pk))
    else:
        transaction.on_commit(lambda: send_login_task(pk, expires_at))


def send_login_task(login_request_id: int, expires_at: datetime) -> bool:
    """Put the sending task on the broker; ``False`` if the broker refused it.

    The message expires with the request: a worker that gets it late drops it
    rather than send a code that no longer works. A refused task is not an
    error for the person: the row stays ``pending`` and the sweeper sends it.
    """
    try:
        _send_task(LOGIN_TASK, (login_request_id,), expires=expires_at)
    except Exception:
        logger.warning("could not queue the sign-in email: request=%s", login_request_id)
        return False
    return True


def queue_new_sign_in_email(user_session: UserSession) -> None:
    """The "new sign-in" notice (a sign-in ended the oldest device), after commit."""
    pk = user_session.pk
    if app_settings.MAIL_QUEUE == "sync":
        transaction.on_commit(lambda: _send_new_sign_in_now(pk))
        return

    def enqueue() -> None:
        try:
            _send_task(NEW_SIGN_IN_TASK, (pk,))
        except Exception:
            logger.warning("could not queue the new sign-in email: session=%s", pk)

    transaction.on_commit(enqueue)


def queue_email_changed_email(user: AbstractBaseUser, old_email: str) -> None:
    """The notice to the address the account had, after the change commits.

    The task carries the old address itself (see ``tasks.send_email_changed_email``);
    monitoring (events, Flower) shows it masked, never in full.
    """
    pk = user.pk
    if app_settings.MAIL_QUEUE == "sync":
        transaction.on_commit(lambda: _send_email_changed_now(pk, old_email))
        return

    def enqueue() -> None:
        try:
            _send_task(
                EMAIL_CHANGED_TASK, (pk, old_email), argsrepr=repr((pk, mask_email(old_email)))
            )
        except Exception:
            logger.warning("could not queue the email-change notice: user=%s", pk)

    transaction.on_commit(enqueue)


def _send_task(name: str, args: tuple[Any, ...], **options: Any) -> None:
    # Celery is an optional dependency (MAIL_QUEUE = "sync" runs without it): imported only
    # when a task is queued.
    from celery import current_app

    # The registered task when this process has it (passwordless.apps imports tasks.py),
    # so that CELERY_TASK_ALWAYS_EAGER and the task's own options apply; else by name only.
    task = current_app.tasks.get(name)
    if task is not None:
        task.apply_async(args, **options)
    else:
        current_app.send_task(name, args, **options)


def _deliver_now(login_request_id: int) -> None:
    """Send in-process; a failure leaves the request deferred or failed, and the page
    shows it, instead of breaking the response."""
    try:
        deliver_login_email(login_request_id)
    except DeliveryDeferred:
        logger.warning("sign-in email not sent now: request=%s", login_request_id)


def send_new_sign_in_notice(user_session_id: int) -> None:
    """Tell a user that a new device signed in (run by the task, or in-process); gone
    rows send nothing. Raises what the adapter's sending raises."""
    user_session = UserSession.objects.select_related("user").filter(pk=user_session_id).first()
    if user_session is not None:
        get_adapter().send_new_sign_in_email(user_session)


def send_email_changed_notice(user_id: Any, old_email: str) -> None:
    """Tell ``old_email`` that its account's address changed (run by the task, or
    in-process); a deleted account sends nothing. Raises what the adapter's sending raises."""
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is not None:
        get_adapter().send_email_changed_email(user, old_email)


def _send_new_sign_in_now(user_session_id: int) -> None:
    try:
        send_new_sign_in_notice(user_session_id)
    except Exception as exc:
        # The sign-in itself succeeded: a notice that fails is logged, not raised.
        logger.warning(
            "new sign-in notice not sent: session=%s error=%s",
            user_session_id,
            type(exc).__name__,
        )


def _send_email_changed_now(user_id: Any, old_email: str) -> None:
    try:
        send_email_changed_notice(user_id, old_email)
    except Exception as exc:
        # By class name only: an SMTP error's text can hold the address.
        logger.warning(
            "email-change notice not sent: user=%s error=%s", user_id, type(exc).__name__
        )
