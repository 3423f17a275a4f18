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
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from .models import UserSession
from .rawsql import loads_table_as_is

__all__ = ["SessionModelBackend", "row_is_live", "session_row"]

#: The ``public_id`` of the ``UserSession`` row of the session whose user is being
#: loaded. ``SessionTimeoutMiddleware`` sets it around its first read of ``request.user``
#: and resets it after; anywhere else it is ``None`` and the backend is ``ModelBackend``.
session_row: ContextVar[str | None] = ContextVar("passwordless_session_row", default=None)

#: The user's attribute holding ``(public_id, live)``: which row was read, and its answer.
_ANSWER = "_passwordless_session_row"
#: The statement's extra column (``RawQuerySet`` sets it on the instance, then it is moved).
_LIVE = "passwordless_session_live"
#: Per (user model, database vendor): the statement, or ``None`` where it cannot be used.
_STATEMENTS: dict[tuple[type[models.Model], str], str | None] = {}


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
        model = get_user_model()
        alias = router.db_for_read(model)
        connection = connections[alias]
        statement = _statement(model, connection)
        pk = model._meta.pk
        if statement is None or pk is None or router.db_for_read(UserSession) != alias:
            return super().get_user(user_id)
        try:
            value = pk.to_python(user_id)
            pk.run_validators(value)  # in range, or the database would raise, not miss
        except (TypeError, ValueError, ValidationError):
            return None  # not a key of this model: no user, as a missing row
        params = [public_id, pk.get_db_prep_value(value, connection)]
        rows = model._default_manager.raw(statement, params, using=alias)
        user = next(iter(rows), None)
        if user is None:
            return None
        # PostgreSQL answers a boolean, SQLite 0 or 1.
        live = bool(user.__dict__.pop(_LIVE))
        setattr(user, _ANSWER, (public_id, live))
        return user if self.user_can_authenticate(user) else None


def row_is_live(user: object, public_id: str) -> bool | None:
    """Whether ``SessionModelBackend`` read ``public_id``'s row live as it loaded ``user``;
    ``None`` when it did not read that row (another backend, or ``user`` loaded earlier)."""
    answer = getattr(user, _ANSWER, None)
    if answer is None or answer[0] != public_id:
        return None
    return bool(answer[1])


def _statement(model: type[models.Model], connection: BaseDatabaseWrapper) -> str | None:
    key = (model, connection.vendor)
    try:
        return _STATEMENTS[key]
    except KeyError:
        statement = _STATEMENTS[key] = _write(model, connection)
        return statement


def _write(model: type[models.Model], connection: BaseDatabaseWrapper) -> str | None:
    """The user's row and whether the session's live row exists, from ``_meta``.

    ``None`` where a plain ``SELECT`` of the user's table would load other users than
    ``ModelBackend``'s ``_default_manager.get(pk=...)``, or would miss columns.
    """
    opts = model._meta
    if not loads_table_as_is(model) or opts.pk is None:
        return None
    q = connection.ops.quote_name
    users, rows = q(opts.db_table), q(UserSession._meta.db_table)

    def row_column(name: str) -> str:
        field = cast("Field[Any, Any]", UserSession._meta.get_field(name))
        return f"{rows}.{q(field.column)}"

    pk = f"{users}.{q(opts.pk.column)}"
    columns = ", ".join(f"{users}.{q(field.column)}" for field in opts.concrete_fields)
    # Only names from _meta, quoted by the connection, are written in; values are parameters.
    # The row must be this user's too: a session names its own row, never another's.
    live = (
        f"EXISTS(SELECT 1 FROM {rows} WHERE {row_column('public_id')} = %s"  # noqa: S608
        f" AND {row_column('user')} = {pk} AND {row_column('ended_at')} IS NULL)"
    )
    return f"SELECT {columns}, {live} AS {q(_LIVE)} FROM {users} WHERE {pk} = %s"  # noqa: S608
