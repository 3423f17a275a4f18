"""When an account's address changes or it is deactivated, nothing of its old state lives on.

The address is the credential: a code mailed to the old address, a browser
signed in before, or a token issued before must not outlast the change. The
receivers call ``account_changed`` on every save of a user (the admin, the
shell, a form), inside the saving transaction when there is one (the admin's),
so the change and its consequences commit together. A queryset ``update()`` sends no signal; for
that case the sign-in itself refuses a request whose address is no longer the
account's (``consumption._resolve_user``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q

from .. import clock
from ..addresses import normalize_email
from ..models import LoginRequest, UserSession
from .mail import queue_email_changed_email
from .revocation import end_all_sessions

__all__ = ["account_changed", "end_sign_ins", "own_change"]

logger = logging.getLogger("passwordless")

Status = LoginRequest.Status


@dataclass(frozen=True)
class _OwnChange:
    user_pk: Any
    keep: UserSession
    email_change_id: int


#: Set while a person's own, confirmed address change is saved (``own_change``).
_own_change: ContextVar[_OwnChange | None] = ContextVar("passwordless_own_change", default=None)


@contextmanager
def own_change(user: AbstractBaseUser, keep: UserSession, email_change_id: int) -> Iterator[None]:
    """Mark the saves of ``user`` inside as its person's own address change, confirmed from
    the new address in the session ``keep`` (``email_change``): that session stays signed
    in, and the old address's notice carries the change's undo link. Any other change (an
    admin's, a script's ``save()``) still ends every session."""
    token = _own_change.set(_OwnChange(user.pk, keep, email_change_id))
    try:
        yield
    finally:
        _own_change.reset(token)


def account_changed(user: AbstractBaseUser, *, reason: str, old_email: str | None = None) -> None:
    """End every sign-in in flight, every session and every token family of ``user``.

    ``reason`` is ``"email_changed"`` or ``"deactivated"``; ``old_email`` is the
    address the account had, when it changed: it gets a notice, after commit. Inside
    ``own_change`` (the person changed it, confirmed from the new address), the session
    that did it is kept.
    """
    current = getattr(user, user.get_email_field_name()) or ""
    # Sign-ins first: ending a request waits for a code check that holds its row lock
    # to commit, so a session that check created is visible, and ended, just below.
    ended = end_sign_ins(user, {current, old_email or current})
    own = _own_change.get()
    if own is None or own.user_pk != user.pk or reason != "email_changed":
        own = None
    end_all_sessions(user, reason=reason, keep=own.keep if own else None)
    if old_email and old_email != current:
        queue_email_changed_email(
            user,
            old_email,
            email_change_id=own.email_change_id if own else None,
            user_session_id=own.keep.pk if own else None,
        )
    logger.info("account changed: user=%s reason=%s requests_ended=%d", user.pk, reason, ended)


def end_sign_ins(user: AbstractBaseUser, addresses: set[str]) -> int:
    """End the user's pending and approved requests, and those for ``addresses`` not yet
    tied to an account (the worker ties a request when it sends its email).

    Requests tied to another account are left alone: Django's ``auth.User`` lets two
    accounts share an address.
    """
    emails = {_canonical(address) for address in addresses if address}
    return (
        LoginRequest.objects.filter(status__in=(Status.PENDING, Status.APPROVED))
        .filter(Q(user_id=user.pk) | Q(user_id=None, email__in=emails))
        .update(status=Status.ENDED, completed_at=clock.now())
    )


def _canonical(address: str) -> str:
    # Requests hold canonical addresses; a stored address that is not valid any more
    # (saved by a script, say) cannot have one, and is compared as it is.
    try:
        return normalize_email(address)
    except ValidationError:
        return address
