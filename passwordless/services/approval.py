"""Cross-device sign-in: approve the waiting device from the one that opened the link.

The device that asked shows a 2-digit number (00 to 99); the person types it on
the device that opened the link, as in Microsoft Authenticator's number matching.
A right number approves the request, and only the client that asked (the browser
holding the binding cookie, or the API client holding the PKCE verifier) can then
collect the sign-in. A wrong number changes nothing but the address's approval
budget: after ``APPROVAL_FAILURE_LIMIT`` (3) wrong numbers, across requests,
approving is off for the address until it signs in by code or by a link in the
browser that asked. Whoever types blindly (a confused person, a scanner that
fills in forms) therefore wins at most 3 times in 100 per such sign-in, and the
person's own code and link keep working throughout.

"Whoever opens the link approves the waiting device" (Clerk's cross-device
mode) is refused on purpose: an attacker who starts a sign-in for a victim's
address on their own device would be signed in by the victim's mail scanner.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest

from .. import audit, clock, limits, signals
from ..adapter import get_adapter
from ..client import client_ip, user_agent
from ..conf import app_settings
from ..errors import SignInError
from ..models import AuthEvent, LoginRequest
from . import budget
from .consumption import (
    Completed,
    Finisher,
    budget_to_reset,
    check_verify_rate,
    consume,
    lock_link_request,
    lock_request,
    refusal,
    report_link_failure,
)
from .sessions import is_requesting_client

__all__ = [
    "WaitStatus",
    "approve",
    "check_poll_rate",
    "collect_approval",
    "ensure_collectable",
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
    ``match_number`` is ``None`` when cross-device approval is off, for the site or,
    after wrong numbers, for this address (``approval_off``; told only when sign-up is
    open, for the same reason as ``delivery``).
    """

    status: str
    delivery: str | None
    match_number: str | None
    approval_off: bool = False


def approve(token_hash: str, number: str | None, *, request: HttpRequest | None = None) -> None:
    """Approve the waiting device if ``number`` is the one it shows.

    Without a number (a bare POST, a scanner submitting the form as it is) nothing
    changes. A wrong number counts against the address's approval budget, under its
    row lock so that concurrent answers cannot pass the cap, and nothing else: the
    request stays usable.
    """
    number = (number or "").strip()
    if not (number.isascii() and number.isdigit() and 1 <= len(number) <= 2):
        raise SignInError("number_missing")
    if not app_settings.CROSS_DEVICE_APPROVAL:
        raise SignInError("browser_mismatch")
    check_verify_rate(request)
    now = clock.now()
    left = 0
    try:
        with transaction.atomic():
            login_request = lock_link_request(token_hash, now)
            standing = budget.for_update_or_new(login_request.email)
            if budget.approval_is_off(standing):
                raise SignInError("approval_off")
            right = int(number) == login_request.match_number
            if right:
                login_request.status = Status.APPROVED
                login_request.approved_at = now
                login_request.approver_ip = client_ip(request)
                login_request.approver_user_agent = user_agent(request)
                login_request.save(
                    update_fields=["status", "approved_at", "approver_ip", "approver_user_agent"]
                )
            else:
                standing = budget.record_wrong_number(login_request.email)
                left = max(app_settings.APPROVAL_FAILURE_LIMIT - standing.approval_failures, 0)
    except SignInError as error:
        report_link_failure(token_hash, error.code, request)
        raise
    if not right:
        reason = "number_wrong" if left else "approval_off"
        report_link_failure(token_hash, reason, request)
        if not left:
            signals.request_locked.send(LoginRequest, login_request=login_request, request=request)
            raise SignInError("approval_off")
        raise SignInError("number_wrong", attempts_left=left)
    audit.record(
        AuthEvent.Kind.APPROVED,
        request=request,
        login_request=login_request,
        details=audit.devices(login_request),
    )


def load_request(public_id: str | None) -> LoginRequest:
    """The request a waiting page is about, in one read."""
    login_request = LoginRequest.objects.by_public_id(public_id)
    if login_request is None:
        raise SignInError("request_not_found")
    return login_request


def collect_approval(
    login_request: LoginRequest,
    *,
    request: HttpRequest | None,
    code_verifier: str | None = None,
    finisher: Finisher | None,
) -> Completed | None:
    """Sign in the client that asked, by ``finisher``, once its request was approved elsewhere.

    ``login_request`` was just read (``load_request``); while it waits, this
    returns ``None`` without touching the database again. Only the client that
    asked can collect: a browser by its binding cookie, an API client by the
    verifier of its PKCE challenge (``code_verifier``, as in
    ``verification.confirm_link``). The request id is not proof: it sits in the
    poll's URL, and URLs end up in logs. The request is consumed exactly once, and
    signed in in the same transaction (``finisher`` as in ``verification.complete_code``).
    """
    if login_request.status == Status.PENDING and not login_request.is_expired():
        return None
    now = clock.now()
    with transaction.atomic():
        locked = lock_request(LoginRequest.objects.filter(pk=login_request.pk), with_budget=True)
        if locked is None:
            raise SignInError("request_not_found")
        if locked.status != Status.APPROVED:
            raise SignInError(refusal(locked, now) or "request_not_found")
        if locked.is_expired(now):
            raise SignInError("expired")
        if not is_requesting_client(request, locked, code_verifier):
            raise SignInError("browser_mismatch" if code_verifier is None else "client_mismatch")
        # An approval proves the waiting device was seen, not the mailbox: it does not turn
        # approving back on after wrong numbers.
        user = consume(locked, now, reset_budget=budget_to_reset(locked), reset_approvals=False)
        tokens = finisher.finish(locked, user) if finisher else None
    return Completed(locked, user, tokens)


def ensure_collectable(login_request: LoginRequest) -> None:
    """Raise why ``login_request`` can no longer be collected (used, locked, superseded,
    expired); a request still waiting or approved passes. For polls that only report."""
    now = clock.now()
    if login_request.status == Status.APPROVED and not login_request.is_expired(now):
        return
    reason = refusal(login_request, now)
    if reason is not None:
        raise SignInError(reason)


def wait_status(login_request: LoginRequest) -> WaitStatus:
    """The state of a request for the page that waits on it."""
    status = login_request.status
    if status == Status.PENDING and login_request.is_expired():
        status = "expired"
    shows_state = get_adapter().may_sign_up(login_request)  # issue 18: or invited
    # With sign-up closed, only existing accounts get links, so only they can have
    # approving turned off: then the page keeps the number as if nothing happened (the
    # approval page still refuses it), or it would tell which addresses have accounts.
    approval_off = shows_state and budget.approval_is_off_for(login_request.email)
    shows_number = app_settings.CROSS_DEVICE_APPROVAL and not approval_off
    return WaitStatus(
        status=status,
        delivery=_DELIVERY_LABELS[Delivery(login_request.delivery)] if shows_state else None,
        match_number=login_request.match_text if shows_number else None,
        approval_off=approval_off,
    )


def check_poll_rate(request: HttpRequest | None) -> None:
    """Polls are cheap (one read, no write), and still limited per client."""
    limits.check_poll(request)
