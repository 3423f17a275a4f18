"""Checking a code or a link, and consuming it exactly once.

Every check runs under a row lock on the request (``lock_request``), so
concurrent submissions of the same secret are serialised and only the first
can consume it. SQLite has no row locks: there the lock is its database-wide
write lock. And consuming is itself conditional (``status`` still what was
read), so a request is used once even by a caller that took no lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest

from .. import audit, clock, limits, signals
from ..adapter import get_adapter
from ..addresses import normalize_email
from ..conf import app_settings
from ..crypto import codes_match, hash_code, hash_token
from ..errors import SignInError
from ..models import AuthEvent, LoginRequest, LoginSecret, is_public_id
from . import budget, trusted_devices
from .sessions import is_bound, is_requesting_client
from .tokens import TokenPair

__all__ = [
    "RETRYABLE_ON_PAGE",
    "Completed",
    "Finisher",
    "LinkPreview",
    "complete_code",
    "complete_link",
    "confirm_link",
    "consume",
    "lock_link_request",
    "lock_request",
    "preview_link",
    "preview_link_hash",
    "refusal",
    "report_link_failure",
    "verify_code",
]

logger = logging.getLogger("passwordless")

Status = LoginRequest.Status


@dataclass(frozen=True)
class LinkPreview:
    """What the confirmation page of a magic link may show; holds no secret.

    ``same_browser`` tells whether the link was opened in the browser that
    asked (it holds the binding cookie): only there can the link be used in
    one click. Anywhere else, a mail scanner included, the choice is to
    approve the waiting device by its number, or to type the code.
    ``approval_off``: after too many wrong numbers for the address, only the code.
    """

    token_hash: str
    login_request: LoginRequest
    same_browser: bool
    approval_off: bool = False


def refusal(login_request: LoginRequest, now: datetime) -> str | None:
    """The error code that stops this request from completing, or ``None``.

    An approved request is complete too: only the browser that asked may now
    collect it (``approval.collect_approval``).
    """
    if login_request.status in (Status.SIGNED_IN, Status.APPROVED):
        return "link_used"
    if login_request.status == Status.LOCKED:
        return "request_locked"
    if login_request.status == Status.ENDED:
        return "request_superseded"
    if login_request.is_expired(now):
        return "code_expired"
    return None


#: The errors after which the link's confirmation page is shown again, with the error:
#: the link itself is still good, only the choice made on the page failed. Any other
#: error ends the page (the link is used, expired, locked or unknown).
RETRYABLE_ON_PAGE = frozenset(
    {"number_missing", "number_wrong", "approval_off", "browser_mismatch", "code_invalid"}
)


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


def complete_code(
    public_id: str, code: str, *, request: HttpRequest | None, finisher: Finisher | None
) -> Completed:
    """Consume the request if ``code`` is one of its live codes, and sign in by ``finisher``
    in the same transaction; count a failure otherwise.

    ``code`` must already have the shape of a code (``forms.CodeForm``). Without a
    ``finisher`` the request is only consumed (``verify_code``).
    Raises ``SignInError``: after ``MAX_ATTEMPTS`` wrong codes the request is
    locked, and after ``FAILURE_LIMIT`` wrong codes for one address, across
    requests, codes for it wait (``rate_limited``); even the right code fails.
    """
    check_verify_rate(request)
    if not is_public_id(public_id):
        raise SignInError("request_not_found")
    now = clock.now()
    retry_after = 0
    just_locked = False
    with transaction.atomic():
        login_request = _locked_request(public_id=public_id)
        if login_request is None:
            raise SignInError("request_not_found")
        reason = refusal(login_request, now)
        standing = None
        device = _trusted_requester(request, login_request)
        if reason is None:
            standing = budget.locked(login_request.email)
            # The browser that asked, trusted for this address, is not held back by
            # failures that anyone can add to the address (``trusted_devices``).
            retry_after = 0 if device else budget.wait_of(standing, now)
            reason = "rate_limited" if retry_after else None
        if reason is None:
            digest = hash_code(login_request.public_id, code)
            # Every candidate is compared, so timing does not tell which one matched.
            matches = [codes_match(s.code_hash, digest) for s in _live_secrets(login_request, now)]
            if any(matches):
                user = consume(login_request, now, reset_budget=budget.has_failures(standing))
                tokens = finisher.finish(login_request, user) if finisher else None
                return Completed(login_request, user, tokens)
            reason = _count_failure(login_request, now)
            just_locked = reason == "request_locked"
    attempts_left = max(app_settings.MAX_ATTEMPTS - login_request.attempts, 0)
    if device and reason in ("code_invalid", "request_locked"):
        trusted_devices.count_failure(device)
    _report_failure(login_request, reason, request, just_locked=just_locked)
    if reason == "rate_limited":
        raise SignInError(reason, retry_after=retry_after)
    raise SignInError(reason, attempts_left=attempts_left)


def verify_code(
    public_id: str, code: str, *, request: HttpRequest | None = None
) -> tuple[LoginRequest, AbstractBaseUser]:
    """``complete_code`` without signing in: consume the request and return its account."""
    done = complete_code(public_id, code, request=request, finisher=None)
    return done.login_request, done.user


def preview_link(token: str, request: HttpRequest | None = None) -> LinkPreview:
    """Look a link up without consuming anything: opening a link must change nothing,
    because mail scanners open links before people do."""
    return preview_link_hash(hash_token(token), request)


def preview_link_hash(token_hash: str, request: HttpRequest | None = None) -> LinkPreview:
    secret = LoginSecret.objects.select_related("request").filter(token_hash=token_hash).first()
    if secret is None:
        raise SignInError("request_not_found")
    now = clock.now()
    reason = refusal(secret.request, now) or _secret_refusal(secret, now)
    if reason is not None:
        raise SignInError(reason)
    same_browser = is_bound(request, secret.request)
    approval_off = not same_browser and budget.approval_is_off_for(secret.request.email)
    return LinkPreview(
        token_hash=token_hash,
        login_request=secret.request,
        same_browser=same_browser,
        approval_off=approval_off,
    )


def complete_link(
    token_hash: str,
    *,
    request: HttpRequest | None,
    code_verifier: str | None = None,
    finisher: Finisher | None,
) -> Completed:
    """Consume the request of a previewed link for the client that asked, and sign in by
    ``finisher`` in the same transaction; one click.

    The link alone is not enough: it travels through mail servers, scanners,
    proxies' logs and forwarded messages. The caller must also be the client that
    asked: the browser holding the binding cookie, or the API client holding the
    verifier of its PKCE challenge (``code_verifier``; the JSON API passes a string,
    empty when none was sent). Anyone else gets ``browser_mismatch`` on the web and
    ``client_mismatch`` on the API, and nothing changes: the link stays usable,
    since the person may simply have opened the mail on their phone. ``finisher``
    is as in ``complete_code``.
    """
    check_verify_rate(request)
    now = clock.now()
    try:
        with transaction.atomic():
            login_request = lock_link_request(token_hash, now)
            if not is_requesting_client(request, login_request, code_verifier):
                raise SignInError(
                    "browser_mismatch" if code_verifier is None else "client_mismatch"
                )
            user = consume(login_request, now)
            tokens = finisher.finish(login_request, user) if finisher else None
    except SignInError as error:
        report_link_failure(token_hash, error.code, request)
        raise
    return Completed(login_request, user, tokens)


def confirm_link(
    token_hash: str, *, request: HttpRequest | None = None, code_verifier: str | None = None
) -> tuple[LoginRequest, AbstractBaseUser]:
    """``complete_link`` without signing in: consume the request and return its account."""
    done = complete_link(token_hash, request=request, code_verifier=code_verifier, finisher=None)
    return done.login_request, done.user


def lock_link_request(token_hash: str, now: datetime) -> LoginRequest:
    """Lock the request of a link for update, or raise why the link cannot be used.

    Call inside ``transaction.atomic()``. Failures raise without writing, so
    they are reported by the caller.
    """
    login_request = _locked_request(secrets__token_hash=token_hash)
    if login_request is None:
        raise SignInError("request_not_found")
    reason = refusal(login_request, now)
    if reason is None and token_hash not in {
        s.token_hash for s in _live_secrets(login_request, now)
    }:
        reason = "code_expired"
    if reason is not None:
        raise SignInError(reason)
    return login_request


def report_link_failure(token_hash: str, reason: str, request: HttpRequest | None) -> None:
    secret = LoginSecret.objects.select_related("request").filter(token_hash=token_hash).first()
    if secret is not None:
        _report_failure(secret.request, reason, request)


def check_verify_rate(request: HttpRequest | None) -> None:
    try:
        limits.check_verify(request)
    except SignInError as error:
        audit.record(AuthEvent.Kind.RATE_LIMITED, request=request, reason="verify")
        raise error


def _trusted_requester(request: HttpRequest | None, login_request: LoginRequest) -> str | None:
    """The trusted device of this browser, if it is the one that asked for the request."""
    if request is None or not is_bound(request, login_request):
        return None
    return trusted_devices.vouched_device(request, login_request.email)


def lock_request(
    rows: QuerySet[LoginRequest], *, skip_locked: bool = False
) -> LoginRequest | None:
    """The first of ``rows``, locked for update until the transaction ends.

    Call inside ``transaction.atomic()``, before anything else reads in it. On SQLite,
    where ``select_for_update`` does nothing, a write to the rows comes first: it takes
    the database's write lock, waiting for the writer that holds it, and keeps it to the
    end of the transaction. A transaction that reads first and writes later fails
    instead ("database is locked") when another writer came in between.
    """
    if not connections[rows.db].features.has_select_for_update:
        rows.update(attempts=F("attempts"))
    return (
        rows.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related("user")
        .first()
    )


def _locked_request(**lookup: object) -> LoginRequest | None:
    return lock_request(LoginRequest.objects.filter(**lookup))


def _live_secrets(login_request: LoginRequest, now: datetime) -> list[LoginSecret]:
    """The most recent secrets of the request that have not expired."""
    recent = login_request.secrets.all()[: app_settings.VALID_SECRETS]
    lifetime = app_settings.REQUEST_LIFETIME
    return [s for s in recent if now < s.created_at + lifetime]


def _secret_refusal(secret: LoginSecret, now: datetime) -> str | None:
    live = _live_secrets(secret.request, now)
    return None if secret.pk in {s.pk for s in live} else "code_expired"


def _count_failure(login_request: LoginRequest, now: datetime) -> str:
    budget.record_failure(login_request.email, now)
    login_request.attempts += 1
    if login_request.attempts >= app_settings.MAX_ATTEMPTS:
        login_request.status = Status.LOCKED
        login_request.completed_at = now
    login_request.save(update_fields=["attempts", "status", "completed_at"])
    return "request_locked" if login_request.status == Status.LOCKED else "code_invalid"


def consume(
    login_request: LoginRequest,
    now: datetime,
    *,
    reset_budget: bool = True,
    reset_approvals: bool = True,
) -> AbstractBaseUser:
    """Mark a locked, valid request used and return the account to sign in, creating it if
    allowed. Call inside the transaction that locked the request. A success clears the
    address's failure budget; ``reset_budget=False`` when the caller read it and found
    nothing to clear (one statement fewer), ``reset_approvals=False`` to keep its wrong
    approval numbers (see ``budget.reset``)."""
    user = _resolve_user(login_request)
    if user is None:
        raise SignInError("account_disabled" if login_request.user else "signup_closed")
    # Only if nobody consumed it since it was read: the lock makes that certain, and this
    # holds even where no lock was taken.
    used = LoginRequest.objects.filter(pk=login_request.pk, status=login_request.status).update(
        user=user, status=Status.SIGNED_IN, completed_at=now
    )
    if not used:
        raise SignInError("link_used")
    login_request.completed_at = now
    login_request.user = user  # type: ignore[assignment]
    login_request.status = Status.SIGNED_IN
    if reset_budget:
        budget.reset(login_request.email, approvals=reset_approvals)
    return user


def _resolve_user(login_request: LoginRequest) -> AbstractBaseUser | None:
    adapter = get_adapter()
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
    if not adapter.is_signup_open(login_request.email):
        return None
    try:
        with transaction.atomic():
            return adapter.create_user(login_request.email)
    except IntegrityError:
        # Created a moment ago by a sign-in of the same address on another request.
        return adapter.get_user(login_request.email)


def _report_failure(
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
