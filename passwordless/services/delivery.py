"""Sending the sign-in email: the worker's side of the flow.

The secrets are minted here, in the worker, so they never cross the broker.
The row is locked while its email is sent, and an email already sent is not
sent again: a task delivered twice, or run by two workers, sends once.
"""

from __future__ import annotations

import logging
import smtplib

from django.db import transaction

from .. import audit, clock, signals
from ..adapter import get_adapter
from ..crypto import hash_code, hash_token
from ..models import AuthEvent, LoginRequest, LoginSecret

__all__ = [
    "DeliveryDeferred",
    "deliver_login_email",
    "is_permanent_failure",
    "mark_delivery_failed",
]

logger = logging.getLogger("passwordless")

Delivery = LoginRequest.Delivery
_SENDABLE = (Delivery.PENDING, Delivery.DEFERRED)


class DeliveryDeferred(Exception):
    """The email could not be sent now; the task should try again.

    It carries only the name of the underlying error: an SMTP exception's text
    can hold the recipient's address, and Celery logs what a retry raised.
    """


def deliver_login_email(login_request_id: int) -> str:
    """Mint a code and link for the request, email them, and return the delivery state.

    Transient failures (connection errors, SMTP 4xx) leave the request
    ``deferred`` and raise ``DeliveryDeferred`` so the task retries; permanent
    ones (SMTP 5xx) mark it ``failed``. A row held by a sign-in check at this
    moment is busy, not done: that also asks for a retry, never a silent skip.
    """
    try:
        return _deliver(login_request_id)
    except DeliveryDeferred:
        raise
    except Exception as exc:
        if is_permanent_failure(exc):
            logger.warning(
                "sign-in email refused: request=%s error=%s", login_request_id, type(exc).__name__
            )
            mark_delivery_failed(login_request_id, reason="smtp_refused")
            return Delivery.FAILED
        logger.warning(
            "sign-in email deferred: request=%s error=%s", login_request_id, type(exc).__name__
        )
        _set_delivery(login_request_id, Delivery.DEFERRED)
        raise DeliveryDeferred(type(exc).__name__) from None


def mark_delivery_failed(login_request_id: int, reason: str = "gave_up") -> None:
    """Record that the email will not be sent; the task calls it when it stops retrying."""
    if _set_delivery(login_request_id, Delivery.FAILED):
        login_request = LoginRequest.objects.filter(pk=login_request_id).first()
        audit.record(AuthEvent.Kind.DELIVERY_FAILED, login_request=login_request, reason=reason)


def is_permanent_failure(exc: BaseException) -> bool:
    """SMTP 5xx answers will not change on retry; everything else might."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


def _deliver(login_request_id: int) -> str:
    adapter = get_adapter()
    now = clock.now()
    with transaction.atomic():
        login_request = (
            LoginRequest.objects.select_for_update(skip_locked=True)
            .filter(pk=login_request_id)
            .first()
        )
        if login_request is None:
            if LoginRequest.objects.filter(pk=login_request_id).exists():
                # Locked by another worker sending it, or by a code being checked.
                raise DeliveryDeferred("row busy")
            return "gone"
        if login_request.delivery not in _SENDABLE:
            return str(login_request.delivery)
        if login_request.status != LoginRequest.Status.PENDING or login_request.is_expired(now):
            login_request.delivery = Delivery.EXPIRED
            login_request.save(update_fields=["delivery"])
            return Delivery.EXPIRED

        user = adapter.get_user(login_request.email)
        login_request.user = user  # type: ignore[assignment]
        may_sign_in = (
            adapter.can_sign_in(user) if user else adapter.is_signup_open(login_request.email)
        )
        if not may_sign_in:
            login_request.delivery = Delivery.SUPPRESSED
            login_request.save(update_fields=["user", "delivery"])
            logger.info(
                "sign-in email not sent (no eligible account): request=%s", login_request.pk
            )
            return Delivery.SUPPRESSED

        code, token = adapter.mint_code(login_request), adapter.mint_token(login_request)
        LoginSecret.objects.create(
            request=login_request,
            code_hash=hash_code(login_request.public_id, code),
            token_hash=hash_token(token),
            created_at=now,
        )
        # The request's own expiry is not moved here: only the web path sets it, the
        # same way for every address, so it cannot tell who got mail.
        login_request.delivery = Delivery.SENT
        login_request.sent_at = now
        login_request.sends += 1
        login_request.save(update_fields=["user", "delivery", "sent_at", "sends"])
        # Sent inside the transaction: if the mail server refuses, the secret
        # is rolled back with everything else and never becomes valid.
        adapter.send_login_email(login_request, code=code, link=adapter.build_link_url(token))

    audit.record(AuthEvent.Kind.SENT, login_request=login_request)
    signals.login_code_sent.send(LoginRequest, login_request=login_request)
    return Delivery.SENT


def _set_delivery(login_request_id: int, state: str) -> bool:
    rows = LoginRequest.objects.filter(pk=login_request_id, delivery__in=_SENDABLE)
    return bool(rows.update(delivery=state))
