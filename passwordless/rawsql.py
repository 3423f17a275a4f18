"""The app's few hand-written statements: what they may assume about a model, and how
they are written, kept and run (``UserStatement``).

Two reads run on every signed-in request, the user of a session
(``backends.SessionModelBackend``) and the user of an access token
(``services.tokens``). Each is one statement written from the models' ``_meta``,
because the ORM's compiling of the same join cost more than the read it saves.
Such a statement selects the user's table as it is; it may stand in for
``_default_manager`` only where that manager loads the table as it is too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

__all__ = [
    "Names",
    "NotApplicable",
    "UserStatement",
    "forget_statements",
    "loads_table_as_is",
]


def loads_table_as_is(model: type[models.Model]) -> bool:
    """Whether a plain ``SELECT`` of ``model``'s table by primary key loads exactly what
    ``model._default_manager`` loads: no parent table (whose columns it would miss), and a
    default manager that neither filters rows nor builds its queryset its own way (a
    ``get_queryset`` of its own may filter by state, per tenant or per request, that a
    check made once could not see)."""
    opts = model._meta
    manager = model._default_manager
    return (
        not opts.parents
        and opts.pk is not None
        and type(manager).get_queryset is models.Manager.get_queryset
        and not manager.all().query.where
    )


class NotApplicable(Exception):
    """The statement cannot stand for the ORM here: load the user as the ORM does."""


@dataclass(frozen=True)
class Names:
    """The quoted names a statement is written with, from the models' ``_meta``."""

    connection: BaseDatabaseWrapper
    users: str  # the user model's table
    pk: str  # its primary key column, qualified
    columns: list[str]  # every concrete column of the user model, qualified

    def column(self, model: type[models.Model], name: str) -> str:
        """``model``'s field ``name``, as its qualified, quoted column."""
        q = self.connection.ops.quote_name
        field = cast("Field[Any, Any]", model._meta.get_field(name))
        return f"{q(model._meta.db_table)}.{q(field.column)}"


class UserStatement:
    """One hand-written statement that loads the user (every column of its table) and
    what it reads beside it, from ``beside``'s table; written by ``write`` once per user
    model and database vendor, and run with the user's primary key checked first.

    ``extra`` names the statement's further columns, which are taken off the user and
    returned: each as ``beside``'s field of that name would load it, or as the database
    answers where the name is ``None``. Only names from ``_meta``, quoted by the
    connection, are written in; every value is a parameter.
    """

    def __init__(
        self,
        write: Callable[[Names], str],
        *,
        beside: type[models.Model],
        extra: dict[str, str | None],
    ) -> None:
        self._write = write
        self._beside = beside
        self._extra = extra
        self._written: dict[tuple[type[models.Model], str], str | None] = {}
        _all.append(self)

    def load(
        self, user_id: object, params: Callable[[object], list[object]]
    ) -> tuple[AbstractBaseUser, dict[str, Any]] | None:
        """The user of ``user_id`` and the extra columns; ``None`` when no row answers,
        or ``user_id`` is no primary key of the user model. ``params`` puts the key, as
        the database takes it, among the statement's other values. Raises
        ``NotApplicable`` where the statement cannot stand for ``_default_manager``."""
        model = get_user_model()
        alias = router.db_for_read(model)
        connection = connections[alias]
        statement = self._statement(model, connection)
        pk = model._meta.pk
        if statement is None or pk is None or router.db_for_read(self._beside) != alias:
            raise NotApplicable
        try:
            value = pk.to_python(user_id)
            pk.run_validators(value)  # in range, or the database would raise, not miss
        except (TypeError, ValueError, ValidationError):
            return None
        rows = model._default_manager.raw(
            statement, params(pk.get_db_prep_value(value, connection)), using=alias
        )
        user = cast("AbstractBaseUser | None", next(iter(rows), None))
        if user is None:
            return None
        found = {
            alias_: self._from_db(name, user.__dict__.pop(alias_), connection)
            for alias_, name in self._extra.items()
        }
        return user, found

    def clear(self) -> None:
        self._written.clear()

    def _statement(self, model: type[models.Model], connection: BaseDatabaseWrapper) -> str | None:
        key = (model, connection.vendor)
        try:
            return self._written[key]
        except KeyError:
            statement = self._written[key] = self.written_for(model, connection)
            return statement

    def written_for(
        self, model: type[models.Model], connection: BaseDatabaseWrapper
    ) -> str | None:
        """The statement for ``model`` on ``connection`` (not kept); ``None`` where a plain
        ``SELECT`` of the user's table would not load what ``_default_manager`` loads."""
        opts = model._meta
        if not loads_table_as_is(model) or opts.pk is None:
            return None
        q = connection.ops.quote_name
        users = q(opts.db_table)
        return self._write(
            Names(
                connection=connection,
                users=users,
                pk=f"{users}.{q(opts.pk.column)}",
                columns=[f"{users}.{q(field.column)}" for field in opts.concrete_fields],
            )
        )

    def _from_db(self, name: str | None, value: Any, connection: BaseDatabaseWrapper) -> Any:
        """A column's value as the ORM would load it (on SQLite, a datetime from text)."""
        if name is None:
            return value
        field = cast("Field[Any, Any]", self._beside._meta.get_field(name))
        column = field.get_col(self._beside._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(
            connection
        )
        for convert in converters:
            value = convert(value, column, connection)
        return value


_all: list[UserStatement] = []


def _forget(**kwargs: Any) -> None:
    """A test changed the user model or the databases: write the statements again."""
    if kwargs.get("setting") in ("AUTH_USER_MODEL", "DATABASES"):
        forget_statements()


def forget_statements() -> None:
    """Write every statement again on its next use (a model's manager changed, say)."""
    for statement in _all:
        statement.clear()


setting_changed.connect(_forget, dispatch_uid="passwordless.rawsql.forget")
