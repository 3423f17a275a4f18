"""``SessionModelBackend``: the user of a session and whether its device is live, in one read.

Django's ``get_user`` loads the user of every signed-in request with one ``SELECT``;
``SessionTimeoutMiddleware`` then has to know whether the session's ``UserSession`` row
is still live (not ended, not deleted). This backend answers both in that one statement:
the middleware names the row (``session_row``) around its first read of ``request.user``,
and ``get_user`` reads the user with ``EXISTS`` of the live row. Everything else is
Django's: ``contrib.auth.get_user`` still checks the backend and verifies the session's
auth hash, and ``user_can_authenticate`` still refuses inactive users.

The statement is written once per process, user model and database vendor, from the
models' ``_meta`` (table and column names quoted by the connection): compiling the same
query through the ORM (``annotate(Exists(...))``) on every request cost more than the
read it saves. Where that plain statement would not mean what ``ModelBackend`` means (a
default manager that filters rows out, a user model with a parent table, the two tables on
different databases) the backend loads the user as ``ModelBackend`` does and carries no
answer, and the middleware asks ``tracking.is_ended`` instead.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.contrib.auth.backends import ModelBackend

from .models import UserSession
from .rawsql import Names, NotApplicable, UserStatement

__all__ = ["SessionModelBackend", "row_is_live", "session_row"]

#: The ``public_id`` of the ``UserSession`` row of the session whose user is being
#: loaded. ``SessionTimeoutMiddleware`` sets it around its first read of ``request.user``
#: and resets it after; anywhere else it is ``None`` and the backend is ``ModelBackend``.
session_row: ContextVar[str | None] = ContextVar("passwordless_session_row", default=None)

#: The user's attribute holding ``(public_id, live)``: which row was read, and its answer.
_ANSWER = "_passwordless_session_row"
#: The statement's extra column (``RawQuerySet`` sets it on the instance, then it is moved).
_LIVE = "passwordless_session_live"


class SessionModelBackend(ModelBackend):
    """``ModelBackend`` whose ``get_user`` also reads whether the session's device is live.

    List it in ``AUTHENTICATION_BACKENDS`` (before ``ModelBackend``, which can stay for the
    sessions signed in before), and ``PASSWORDLESS_AUTH_BACKEND`` records it in the
    sessions ``login()`` writes.
    """

    def authenticate(self, request: Any, *args: Any, **kwargs: Any) -> None:
        """Never by password: listed beside ``ModelBackend``, which checks passwords (the
        admin's, where a project allows them), a failed password would be hashed twice."""
        return None

    def get_user(self, user_id: Any) -> Any:
        public_id = session_row.get()
        if public_id is None:
            return super().get_user(user_id)
        try:
            found = _USER_AND_ROW.load(user_id, lambda pk: [public_id, pk])
        except NotApplicable:
            return super().get_user(user_id)
        if found is None:
            return None  # no such user, or not a key of this model
        user, extra = found
        # PostgreSQL answers a boolean, SQLite 0 or 1.
        setattr(user, _ANSWER, (public_id, bool(extra[_LIVE])))
        # Any AUTH_USER_MODEL is accepted; the stubs only know the configured one.
        return user if self.user_can_authenticate(user) else None  # type: ignore[arg-type]


def row_is_live(user: object, public_id: str) -> bool | None:
    """Whether ``SessionModelBackend`` read ``public_id``'s row live as it loaded ``user``;
    ``None`` when it did not read that row (another backend, or ``user`` loaded earlier)."""
    answer = getattr(user, _ANSWER, None)
    if answer is None or answer[0] != public_id:
        return None
    return bool(answer[1])


def _write(names: Names) -> str:
    """The user's row and whether the session's live row exists."""
    q, row = names.connection.ops.quote_name, names.column
    # The row must be this user's too: a session names its own row, never another's.
    live = (
        f"EXISTS(SELECT 1 FROM {q(UserSession._meta.db_table)}"  # noqa: S608
        f" WHERE {row(UserSession, 'public_id')} = %s AND {row(UserSession, 'user')} ="
        f" {names.pk} AND {row(UserSession, 'ended_at')} IS NULL)"
    )
    select = ", ".join([*names.columns, f"{live} AS {q(_LIVE)}"])
    return f"SELECT {select} FROM {names.users} WHERE {names.pk} = %s"  # noqa: S608


_USER_AND_ROW = UserStatement(_write, beside=UserSession, extra={_LIVE: None})
