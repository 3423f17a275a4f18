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

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q

from .. import clock
from ..addresses import normalize_email
from ..models import LoginRequest
from .mail import queue_email_changed_email
from .revocation import end_all_sessions

__all__ = ["account_changed", "end_sign_ins"]

logger = logging.getLogger("passwordless")

Status = LoginRequest.Status


def account_changed(user: AbstractBaseUser, *, reason: str, old_email: str | None = None) -> None:
    """End every sign-in in flight, every session and every token family of ``user``.

    ``reason`` is ``"email_changed"`` or ``"deactivated"``; ``old_email`` is the
    address the account had, when it changed: it gets a notice, after commit.
    """
    current = getattr(user, user.get_email_field_name()) or ""
    # Sign-ins first: ending a request waits for a code check that holds its row lock
    # to commit, so a session that check created is visible, and ended, just below.
    ended = end_sign_ins(user, {current, old_email or current})
    end_all_sessions(user, reason=reason)
    if old_email and old_email != current:
        queue_email_changed_email(user, old_email)
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
