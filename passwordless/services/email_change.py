"""Changing a signed-in person's email address: asked after a fresh step-up, confirmed
from the new address by the session that asked, told at once to the old address, and
undoable from there for ``EMAIL_CHANGE_UNDO_PERIOD``.

The address is the credential, so each step guards it. Asking needs a fresh proof
(``reauthentication``), checked here and not only by the pages: a session left open
cannot move the account elsewhere. The code and link go to the new address, and only the
session that asked can use them (``verification.confirm_code``): a code mailed to the old
address (a sign-in's, a step-up's) is another purpose's and never confirms. The change is
made in the transaction that consumes the request, under the user row's lock, only if
the address is still the one it was asked from. The new address may be another
account's: its mail is then not sent (``delivery``), and the answer is the same, so
asking tells nobody which addresses have accounts.

Once it is made, every sign-in in flight for the old address ends, and every session but
the one that made it (``accounts.own_change``). The old address is told at once, with a
link that puts it back (``undo``): whoever took over the session, and the new mailbox,
is then signed out everywhere, and the account is its owner's again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from .. import clock, signals
from ..adapter import get_adapter
from ..addresses import MAX_INPUT_LENGTH, normalize_email
from ..conf import app_settings
from ..errors import SignInError
from ..models import EmailChange, LoginRequest, Passkey, UserSession
from . import reauthentication
from .accounts import end_sign_ins, own_change
from .revocation import end_all_sessions
from .start import start_confirmation
from .undo_links import hash_undo_token
from .verification import complete_link, confirm_code, preview_link_hash

__all__ = [
    "ACTION",
    "ChangeAddress",
    "LinkOfChange",
    "confirm_by_code",
    "confirm_by_link",
    "pending_change",
    "preview_link",
    "preview_undo",
    "request_change",
    "undo",
    "undo_token_hash",
]

logger = logging.getLogger("passwordless")

Purpose = LoginRequest.Purpose

#: The action asked of the adapter's ``needs_reauthentication``.
ACTION = "change_email"


def request_change(
    user_session: UserSession | None, new_email: str, *, request: HttpRequest | None
) -> EmailChange:
    """Mail a code and link to ``new_email`` that confirm it, to ``user_session`` only, as
    its account's new address; nothing changes yet.

    Raises ``SignInError``: ``reauthentication_required`` when the session's last proof
    is not fresh, ``email_invalid``, ``email_unchanged`` for the account's own address,
    and the send limits' ``rate_limited``. An address that is another account's is
    answered the same as any other (no mail goes to it)."""
    if user_session is None or user_session.ended_at is not None:
        raise SignInError("not_authenticated")
    if reauthentication.step_up_needed(request, user_session, ACTION):
        raise SignInError("reauthentication_required")
    user = user_session.user
    email = _canonical_input(new_email)
    current = _address_of(user)
    if _canonical(current) == email:
        raise SignInError("email_unchanged")
    with transaction.atomic():
        started = start_confirmation(
            Purpose.CHANGE_EMAIL, user_session, email=email, request=request
        )
        change, _ = EmailChange.objects.get_or_create(
            confirmation=started.login_request,
            defaults={"user": user, "old_email": current, "new_email": email},
        )
    signals.email_change_requested.send(EmailChange, email_change=change, request=request)
    logger.info("email change asked: user=%s change=%s", user.pk, change.pk)
    return change


def pending_change(user_session: UserSession | None, public_id: object) -> EmailChange | None:
    """The change ``user_session`` asked for by the request ``public_id``, for its pages;
    ``None`` for any other session's, or none."""
    if user_session is None or not isinstance(public_id, str):
        return None
    return (
        EmailChange.objects.select_related("confirmation")
        .filter(confirmation__public_id=public_id, confirmation__session=user_session)
        .first()
    )


class ChangeAddress:
    """The finisher of a confirmed new address: make it the account's, in the transaction
    that consumed its request, for the session that asked (kept signed in)."""

    def __init__(self, user_session: UserSession, request: HttpRequest | None) -> None:
        self.user_session = user_session
        self.request = request
        self.email_change: EmailChange | None = None

    def finish(self, login_request: LoginRequest, user: AbstractBaseUser) -> None:
        change = EmailChange.objects.select_for_update().filter(confirmation=login_request).first()
        if change is None or change.confirmed_at is not None:
            raise SignInError("request_not_found")
        locked = _lock_user(user.pk)
        if _address_of(locked) != change.old_email:
            # Changed some other way since it was asked (a queryset ``update()``, which
            # ends no request): confirming would undo that change.
            raise SignInError("request_superseded")
        owner = get_adapter().get_user(change.new_email)
        if owner is not None and owner.pk != locked.pk:
            raise SignInError("email_taken")
        now = clock.now()
        change.confirmed_at = now
        change.undo_expires_at = now + app_settings.EMAIL_CHANGE_UNDO_PERIOD
        change.save(update_fields=["confirmed_at", "undo_expires_at"])
        _set_address(locked, change.new_email, keep=self.user_session, change=change)
        self.email_change = change


def confirm_by_code(
    public_id: str,
    code: str,
    *,
    user_session: UserSession | None,
    request: HttpRequest | None,
) -> EmailChange:
    """Make the new address the account's with the code mailed to it, typed in the session
    that asked. Wrong codes count as a sign-in's do. Raises ``SignInError``; ``email_taken``
    if another account has the address by now (nothing changes)."""
    if user_session is None:
        raise SignInError("request_not_found")
    finisher = ChangeAddress(user_session, request)
    confirm_code(
        public_id,
        code,
        purpose=Purpose.CHANGE_EMAIL,
        user_session=user_session,
        request=request,
        finisher=finisher,
    )
    return _confirmed(finisher, request)


@dataclass(frozen=True)
class LinkOfChange:
    """What the page of an opened link may show: the change, and whether this is the
    session that asked (only there does the link confirm, in one click)."""

    token_hash: str
    email_change: EmailChange
    same_session: bool


def preview_link(
    token_hash: str, user_session: UserSession | None, request: HttpRequest | None
) -> LinkOfChange:
    """Look up the link of an address change without using it (mail scanners open links)."""
    preview = preview_link_hash(token_hash, request)
    login_request = preview.login_request
    change = EmailChange.objects.filter(confirmation=login_request).first()
    if login_request.purpose != Purpose.CHANGE_EMAIL or change is None:
        raise SignInError("request_not_found")
    same = (
        user_session is not None
        and user_session.ended_at is None
        and login_request.session_id == user_session.pk
    )
    return LinkOfChange(token_hash, change, same)


def confirm_by_link(
    token_hash: str, *, user_session: UserSession | None, request: HttpRequest | None
) -> EmailChange:
    """``confirm_by_code`` by the link: only in the session that asked
    (``browser_mismatch`` anywhere else, and the link stays usable there)."""
    if user_session is None:
        raise SignInError("browser_mismatch")
    finisher = ChangeAddress(user_session, request)
    complete_link(
        token_hash,
        request=request,
        finisher=finisher,
        purpose=Purpose.CHANGE_EMAIL,
        user_session=user_session,
    )
    return _confirmed(finisher, request)


def undo_token_hash(token: str) -> str:
    """The stored form of an undo link's token; anything that cannot be one hashes to
    nothing stored."""
    return hash_undo_token(token[:100])


def preview_undo(token_hash: str) -> EmailChange:
    """The change an undo link would undo, changing nothing (scanners open links)."""
    rows = EmailChange.objects.filter(undo_token_hash=token_hash).exclude(undo_token_hash="")
    return _undoable(rows.first(), clock.now())


def undo(token_hash: str, *, request: HttpRequest | None) -> EmailChange:
    """Put the old address back, by the link mailed to it: once, within the undo period.

    Every session of the account ends (the one that made the change too: it may be
    whoever took the account), and every sign-in in flight for either address. Nobody is
    signed in. Raises ``SignInError``: ``undo_invalid``, ``undo_used``, ``undo_expired``,
    or ``undo_taken`` when another account has the old address by now (nothing changes).
    """
    now = clock.now()
    with transaction.atomic():
        rows = EmailChange.objects.select_for_update().filter(undo_token_hash=token_hash)
        change = _undoable(rows.exclude(undo_token_hash="").first(), now)
        user = _lock_user(change.user_id)
        owner = get_adapter().get_user(_canonical(change.old_email))
        if owner is not None and owner.pk != user.pk:
            raise SignInError("undo_taken")
        change.undone_at = now
        change.save(update_fields=["undone_at"])
        _set_address(user, change.old_email)
        # The save's receiver did this if the address changed; if it was the old one
        # already (put back by an admin, say), the undo still ends what the change began.
        end_sign_ins(user, {change.new_email, change.old_email})
        end_all_sessions(user, "email_change_undone")
        # Whatever was changed after this one was done from the account while it was not
        # its owner's: a later change's undo link (mailed to an address of the taker's)
        # must not put their address back, and no passkey added since may stay.
        EmailChange.objects.filter(
            user_id=user.pk, confirmed_at__gte=change.confirmed_at, undone_at=None
        ).exclude(pk=change.pk).update(undo_token_hash="", undo_expires_at=now)
        since = change.confirmation.session.created_at if change.confirmation.session else None
        Passkey.objects.filter(
            user_id=user.pk, created_at__gte=min(filter(None, (since, change.created_at)))
        ).delete()
    signals.email_change_undone.send(EmailChange, email_change=change, request=request)
    logger.info("email change undone: user=%s change=%s", change.user_id, change.pk)
    return change


def _confirmed(finisher: ChangeAddress, request: HttpRequest | None) -> EmailChange:
    change = finisher.email_change
    if change is None:  # never: the finisher ran, or the completion raised
        raise SignInError("request_not_found")
    signals.email_change_confirmed.send(EmailChange, email_change=change, request=request)
    logger.info("email change confirmed: user=%s change=%s", change.user_id, change.pk)
    return change


def _undoable(change: EmailChange | None, now: datetime) -> EmailChange:
    if change is None or change.confirmed_at is None or change.undo_expires_at is None:
        raise SignInError("undo_invalid")
    if change.undone_at is not None:
        raise SignInError("undo_used")
    if now >= change.undo_expires_at:
        raise SignInError("undo_expired")
    return change


def _set_address(
    user: AbstractBaseUser,
    email: str,
    *,
    keep: UserSession | None = None,
    change: EmailChange | None = None,
) -> None:
    """Save the address by ``save()``, so the receivers (``accounts.account_changed``) and
    the project's own see it; a unique constraint refusing it changes nothing."""
    setattr(user, user.get_email_field_name(), email)
    try:
        with transaction.atomic():
            if keep is not None and change is not None:
                with own_change(user, keep, change.pk):
                    user.save(update_fields=[user.get_email_field_name()])
            else:
                user.save(update_fields=[user.get_email_field_name()])
    except IntegrityError:
        raise SignInError("email_taken" if keep is not None else "undo_taken") from None


def _lock_user(pk: int | str) -> AbstractBaseUser:
    locked: AbstractBaseUser = get_user_model()._default_manager.select_for_update().get(pk=pk)
    return locked


def _address_of(user: AbstractBaseUser) -> str:
    return str(getattr(user, user.get_email_field_name()) or "")


def _canonical_input(value: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_INPUT_LENGTH:
        raise SignInError("email_invalid")
    try:
        return normalize_email(value)
    except ValidationError:
        raise SignInError("email_invalid") from None


def _canonical(address: str) -> str:
    try:
        return normalize_email(address)
    except ValidationError:
        return address
