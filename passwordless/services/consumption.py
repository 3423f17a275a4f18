"""Consuming a sign-in request exactly once, whichever way it completes.

The code, the link and a collected approval all end here: the request is locked
for update (``lock_request``), refused if it is used, locked, ended or expired
(``refusal``), and consumed conditionally (``consume``: ``status`` still what was
read), so a request is used once even by a caller that took no lock. SQLite has no
row locks: there the lock is its database-wide write lock. A completion signs in
inside the same transaction through a ``Finisher`` and returns ``Completed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.http import HttpRequest

from .. import audit, clock, limits, signals
from ..adapter import get_adapter
from ..addresses import normalize_email
from ..conf import app_settings
from ..errors import SignInError
from ..models import AuthEvent, EmailChange, Invitation, LoginRequest, LoginSecret
from . import budget
from .tokens import TokenPair

__all__ = [
    "Completed",
    "Finisher",
    "budget_to_reset",
    "check_verify_rate",
    "consume",
    "live_secrets",
    "lock_link_request",
    "lock_request",
    "lock_request_where",
    "refusal",
    "report_failure",
    "report_link_failure",
    "secret_refusal",
]

Status = LoginRequest.Status
Purpose = LoginRequest.Purpose
_BUDGET_FLAG = "budget_to_reset"


def refusal(login_request: LoginRequest, now: datetime) -> str | None:
    """The error code that stops this request from completing, or ``None``.

    An approved request is complete too: only the browser that asked may now
    collect it (``approval.collect_approval``).
    """
    if login_request.status in (Status.SIGNED_IN, Status.CONFIRMED, Status.APPROVED):
        return "already_used"
    if login_request.status == Status.LOCKED:
        return "request_locked"
    if login_request.status == Status.ENDED:
        return "request_superseded"
    if login_request.is_expired(now):
        return "expired"
    return None


class Finisher(Protocol):
    """What a completion does with the request it consumed: sign in, as a browser session
    (``signin.BrowserSession``) or by API tokens (``signin.ApiTokens``).

    ``finish`` runs inside the completion's one transaction, which any error it raises
    ends whole: the request is not used up, and a success is one commit. It needs no
    savepoint of its own. It returns the token pair it issued, if any.
    """

    def finish(self, login_request: LoginRequest, user: AbstractBaseUser) -> TokenPair | None:
        """Sign ``user`` in for ``login_request``, inside the caller's transaction."""


@dataclass(frozen=True)
class Completed:
    """A completed sign-in: the consumed request, its account, and the token pair when
    the finisher issued one (``signin.ApiTokens``)."""

    login_request: LoginRequest
    user: AbstractBaseUser
    tokens: TokenPair | None = None


def lock_link_request(
    token_hash: str, now: datetime, *, purpose: str = Purpose.SIGN_IN
) -> LoginRequest:
    """Lock the request of a link for update, or raise why the link cannot be used.

    Only a request of ``purpose`` is found: the link of a step-up or of a new address
    never signs anyone in. Call inside ``transaction.atomic()``. Failures raise without
    writing, so they are reported by the caller.
    """
    login_request = lock_request(
        LoginRequest.objects.filter(secrets__token_hash=token_hash, purpose=purpose),
        with_budget=True,
    )
    if login_request is None:
        raise SignInError("request_not_found")
    reason = refusal(login_request, now)
    if reason is None and token_hash not in {
        s.token_hash for s in live_secrets(login_request, now)
    }:
        reason = "expired"
    if reason is not None:
        raise SignInError(reason)
    return login_request


def report_link_failure(token_hash: str, reason: str, request: HttpRequest | None) -> None:
    secret = LoginSecret.objects.select_related("request").filter(token_hash=token_hash).first()
    if secret is not None:
        report_failure(secret.request, reason, request)


def check_verify_rate(request: HttpRequest | None) -> None:
    try:
        limits.check_verify(request)
    except SignInError as error:
        audit.record(AuthEvent.Kind.RATE_LIMITED, request=request, reason="verify")
        raise error


def lock_request(
    rows: QuerySet[LoginRequest], *, skip_locked: bool = False, with_budget: bool = False
) -> LoginRequest | None:
    """The first of ``rows``, locked for update until the transaction ends.

    ``with_budget`` also reads, in the same statement, whether the address's failure
    budget holds anything for ``consume`` to reset (``budget_to_reset``).

    Call inside ``transaction.atomic()``, before anything else reads in it. On SQLite,
    where ``select_for_update`` does nothing, a write to the rows comes first: it takes
    the database's write lock, waiting for the writer that holds it, and keeps it to the
    end of the transaction. A transaction that reads first and writes later fails
    instead ("database is locked") when another writer came in between.
    """
    if not connections[rows.db].features.has_select_for_update:
        rows.update(attempts=F("attempts"))
    if with_budget:
        rows = rows.annotate(**{_BUDGET_FLAG: Exists(budget.failing(OuterRef("email")))})
    return (
        rows.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related("user")
        .first()
    )


def budget_to_reset(login_request: LoginRequest) -> bool:
    """What ``lock_request(with_budget=True)`` read; ``True`` (reset, to be sure) otherwise."""
    return bool(getattr(login_request, _BUDGET_FLAG, True))


def lock_request_where(**lookup: object) -> LoginRequest | None:
    return lock_request(LoginRequest.objects.filter(**lookup))


def live_secrets(login_request: LoginRequest, now: datetime) -> list[LoginSecret]:
    """The most recent secrets of the request that have not expired."""
    recent = login_request.secrets.all()[: app_settings.VALID_SECRETS]
    lifetime = app_settings.REQUEST_LIFETIME
    return [s for s in recent if now < s.created_at + lifetime]


def secret_refusal(secret: LoginSecret, now: datetime) -> str | None:
    live = live_secrets(secret.request, now)
    return None if secret.pk in {s.pk for s in live} else "expired"


def consume(
    login_request: LoginRequest,
    now: datetime,
    *,
    purpose: str = Purpose.SIGN_IN,
    reset_budget: bool = True,
    reset_approvals: bool = True,
) -> AbstractBaseUser:
    """Mark a locked, valid request used and return the account to sign in, creating it if
    allowed. Call inside the transaction that locked the request. A success clears the
    address's failure budget; ``reset_budget=False`` when the caller read it and found
    nothing to clear (one statement fewer), ``reset_approvals=False`` to keep its wrong
    approval numbers (see ``budget.reset``).

    ``purpose`` is what the caller is about to do with it: a request made for another
    purpose is refused as unknown, whatever its code or link, so that the code of a
    step-up or of a new address never signs anyone in (the callers' lookups already
    filter by purpose; this is the last word)."""
    if login_request.purpose != purpose:
        raise SignInError("request_not_found")
    user = _resolve_user(login_request)
    if user is None:
        raise SignInError("account_disabled" if login_request.user else "signup_closed")
    status = Status.SIGNED_IN if purpose == Purpose.SIGN_IN else Status.CONFIRMED
    # Only if nobody consumed it since it was read: the lock makes that certain, and this
    # holds even where no lock was taken.
    used = LoginRequest.objects.filter(
        pk=login_request.pk, status=login_request.status, purpose=purpose
    ).update(user=user, status=status, completed_at=now)
    if not used:
        raise SignInError("already_used")
    login_request.completed_at = now
    login_request.user = user  # type: ignore[assignment]
    login_request.status = status
    if reset_budget:
        budget.reset(login_request.email, approvals=reset_approvals)
    return user


def _resolve_user(login_request: LoginRequest) -> AbstractBaseUser | None:
    adapter = get_adapter()
    if login_request.purpose != Purpose.SIGN_IN:
        return _account_of_confirmation(login_request)
    user: AbstractBaseUser | None = login_request.user or adapter.get_user(login_request.email)
    if user is not None and login_request.user is not None:
        # The address is the credential: a request mailed to an address the account no
        # longer has signs nobody in, even if nothing ended it (a queryset ``update()``
        # sends no signal). Refused like an ended request, which it should have been.
        try:
            current = normalize_email(getattr(user, user.get_email_field_name()) or "")
        except ValidationError:
            current = ""  # a stored address that is not valid matches no request
        if current != login_request.email:
            raise SignInError("request_superseded")
    if user is not None:
        return user if adapter.can_sign_in(user) else None
    if _undo_pending(login_request.email):
        # Its owner may take it back with the undo link: an account made for it now would
        # refuse that undo (``undo_taken``), and the person signing in is likely that owner.
        raise SignInError("address_moved")
    if not adapter.may_sign_up(login_request):  # issue 18: the policy, or an invitation
        return None
    try:
        with transaction.atomic():
            created = adapter.create_user(login_request.email)
            if login_request.invitation_id:
                # Its one use: the account it was for now exists.
                Invitation.objects.filter(pk=login_request.invitation_id, used_at=None).update(
                    used_at=clock.now()
                )
            return created
    except IntegrityError:
        # Created a moment ago by a sign-in of the same address on another request.
        return adapter.get_user(login_request.email)


def _undo_pending(email: str) -> bool:
    """Whether ``email`` was an account's until a change its owner may still undo."""
    return EmailChange.objects.filter(
        old_email__iexact=email,
        confirmed_at__isnull=False,
        undone_at=None,
        undo_expires_at__gt=clock.now(),
    ).exists()


def _account_of_confirmation(login_request: LoginRequest) -> AbstractBaseUser | None:
    """The account a step-up or an address change was asked for: the one that asked, never
    an account found by the address (a new address may be another account's), and never
    a new one. A step-up's address must still be the account's, as a sign-in's must."""
    user: AbstractBaseUser | None = login_request.user
    if user is None:
        return None
    if login_request.purpose == Purpose.REAUTHENTICATE:
        try:
            current = normalize_email(getattr(user, user.get_email_field_name()) or "")
        except ValidationError:
            current = ""
        if current != login_request.email:
            raise SignInError("request_superseded")
    return user if get_adapter().can_sign_in(user) else None


def report_failure(
    login_request: LoginRequest,
    reason: str,
    request: HttpRequest | None,
    *,
    just_locked: bool = False,
) -> None:
    kind = AuthEvent.Kind.RATE_LIMITED if reason == "rate_limited" else AuthEvent.Kind.FAILED
    audit.record(kind, request=request, login_request=login_request, reason=reason)
    signals.login_failed.send(
        LoginRequest, login_request=login_request, request=request, reason=reason
    )
    if just_locked:
        audit.record(AuthEvent.Kind.LOCKED, request=request, login_request=login_request)
        signals.request_locked.send(LoginRequest, login_request=login_request, request=request)
