"""The signed-in devices of each user: listed, capped and ended on request.

A browser session remembers only the id of its ``UserSession`` row, and the
row is the only truth about whether it has ended: every web process asks
``is_ended`` on each signed-in request (``SessionTimeoutMiddleware``). The
shared cache only remembers the row's answer, "live" for ``LIVE_FOR`` seconds
and "ended" for the session's lifetime, so a request costs one cache read.
Ending a row writes "ended" at once, so revocation is immediate everywhere; a
cache that loses that write (a flush, a restart without persistence,
eviction) costs one query, and never brings an ended session back. An API
client's row is its token family: ending it revokes the family, and so its
access tokens, at once.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import BaseCache, caches
from django.db import transaction
from django.http import HttpRequest

from .. import clock, signals
from ..adapter import get_adapter
from ..client import client_ip, mask_ip, user_agent
from ..conf import app_settings
from ..devices import describe_user_agent
from ..errors import SignInError
from ..models import TokenFamily, UserSession

__all__ = [
    "active_sessions",
    "end_all_sessions",
    "end_session",
    "find_active",
    "is_ended",
    "seen",
    "track",
]

_STATE = "passwordless:session-state:"
_LIVE, _ENDED = "live", "ended"
#: Seconds a process trusts a cached "live" before it reads the row again: the bound on
#: an ending the cache never heard of (a row ended by SQL, an "ended" write that was lost
#: in a race with a concurrent miss).
LIVE_FOR = 30


def _timeouts(user: object) -> tuple[float, float]:
    from .sessions import timeouts_for

    idle, absolute = timeouts_for(user)
    return idle.total_seconds(), absolute.total_seconds()


def _is_active(row: UserSession, user: AbstractBaseUser, now: datetime) -> bool:
    if row.ended_at is not None:
        return False
    if row.kind == UserSession.Kind.TOKENS:
        from .tokens import family_is_live

        # The rule ``tokens.refresh`` applies, staff timeouts included.
        return row.family is not None and family_is_live(row.family, user, now)
    idle, absolute = _timeouts(user)
    age = (now - row.created_at).total_seconds()
    return age < absolute and (now - row.last_seen_at).total_seconds() < idle


def active_sessions(user: AbstractBaseUser) -> list[UserSession]:
    """The user's signed-in devices, most recently seen first."""
    now = clock.now()
    rows = UserSession.objects.filter(user_id=user.pk, ended_at=None).select_related("family")
    active = [row for row in rows if _is_active(row, user, now)]
    for row in active:
        row.user = user  # type: ignore[assignment]  # the account in hand, not a join
    return active


def find_active(user: AbstractBaseUser, public_id: object) -> UserSession | None:
    """One of the user's signed-in devices, by the id shown to them."""
    return next((s for s in active_sessions(user) if s.public_id == public_id), None)


def track(
    request: HttpRequest | None,
    user: AbstractBaseUser,
    method: str,
    family: TokenFamily | None = None,
) -> UserSession:
    """Record a new signed-in device, keeping the user within ``MAX_SESSIONS``.

    Beyond the cap the oldest device is signed out and the user is emailed
    about the new one; with ``SESSION_LIMIT_POLICY = "refuse"`` the new
    sign-in is refused instead.
    """
    agent = user_agent(request)
    with transaction.atomic(savepoint=False):  # a refusal aborts the sign-in around it whole
        # Concurrent sign-ins of one user wait here for each other's commit, or each would
        # count the same sessions and all insert beyond the cap.
        list(get_user_model()._default_manager.select_for_update().filter(pk=user.pk).values("pk"))
        active = active_sessions(user)
        over = len(active) + 1 - app_settings.MAX_SESSIONS
        if over > 0 and app_settings.SESSION_LIMIT_POLICY == "refuse":
            raise SignInError("too_many_sessions")
        row = UserSession.objects.create(
            user_id=user.pk,
            kind=UserSession.Kind.TOKENS if family else UserSession.Kind.BROWSER,
            family=family,
            method=method,
            device=describe_user_agent(agent),
            user_agent=agent,
            network=mask_ip(client_ip(request)),
        )
        ended = sorted(active, key=lambda r: r.created_at)[: max(over, 0)]
    for oldest in ended:
        end_session(oldest, reason="session_limit")
    if ended:
        get_adapter().enqueue_new_sign_in_email(row)
    return row


def end_session(row: UserSession, reason: str) -> None:
    """Sign one device out, on every process, from its next request on."""
    from . import tokens

    ended = UserSession.objects.filter(pk=row.pk, ended_at=None).update(
        ended_at=clock.now(), ended_reason=reason
    )
    if ended:
        signals.session_revoked.send(UserSession, user_session=row, reason=reason)
    if row.family is not None:
        tokens.revoke_family(row.family, reason=reason)
    # At once, on every process; set, not add: it overwrites a cached "live".
    _state_cache().set(_STATE + row.public_id, _ENDED, timeout=_ended_for(row.user))


def end_all_sessions(user: AbstractBaseUser, reason: str, keep: UserSession | None = None) -> int:
    """Sign every device of ``user`` out (but ``keep``), and revoke every token family."""
    from . import tokens

    rows = UserSession.objects.filter(user_id=user.pk, ended_at=None).select_related(
        "family", "user"
    )
    ended = 0
    for row in rows:
        if keep is None or row.pk != keep.pk:
            end_session(row, reason)
            ended += 1
    if keep is None:
        tokens.revoke_user(user, reason)
    return ended


def is_ended(public_id: str, user: object = None) -> bool:
    """Whether the device was signed out, or its row no longer exists.

    One cache read while the answer is cached; otherwise one query, whose answer is
    cached. ``user`` (the session's) sets how long an "ended" is remembered.
    """
    cache = _state_cache()
    key = _STATE + public_id
    state = cache.get(key)
    if state is not None:
        return bool(state != _LIVE)
    # A row that is gone (deleted with its user, or by hand) counts as ended: nothing
    # could list it, so nothing could ever end it.
    live = UserSession.objects.filter(public_id=public_id, ended_at=None).exists()
    if live:
        # add, not set: an end_session that wrote "ended" since the query must win.
        cache.add(key, _LIVE, timeout=LIVE_FOR)
    else:
        cache.set(key, _ENDED, timeout=_ended_for(user))
    return not live


def _state_cache() -> BaseCache:
    return caches[app_settings.SESSION_CACHE]


def _ended_for(user: object) -> int:
    # Only a saving: once it expires, the row gives the same answer.
    _, absolute = _timeouts(user)
    return int(absolute) + 60


def seen(public_id: str) -> None:
    """The device was active: recorded when its session is renewed, not on every request."""
    UserSession.objects.filter(public_id=public_id, ended_at=None).update(last_seen_at=clock.now())
