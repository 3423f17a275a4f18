"""The sessions of each user: listed, and whether each has ended.

Recording a new session is part of signing in (``signin.track``); ending one is
``revocation``'s.

A browser session remembers only the id of its ``UserSession`` row, and the
row is the only truth about whether it has ended. It is read on every signed-in
request (``SessionTimeoutMiddleware``). With ``backends.SessionModelBackend``
(the default once ``AUTHENTICATION_BACKENDS`` lists it) that read is part of the
one statement that loads the user: a row ended or deleted by any means, SQL
included, signs the browser out on its very next request, and the cache is not
asked. With another backend, or a user loaded before the middleware, the
middleware asks ``is_ended``, whose shared cache remembers the row's answer,
"live" for ``LIVE_FOR`` seconds and "ended" for the session's lifetime, so such
a request costs one cache read. Ending a row writes "ended" at once
(``mark_ended``), so revocation is immediate on that path too; only an ending
the cache never heard of (a row ended by SQL) waits up to ``LIVE_FOR`` there. A
cache that loses that write (a flush, a restart without persistence, eviction)
costs one query, and never brings an ended session back. An API client's row is
its token family: ending it revokes the family, and so its access tokens, at once.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import BaseCache, caches

from .. import clock
from ..conf import app_settings
from ..models import UserSession
from .sessions import timeouts_for
from .tokens import family_is_live

__all__ = ["LIVE_FOR", "active_sessions", "find_active", "is_ended", "mark_ended", "seen"]

_STATE = "passwordless:session-state:"
_LIVE, _ENDED = "live", "ended"
#: Seconds ``is_ended`` trusts a cached "live" before it reads the row again: the bound on
#: an ending the cache never heard of (a row ended by SQL, an "ended" write that was lost
#: in a race with a concurrent miss). ``SessionModelBackend`` reads the row every time.
LIVE_FOR = 30


def _timeouts(user: object) -> tuple[float, float]:
    idle, absolute = timeouts_for(user)
    return idle.total_seconds(), absolute.total_seconds()


def _is_active(row: UserSession, user: AbstractBaseUser, now: datetime) -> bool:
    if row.ended_at is not None:
        return False
    if row.kind == UserSession.Kind.TOKENS:
        # The rule ``tokens.refresh`` applies, staff timeouts included.
        return row.family is not None and family_is_live(row.family, user, now)
    idle, absolute = _timeouts(user)
    age = (now - row.created_at).total_seconds()
    return age < absolute and (now - row.last_seen_at).total_seconds() < idle


def active_sessions(user: AbstractBaseUser) -> list[UserSession]:
    """The user's sessions, most recently seen first."""
    now = clock.now()
    rows = UserSession.objects.filter(user_id=user.pk, ended_at=None).select_related("family")
    active = [row for row in rows if _is_active(row, user, now)]
    for row in active:
        row.user = user  # type: ignore[assignment]  # the account in hand, not a join
    return active


def find_active(user: AbstractBaseUser, public_id: object) -> UserSession | None:
    """One of the user's sessions, by the id shown to them."""
    return next((s for s in active_sessions(user) if s.public_id == public_id), None)


def mark_ended(row: UserSession) -> None:
    """Remember on every process, at once, that ``row`` ended (``revocation.end_session``).

    Set, not add: it overwrites a cached "live".
    """
    _state_cache().set(_STATE + row.public_id, _ENDED, timeout=_ended_for(row.user))


def is_ended(public_id: str, user: object = None) -> bool:
    """Whether the session was ended, or its row no longer exists.

    One cache read while the answer is cached; otherwise one query, whose answer is
    cached. ``user`` (the session's) sets how long an "ended" is remembered. The
    middleware's fallback: ``SessionModelBackend`` reads the row with the user instead.
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
    """The session was active: recorded when it is renewed, not on every request."""
    UserSession.objects.filter(public_id=public_id, ended_at=None).update(last_seen_at=clock.now())
