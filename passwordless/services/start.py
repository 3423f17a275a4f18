"""Starting a sign-in and asking for the email again."""

from __future__ import annotations

import logging
import secrets

from django.db import transaction
from django.http import HttpRequest

from .. import audit, clock, languages, limits, signals
from ..adapter import get_adapter
from ..addresses import normalize_email
from ..client import client_ip, user_agent
from ..conf import app_settings
from ..crypto import hash_binding
from ..errors import SignInError
from ..models import AuthEvent, Invitation, LoginRequest, UserSession
from . import mail, trusted_devices
from .consumption import refusal
from .sessions import Started

__all__ = ["resend", "start_confirmation", "start_sign_in"]

logger = logging.getLogger("passwordless")


def start_sign_in(
    email: str,
    *,
    request: HttpRequest | None = None,
    next_url: str = "",
    replaces: str | None = None,
    code_challenge: str = "",
    locale: str | None = None,
    captcha: str | None = None,
    bot_suspicion: str = "",
    invitation: Invitation | None = None,
) -> Started:
    """Record a sign-in request and queue its email.

    Known and unknown addresses take exactly the same path here: the same
    limits, one commit (the request and its audit event) and one queued task
    carrying only the row's id. Whether mail goes out is decided by the
    worker, so neither the answer nor its timing tells an attacker which
    addresses have accounts.

    ``replaces`` is the request this browser started before, if any: it ends,
    so one browser has one live request. Requests of other browsers for the
    same address are left alone; otherwise anyone could cancel a person's
    sign-in by typing their address.

    The returned ``binding`` goes into the cookie of the browser that asked
    (``bind_browser``): it is what lets that browser use the link in one click
    and collect an approval given on another device. An API client that keeps no
    cookies sends ``code_challenge`` (the S256 challenge of a verifier it keeps,
    checked for shape by the caller) and proves itself with the verifier instead.

    ``locale`` is the language the email is to be written in (a JSON client's choice);
    by default, the request's own (``LocaleMiddleware``'s, from Accept-Language).

    Issue 18, bots and invitations. ``captcha`` is the CAPTCHA's answer that a surface
    read from what the person sent (``""`` when they sent none): with ``CAPTCHA`` on, the
    adapter's ``verify_captcha`` must pass it before anything else, for every address
    alike; ``None`` is for the flows' own calls (a resend, an invitation), which ask for
    none. ``bot_suspicion`` is why the email form took this for a bot's
    (``LoginForm.bot_suspicion``): the request is recorded and answered exactly as any
    other, and the worker sends it nothing. ``invitation`` is the invitation whose link
    started it: its address may then sign up under ``"invite_only"``.
    """
    email = normalize_email(email)
    adapter = get_adapter()
    if captcha is not None and app_settings.CAPTCHA:
        adapter.verify_captcha(request, captcha)
    _check_send(request, email)
    if next_url and not adapter.is_safe_next_url(next_url, request):
        next_url = ""
    now = clock.now()
    binding = secrets.token_urlsafe(32)
    with transaction.atomic():
        if replaces:
            LoginRequest.objects.filter(
                public_id=replaces, status=LoginRequest.Status.PENDING
            ).update(status=LoginRequest.Status.ENDED, completed_at=now)
        login_request = LoginRequest.objects.create(
            email=email,
            created_at=now,
            expires_at=now + app_settings.REQUEST_LIFETIME,
            requester_ip=client_ip(request),
            user_agent=user_agent(request),
            next_url=next_url,
            binding_hash=hash_binding(binding),
            code_challenge=code_challenge,
            locale=languages.supported(locale) or languages.current(),  # issue 18, languages
            bot_suspicion=bot_suspicion,  # issue 18, bots
            invitation=invitation,
        )
        mail.queue_login_email(login_request)  # on commit: the worker suppresses a bot's
        # One event either way, so a bot's answer takes the time anyone's does.
        kind = AuthEvent.Kind.BOT_SUSPECTED if bot_suspicion else AuthEvent.Kind.REQUESTED
        audit.record(kind, request=request, login_request=login_request, reason=bot_suspicion)
    signals.login_requested.send(LoginRequest, login_request=login_request, request=request)
    return Started(login_request, binding)


def start_confirmation(
    purpose: str,
    user_session: UserSession,
    *,
    email: str | None = None,
    request: HttpRequest | None = None,
) -> Started:
    """Email a code (and link) that proves, to ``user_session`` only, that its person reads
    the mail of an address now: the account's own for a step-up
    (``Purpose.REAUTHENTICATE``), or ``email``, the new address, for an address change
    (``Purpose.CHANGE_EMAIL``).

    The request belongs to the session's user and to that session (``LoginRequest.session``):
    no other session, and no sign-in page, can complete it (``verification.confirm_code``).
    Asked again for the same address, the live request gets another email (its older
    code stays valid, as with ``resend``); for another address, the earlier request ends,
    so one session has one live confirmation of each kind. The same send limits as a
    sign-in's apply, to the address that gets the mail.
    """
    if purpose not in (LoginRequest.Purpose.REAUTHENTICATE, LoginRequest.Purpose.CHANGE_EMAIL):
        raise ValueError(f"not a confirmation purpose: {purpose!r}")
    user = user_session.user
    if purpose == LoginRequest.Purpose.REAUTHENTICATE:
        email = getattr(user, user.get_email_field_name()) or ""
    if not email:
        raise SignInError("email_invalid")
    email = normalize_email(email)
    _check_send(request, email)
    now = clock.now()
    with transaction.atomic():
        asked = LoginRequest.objects.filter(
            session=user_session, purpose=purpose, status=LoginRequest.Status.PENDING
        )
        login_request = asked.filter(email=email, expires_at__gt=now).select_for_update().first()
        if login_request is not None:
            # Asked again: another email for the same request, as ``resend`` does, so the
            # code of a slow first email still works.
            login_request.delivery = LoginRequest.Delivery.PENDING
            login_request.expires_at = now + app_settings.REQUEST_LIFETIME
            login_request.locale = languages.current()  # issue 18: the language asked in
            login_request.save(update_fields=["delivery", "expires_at", "locale"])
        else:
            asked.update(status=LoginRequest.Status.ENDED, completed_at=now)
            login_request = LoginRequest.objects.create(
                email=email,
                user=user,
                session=user_session,
                purpose=purpose,
                created_at=now,
                expires_at=now + app_settings.REQUEST_LIFETIME,
                requester_ip=client_ip(request),
                user_agent=user_agent(request),
                binding_hash=hash_binding(secrets.token_urlsafe(32)),
                locale=languages.current(),  # issue 18, languages
            )
        mail.queue_login_email(login_request)  # on commit
        audit.record(
            AuthEvent.Kind.REQUESTED,
            request=request,
            login_request=login_request,
            reason=purpose,
        )
    return Started(login_request, None)


def resend(public_id: str, *, request: HttpRequest | None = None) -> Started:
    """Send a new code and link for the same address, and return the request that owns them.

    A live request gets another email (its older codes stay valid, see
    ``VALID_SECRETS``). A request that can no longer complete (expired, used,
    locked) is left as it is, and a new request is started for the same
    address: "request a new code" always has an answer.
    """
    login_request = LoginRequest.objects.by_public_id(public_id)
    if login_request is None:
        raise SignInError("request_not_found")
    if login_request.purpose != LoginRequest.Purpose.SIGN_IN:
        # A confirmation is asked again by its session, with ``start_confirmation``.
        raise SignInError("request_not_found")
    if refusal(login_request, clock.now()) is not None:
        return start_sign_in(
            login_request.email,
            request=request,
            next_url=login_request.next_url,
            replaces=public_id,
            code_challenge=login_request.code_challenge,
            locale=login_request.locale or None,  # issue 18: the language it was asked in
            bot_suspicion=login_request.bot_suspicion,  # issue 18: still a bot's, unmailed
            invitation=login_request.invitation if login_request.invitation_id else None,
        )
    _check_send(request, login_request.email)
    with transaction.atomic():
        login_request = LoginRequest.objects.select_for_update().get(pk=login_request.pk)
        login_request.delivery = LoginRequest.Delivery.PENDING
        # The new code lives a full lifetime; set here, on the web path, for every address.
        login_request.expires_at = clock.now() + app_settings.REQUEST_LIFETIME
        login_request.save(update_fields=["delivery", "expires_at"])
        mail.queue_login_email(login_request)
        audit.record(
            AuthEvent.Kind.REQUESTED, request=request, login_request=login_request, reason="resend"
        )
    return Started(login_request, None)


def _check_send(request: HttpRequest | None, email: str) -> None:
    try:
        limits.check_send(request, email, device=trusted_devices.vouched_device(request, email))
    except SignInError as error:
        if error.code == "rate_limited":
            audit.record(AuthEvent.Kind.RATE_LIMITED, request=request, email=email, reason="send")
        raise
