"""Completing a sign-in by its code or by its link, for the client that asked.

Both run in one transaction under the request's row lock and consume it through
``consumption``, so concurrent submissions of the same secret are serialised and
only the first signs in. Opening a link changes nothing (``preview_link``): mail
scanners open links before people do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from .. import clock
from ..conf import app_settings
from ..crypto import digests_equal, hash_code, hash_token
from ..errors import SignInError
from ..models import LoginRequest, LoginSecret, UserSession, is_public_id
from . import budget, reauthentication, trusted_devices
from .consumption import (
    Completed,
    Finisher,
    budget_to_reset,
    check_verify_rate,
    consume,
    live_secrets,
    lock_link_request,
    lock_request_where,
    refusal,
    report_failure,
    report_link_failure,
    secret_refusal,
)
from .sessions import is_bound, is_requesting_client

__all__ = [
    "RETRYABLE_ON_PAGE",
    "LinkPreview",
    "RecordProof",
    "complete_code",
    "complete_link",
    "confirm_code",
    "confirm_link",
    "preview_link",
    "preview_link_hash",
    "prove_by_code",
    "verify_code",
]

Status = LoginRequest.Status
Purpose = LoginRequest.Purpose


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


#: The errors after which the link's confirmation page is shown again, with the error:
#: the link itself is still good, only the choice made on the page failed. Any other
#: error ends the page (the link is used, expired, locked or unknown).
RETRYABLE_ON_PAGE = frozenset(
    {"number_missing", "number_wrong", "approval_off", "browser_mismatch", "code_invalid"}
)


def complete_code(
    public_id: str,
    code: str,
    *,
    request: HttpRequest | None,
    finisher: Finisher | None,
    purpose: str = Purpose.SIGN_IN,
    user_session: UserSession | None = None,
) -> Completed:
    """Consume the request if ``code`` is one of its live codes, and sign in by ``finisher``
    in the same transaction; count a failure otherwise.

    ``code`` must already have the shape of a code (``forms.CodeForm``). Without a
    ``finisher`` the request is only consumed (``verify_code``).
    Raises ``SignInError``: after ``MAX_ATTEMPTS`` wrong codes the request is
    locked, and after ``FAILURE_LIMIT`` wrong codes for one address, across
    requests, codes for it wait (``rate_limited``); even the right code fails.

    Only a request of ``purpose`` is found. A step-up's or an address change's
    (``confirm_code``) is found only for the ``user_session`` that asked for it: the
    same code typed in another session, or on the sign-in page, is "not found".
    """
    check_verify_rate(request)
    if not is_public_id(public_id):
        raise SignInError("request_not_found")
    lookup = _lookup(purpose, user_session)
    now = clock.now()
    retry_after = 0
    just_locked = False
    with transaction.atomic():
        login_request = lock_request_where(public_id=public_id, **lookup)
        if login_request is None:
            raise SignInError("request_not_found")
        reason = refusal(login_request, now)
        standing = None
        device = _trusted_requester(request, login_request)
        if reason is None:
            standing = budget.for_update(login_request.email)
            # The browser that asked, trusted for this address, is not held back by
            # failures that anyone can add to the address (``trusted_devices``).
            retry_after = 0 if device else budget.wait_of(standing, now)
            reason = "rate_limited" if retry_after else None
        if reason is None:
            digest = hash_code(login_request.public_id, code)
            # Every candidate is compared, so timing does not tell which one matched.
            matches = [
                digests_equal(s.code_hash, digest) for s in live_secrets(login_request, now)
            ]
            if any(matches):
                user = consume(
                    login_request,
                    now,
                    purpose=purpose,
                    reset_budget=budget.has_failures(standing),
                )
                tokens = finisher.finish(login_request, user) if finisher else None
                return Completed(login_request, user, tokens)
            reason = _count_failure(login_request, now)
            just_locked = reason == "request_locked"
    attempts_left = max(app_settings.MAX_ATTEMPTS - login_request.attempts, 0)
    if device and reason in ("code_invalid", "request_locked"):
        trusted_devices.count_failure(device)
    report_failure(login_request, reason, request, just_locked=just_locked)
    if reason == "rate_limited":
        raise SignInError(reason, retry_after=retry_after)
    raise SignInError(reason, attempts_left=attempts_left)


def verify_code(
    public_id: str, code: str, *, request: HttpRequest | None = None
) -> tuple[LoginRequest, AbstractBaseUser]:
    """``complete_code`` without signing in: consume the request and return its account."""
    done = complete_code(public_id, code, request=request, finisher=None)
    return done.login_request, done.user


class RecordProof:
    """The finisher of a step-up: record the proof on the session that asked, in the
    transaction that consumed its request (``reauthentication.record_proof``)."""

    def __init__(self, user_session: UserSession, request: HttpRequest | None) -> None:
        self.user_session = user_session
        self.request = request

    def finish(self, login_request: LoginRequest, user: AbstractBaseUser) -> None:
        reauthentication.record_proof(self.user_session, "code", self.request)


def confirm_code(
    public_id: str,
    code: str,
    *,
    purpose: str,
    user_session: UserSession,
    request: HttpRequest | None,
    finisher: Finisher,
) -> Completed:
    """Complete a step-up or an address change (``start.start_confirmation``) by its code,
    typed in the session that asked, and finish it by ``finisher`` in the same
    transaction. Wrong codes count as a sign-in's do: the same request attempts and the
    same address budget."""
    return complete_code(
        public_id,
        code,
        request=request,
        finisher=finisher,
        purpose=purpose,
        user_session=user_session,
    )


def prove_by_code(
    public_id: str, code: str, *, user_session: UserSession, request: HttpRequest | None
) -> Completed:
    """A step-up by emailed code: the proof is recorded on ``user_session`` if the code is
    right and the request was asked by that very session."""
    return confirm_code(
        public_id,
        code,
        purpose=Purpose.REAUTHENTICATE,
        user_session=user_session,
        request=request,
        finisher=RecordProof(user_session, request),
    )


def preview_link(token: str, request: HttpRequest | None = None) -> LinkPreview:
    """Look a link up without consuming anything: opening a link must change nothing,
    because mail scanners open links before people do."""
    return preview_link_hash(hash_token(token), request)


def preview_link_hash(token_hash: str, request: HttpRequest | None = None) -> LinkPreview:
    secret = LoginSecret.objects.select_related("request").filter(token_hash=token_hash).first()
    if secret is None:
        raise SignInError("request_not_found")
    now = clock.now()
    reason = refusal(secret.request, now) or secret_refusal(secret, now)
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
    purpose: str = Purpose.SIGN_IN,
    user_session: UserSession | None = None,
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

    For another ``purpose`` (an address change's link), the client that asked is the
    signed-in ``user_session`` that started it, and only that session may use the link.
    """
    check_verify_rate(request)
    now = clock.now()
    try:
        with transaction.atomic():
            login_request = lock_link_request(token_hash, now, purpose=purpose)
            if purpose == Purpose.SIGN_IN:
                asked_here = is_requesting_client(request, login_request, code_verifier)
            else:
                asked_here = _is_session_of(login_request, user_session)
            if not asked_here:
                raise SignInError(
                    "browser_mismatch" if code_verifier is None else "client_mismatch"
                )
            user = consume(
                login_request, now, purpose=purpose, reset_budget=budget_to_reset(login_request)
            )
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


def _lookup(purpose: str, user_session: UserSession | None) -> dict[str, object]:
    """How ``complete_code`` finds its request: by purpose, and for anything but a sign-in,
    only among the requests of the live session that asked."""
    if purpose == Purpose.SIGN_IN:
        return {"purpose": purpose}
    if user_session is None or user_session.ended_at is not None:
        raise SignInError("request_not_found")
    return {"purpose": purpose, "session": user_session}


def _is_session_of(login_request: LoginRequest, user_session: UserSession | None) -> bool:
    return (
        user_session is not None
        and user_session.ended_at is None
        and login_request.session_id == user_session.pk
    )


def _trusted_requester(request: HttpRequest | None, login_request: LoginRequest) -> str | None:
    """The trusted device of this browser, if it is the one that asked for the request."""
    if request is None or not is_bound(request, login_request):
        return None
    return trusted_devices.vouched_device(request, login_request.email)


def _count_failure(login_request: LoginRequest, now: datetime) -> str:
    budget.record_failure(login_request.email, now)
    login_request.attempts += 1
    if login_request.attempts >= app_settings.MAX_ATTEMPTS:
        login_request.status = Status.LOCKED
        login_request.completed_at = now
    login_request.save(update_fields=["attempts", "status", "completed_at"])
    return "request_locked" if login_request.status == Status.LOCKED else "code_invalid"
