"""What the app's few hand-written statements may assume about a model.

Two reads run on every signed-in request, the user of a session
(``backends.SessionModelBackend``) and the user of an access token
(``services.tokens``). Each is one statement written from the models' ``_meta``,
because the ORM's compiling of the same join cost more than the read it saves.
Such a statement selects the user's table as it is; it may stand in for
``_default_manager`` only where that manager loads the table as it is too.
"""

from __future__ import annotations

from django.db import models

__all__ = ["loads_table_as_is"]


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
