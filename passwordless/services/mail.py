"""Queueing mail, after the transaction commits, as ``PASSWORDLESS_MAIL_QUEUE`` says.

With ``"celery"`` a task is sent by its name (``passwordless.send_login_email``,
``passwordless.send_security_notice``), so nothing below ``tasks.py`` imports it; with
``"sync"`` (projects without Celery) the email is sent in the request, after commit, and
Celery is never imported. Like Celery's ``delay_on_commit``, but a broker that refuses a
task must not turn into an error page: a sign-in email's row stays ``pending`` and the
sweeper sends it later (``outbox.sweep_outbox``); a notice is logged and dropped. Only row
ids travel, with a notice's few plain details (``notices.check_details``) and the one
address that only the address-change notice can be sent to.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from .. import clock, languages
from ..addresses import mask_email
from ..conf import app_settings
from ..models import LoginRequest, UserSession
from .delivery import DeliveryDeferred, deliver_login_email
from .invitation_links import deliver_invitation
from .notices import check_details, send_notice
from .sessions import SESSION_TRACKING_KEY
from .undo_links import undo_details

__all__ = [
    "queue_email_changed_email",
    "queue_invitation_email",
    "queue_login_email",
    "queue_new_sign_in_email",
    "queue_request_notice",
    "queue_security_notice",
    "send_email_changed_notice",
    "send_login_task",
    "send_new_sign_in_notice",
    "send_security_notice_now",
]

logger = logging.getLogger("passwordless")

LOGIN_TASK = "passwordless.send_login_email"
#: Every security notice (``services.notices``); the former per-kind tasks,
#: ``passwordless.send_new_sign_in_email`` and ``send_email_changed_email``, still run the
#: messages queued before an upgrade.
NOTICE_TASK = "passwordless.send_security_notice"


def queue_login_email(login_request: LoginRequest) -> None:
    """Send the sign-in email once the request commits: the task only carries its id."""
    pk, expires_at = login_request.pk, login_request.expires_at
    if app_settings.MAIL_QUEUE == "sync":
        transaction.on_commit(lambda: _deliver_now(pk))
    else:
        transaction.on_commit(lambda: send_login_task(pk, expires_at))


#: issue 18: an invitation to sign up (``services.invitations``); carries the id only.
INVITATION_TASK = "passwordless.send_invitation_email"


def queue_invitation_email(invitation_id: int) -> None:
    """Send an invitation once it commits: the task carries its id, the worker mints the
    link (``invitation_links.deliver_invitation``). A refusing broker costs the email,
    logged; staff can send it again from the admin."""
    if app_settings.MAIL_QUEUE == "sync":
        transaction.on_commit(lambda: _send_invitation_now(invitation_id))
    else:
        transaction.on_commit(lambda: _enqueue_invitation(invitation_id))


def _enqueue_invitation(invitation_id: int) -> None:
    try:
        _send_task(INVITATION_TASK, (invitation_id,))
    except Exception:
        logger.warning("could not queue the invitation: invitation=%s", invitation_id)


def _send_invitation_now(invitation_id: int) -> None:
    try:
        deliver_invitation(invitation_id)
    except Exception as exc:
        logger.warning(
            "invitation not sent: invitation=%s error=%s", invitation_id, type(exc).__name__
        )


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


def queue_security_notice(
    kind: str,
    user_id: Any,
    *,
    user_session_id: int | None = None,
    details: dict[str, Any] | None = None,
    to: str | None = None,
) -> None:
    """Tell the account what was just done to it, after commit (``services.notices``).

    ``user_session_id`` names the session it was done from (its device and network are
    told); ``details`` are short plain values, never secrets (``notices.check_details``);
    ``to`` is the one address a notice may carry, the old one of an ``email_changed``,
    shown masked to monitoring. A broker that refuses the task costs the notice, logged,
    never the request that did the thing.
    """
    message: dict[str, Any] = {
        "kind": kind,
        "user_id": user_id,
        "user_session_id": user_session_id,
        "details": check_details(kind, details),
        "occurred_at": clock.now().isoformat(),
        "locale": languages.current(),  # issue 18: the language of the request that acted
    }
    if to:
        message["to"] = to
    if app_settings.MAIL_QUEUE == "sync":
        transaction.on_commit(lambda: _send_notice_now(message))
    else:
        transaction.on_commit(lambda: _enqueue_notice(message))


def queue_request_notice(
    kind: str, user_id: Any, request: HttpRequest | None, details: dict[str, Any] | None = None
) -> None:
    """``queue_security_notice`` for something done in ``request``: from its session (the
    browser's, or the API client's token family), if it has one."""
    queue_security_notice(kind, user_id, user_session_id=_session_id_of(request), details=details)


def queue_new_sign_in_email(
    user_session: UserSession, *, ended_sessions: int = 1, new_device: bool = False
) -> None:
    """The "new sign-in" notice of a session just made (``signin.track``): from a device
    not seen before, or beyond ``MAX_SESSIONS`` (``ended_sessions`` older ones ended)."""
    queue_security_notice(
        "new_sign_in",
        user_session.user_id,
        user_session_id=user_session.pk,
        details={"ended_sessions": ended_sessions, "new_device": new_device},
    )


def queue_email_changed_email(
    user: AbstractBaseUser,
    old_email: str,
    *,
    email_change_id: int | None = None,
    user_session_id: int | None = None,
) -> None:
    """The notice to the address the account had, after the change commits.

    The task carries the old address itself (see ``tasks.send_security_notice``);
    monitoring (events, Flower) shows it masked, never in full. A change the person made
    (``email_change``) names its ``EmailChange`` and the session it was made from: the
    worker mints the undo link (``undo_links``), so no token is ever on the broker.
    """
    details = {"email_change_id": email_change_id} if email_change_id is not None else None
    queue_security_notice(
        "email_changed", user.pk, to=old_email, details=details, user_session_id=user_session_id
    )


def _enqueue_notice(message: dict[str, Any]) -> None:
    shown = {**message, "to": mask_email(message["to"])} if "to" in message else message
    try:
        _send_task(NOTICE_TASK, (), kwargs=message, kwargsrepr=repr(shown))
    except Exception:
        logger.warning(
            "could not queue the %s notice: user=%s", message["kind"], message["user_id"]
        )


def _session_id_of(request: HttpRequest | None) -> int | None:
    if request is None:
        return None
    claims = getattr(request, "auth_claims", None)
    if claims:
        rows = UserSession.objects.filter(family__public_id=claims.get("fam"))
    else:
        public_id = (
            request.session.get(SESSION_TRACKING_KEY) if hasattr(request, "session") else None
        )
        if not isinstance(public_id, str):
            return None
        rows = UserSession.objects.filter(public_id=public_id)
    pk: int | None = rows.values_list("pk", flat=True).first()
    return pk


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


def send_security_notice_now(message: dict[str, Any]) -> bool:
    """Send a queued notice (the task's message, or in-process); see ``notices.send_notice``."""
    details = message.get("details")
    if message["kind"] == "email_changed" and details and "email_change_id" in details:
        # Minted here, in the worker, into a copy: a retry publishes the message's own
        # details again, and the undo token must never be on the broker.
        details = {**details, **undo_details(details["email_change_id"])}
    return send_notice(
        message["kind"],
        message["user_id"],
        user_session_id=message.get("user_session_id"),
        details=details,
        occurred_at=message.get("occurred_at"),
        to=message.get("to"),
        locale=message.get("locale"),  # issue 18, languages
    )


def send_new_sign_in_notice(user_session_id: int) -> None:
    """A message of the former task ``passwordless.send_new_sign_in_email``, queued before
    an upgrade: it was only sent when a sign-in ended the oldest session."""
    user_id = UserSession.objects.filter(pk=user_session_id).values_list("user_id", flat=True)
    for pk in user_id[:1]:
        send_notice(
            "new_sign_in",
            pk,
            user_session_id=user_session_id,
            details={"ended_sessions": 1, "new_device": False},
        )


def send_email_changed_notice(user_id: Any, old_email: str) -> None:
    """A message of the former task ``passwordless.send_email_changed_email``."""
    send_notice("email_changed", user_id, to=old_email)


def _send_notice_now(message: dict[str, Any]) -> None:
    try:
        send_security_notice_now(message)
    except Exception as exc:
        # What was done is done: a notice that fails is logged, not raised; by class name
        # only, as an SMTP error's text can hold the address.
        logger.warning(
            "%s notice not sent: user=%s error=%s",
            message["kind"],
            message["user_id"],
            type(exc).__name__,
        )
