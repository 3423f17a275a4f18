"""Cross-device sign-in: approve the waiting device from the one that opened the link.

The device that asked shows a 2-digit number; the device that opened the link
shows three, and the person picks the one they see. A right pick approves the
request, and only the browser that asked (it holds the binding cookie) can
then collect the session. A wrong pick locks the request. A scanner that opens
the link, or submits its forms without a pick, approves nothing and burns
nothing.

"Whoever opens the link approves the waiting device" (Clerk's cross-device
mode) is refused on purpose: an attacker who starts a sign-in for a victim's
address on their own device would be signed in by the victim's mail scanner.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from .. import audit, clock, limits, signals
from ..adapter import get_adapter
from ..client import client_ip, user_agent
from ..conf import app_settings
from ..errors import SignInError
from ..models import AuthEvent, LoginRequest, is_public_id
from . import budget
from .sessions import is_bound
from .verification import (
    check_verify_rate,
    consume,
    lock_link_request,
    refusal,
    report_link_failure,
)

__all__ = [
    "WaitStatus",
    "approve",
    "check_poll_rate",
    "collect_approval",
    "load_request",
    "wait_status",
]

Status = LoginRequest.Status
Delivery = LoginRequest.Delivery

#: What the waiting page says about the email. A suppressed email (no account
#: may sign in) reads as sent: the page must not tell which addresses have accounts.
_DELIVERY_LABELS = {
    Delivery.PENDING: "sending",
    Delivery.SENT: "sent",
    Delivery.SUPPRESSED: "sent",
    Delivery.DEFERRED: "delayed",
    Delivery.FAILED: "failed",
    Delivery.EXPIRED: "failed",
}


@dataclass(frozen=True)
class WaitStatus:
    """What the waiting device may know about its request.

    ``delivery`` is ``None`` when sign-up is closed: then only existing
    accounts get mail, and "delayed" or "failed" would tell that one exists.
    ``match_number`` is ``None`` when cross-device approval is off.
    """

    status: str
    delivery: str | None
    match_number: int | None


def approve(token_hash: str, pick: str | None, *, request: HttpRequest | None = None) -> None:
    """Approve the waiting device if ``pick`` is its number; a wrong pick locks the request.

    Without a pick (a bare POST, a scanner submitting the form) nothing changes.
    """
    if not pick or not pick.isascii() or not pick.isdigit() or len(pick) != 2:
        raise SignInError("pick_missing")
    if not app_settings.CROSS_DEVICE_APPROVAL:
        raise SignInError("browser_mismatch")
    check_verify_rate(request)
    now = clock.now()
    try:
        with transaction.atomic():
            login_request = lock_link_request(token_hash, now)
            if budget.approval_paused_for(login_request.email, now):
                raise SignInError("approval_paused")
            retry_after = budget.seconds_to_wait(login_request.email, now)
            if retry_after:
                raise SignInError("rate_limited", retry_after=retry_after)
            wrong = int(pick) != login_request.match_number
            if wrong:
                budget.pause_approval(login_request.email, now)
                login_request.status = Status.LOCKED
                login_request.completed_at = now
            else:
                login_request.status = Status.APPROVED
                login_request.approved_at = now
                login_request.approver_ip = client_ip(request)
                login_request.approver_user_agent = user_agent(request)
            login_request.save(
                update_fields=[
                    "status",
                    "completed_at",
                    "approved_at",
                    "approver_ip",
                    "approver_user_agent",
                ]
            )
    except SignInError as error:
        report_link_failure(token_hash, error.code, request)
        raise
    if wrong:
        report_link_failure(token_hash, "request_locked", request)
        audit.record(
            AuthEvent.Kind.LOCKED,
            request=request,
            login_request=login_request,
            reason="wrong_pick",
            details=audit.devices(login_request, approver=request),
        )
        signals.request_locked.send(LoginRequest, login_request=login_request, request=request)
        raise SignInError("request_locked")
    audit.record(
        AuthEvent.Kind.APPROVED,
        request=request,
        login_request=login_request,
        details=audit.devices(login_request),
    )


def load_request(public_id: str | None) -> LoginRequest:
    """The request a waiting page is about, in one read."""
    login_request = (
        LoginRequest.objects.filter(public_id=public_id).first()
        if is_public_id(public_id)
        else None
    )
    if login_request is None:
        raise SignInError("request_not_found")
    return login_request


def collect_approval(
    login_request: LoginRequest,
    *,
    request: HttpRequest | None = None,
    holds_request_id: bool = False,
) -> tuple[LoginRequest, AbstractBaseUser] | None:
    """Sign in the client that asked once its request was approved elsewhere.

    ``login_request`` was just read (``load_request``); while it waits, this
    returns ``None`` without touching the database again. Only the client that
    asked can collect: a browser by its binding cookie, an API client by the
    request id that only it was given (``holds_request_id``). The request is
    consumed exactly once.
    """
    if login_request.status == Status.PENDING and not login_request.is_expired():
        return None
    now = clock.now()
    with transaction.atomic():
        locked = LoginRequest.objects.select_for_update().filter(pk=login_request.pk).first()
        if locked is None:
            raise SignInError("request_not_found")
        if locked.status != Status.APPROVED:
            raise SignInError(refusal(locked, now) or "request_not_found")
        if locked.is_expired(now):
            raise SignInError("code_expired")
        if not (holds_request_id or is_bound(request, locked)):
            raise SignInError("browser_mismatch")
        user = consume(locked, now)
    return locked, user


def wait_status(login_request: LoginRequest) -> WaitStatus:
    """The state of a request for the page that waits on it."""
    status = login_request.status
    if status == Status.PENDING and login_request.is_expired():
        status = "expired"
    shows_delivery = get_adapter().is_signup_open(login_request.email)
    return WaitStatus(
        status=status,
        delivery=_DELIVERY_LABELS[Delivery(login_request.delivery)] if shows_delivery else None,
        match_number=login_request.match_number if app_settings.CROSS_DEVICE_APPROVAL else None,
    )


def check_poll_rate(request: HttpRequest | None) -> None:
    """Polls are cheap (one read, no write), and still limited per client."""
    limits.check_poll(request)
