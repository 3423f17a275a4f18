"""Ending sessions and token families: by the user, an admin, a sign-out or a rule.

An ended row is ended on every process from its next request on: the shared cache hears
of it at once (``tracking.mark_ended``) and the row stays the truth. A device that is an
API client's token family revokes the family too, and so, at once, its access tokens
(``tokens.revoke_family``).
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser

from .. import clock, signals
from ..models import UserSession
from .tokens import revoke_family, revoke_user
from .tracking import mark_ended

__all__ = ["end_all_sessions", "end_session", "revoke_family", "revoke_user"]


def end_session(row: UserSession, reason: str) -> None:
    """End one session, on every process, from its next request on."""
    ended = UserSession.objects.filter(pk=row.pk, ended_at=None).update(
        ended_at=clock.now(), ended_reason=reason
    )
    if ended:
        signals.session_revoked.send(UserSession, user_session=row, reason=reason)
    if row.family is not None:
        revoke_family(row.family, reason=reason)
    mark_ended(row)


def end_all_sessions(user: AbstractBaseUser, reason: str, keep: UserSession | None = None) -> int:
    """End every session of ``user`` (but ``keep``), and revoke every token family."""
    rows = UserSession.objects.filter(user_id=user.pk, ended_at=None).select_related(
        "family", "user"
    )
    ended = 0
    for row in rows:
        if keep is None or row.pk != keep.pk:
            end_session(row, reason)
            ended += 1
    if keep is None:
        revoke_user(user, reason)
    return ended
