"""Logging: one JSON object per line in production, each with a request id.

The web process takes the ``X-Request-ID`` a proxy in front sent (when it is a
plain token) or makes one, returns it in the response, and hands it to the
Celery tasks the request queues. The worker logs under the same id, so the
lines of one sign-in, from the form post to the delivered email, share it.

Paths can hold secrets: a magic link's token (``/auth/link/<token>/``) and a
sign-in request's id (``/api/auth/requests/<id>``, which collects an approved
sign-in). ``redact`` removes both, and every line is redacted twice: the
``RedactSecrets`` filter rewrites the record's message and each of its fields
(Django's ``request`` extra prints the path: ``<WSGIRequest: GET '/auth/link/…'>``),
and the formatters redact the finished line, tracebacks included. gunicorn's
access lines go through the same handler (``config/gunicorn.py``).
``logging_config`` builds the one configuration that Django's settings,
gunicorn's master process and the Celery worker all use.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.json import JsonFormatter

from passwordless.log import RedactSecrets, redact

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

__all__ = [
    "QuietDependencyOutages",
    "RedactSecrets",
    "RedactingFormatter",
    "RedactingJsonFormatter",
    "RequestIdFilter",
    "RequestIdMiddleware",
    "current_request_id",
    "logging_config",
    "redact",
    "request_id_scope",
]

HEADER = "X-Request-ID"
_HEADER_META = "HTTP_X_REQUEST_ID"
#: Where the middleware leaves the id on the request, for the lines Django writes after
#: the middleware has returned (``django.request``'s 404 and 5xx lines).
_META_KEY = "config.request_id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_current: ContextVar[str | None] = ContextVar("request_id", default=None)


class RedactingFormatter(logging.Formatter):
    """Plain lines, redacted once written (the traceback and stack included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines, redacted once written: every field, the traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(str(super().format(record)))


def current_request_id() -> str | None:
    return _current.get()


@contextmanager
def request_id_scope(request_id: str) -> Iterator[str]:
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str:
    """A proxy's id if it is a plain token (nothing to inject into a log line)."""
    if value and _WELL_FORMED.fullmatch(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Put the request's id in the log context and in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # META, not request.headers: that builds a mapping of every header on each request.
        request_id = accepted_request_id(request.META.get(_HEADER_META))
        request.META[_META_KEY] = request_id
        with request_id_scope(request_id):
            response = self.get_response(request)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Give every record a ``request_id`` ("-" outside a request or a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            meta = getattr(getattr(record, "request", None), "META", None)
            of_request = meta.get(_META_KEY) if isinstance(meta, dict) else None
            record.request_id = _current.get() or of_request or "-"
        return True


class QuietDependencyOutages(logging.Filter):
    """``django.request``'s line for a 503 that a database or Redis which did not answer
    caused outside a view (the session store, read by a middleware, turned into the calm
    503 by ``passwordless.middleware.server_error``), without its traceback.

    An outage fails every request the same way: a traceback each would flood the log and
    bury what names the cause, the ``dependency unavailable: <error> on <path>`` line
    logged beside it. A 503 raised in a view logs the same line, with no traceback either.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and getattr(record, "status_code", None) == 503:
            # The errors ServiceUnavailableMiddleware and server_error answer with a 503.
            from passwordless.middleware import _dependency_errors

            if isinstance(exc, _dependency_errors()):
                record.exc_info = record.exc_text = None
        return True


def connect_celery() -> None:
    """Carry the id from the request to its tasks, and log tasks under it.

    A task published outside a request (by beat, say) runs under its own task id.
    """
    from celery.signals import before_task_publish, task_postrun, task_prerun

    tokens: dict[str, Any] = {}

    @before_task_publish.connect(weak=False)
    def add_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        request_id = _current.get()
        if request_id and headers is not None:
            headers.setdefault("request_id", request_id)

    @task_prerun.connect(weak=False)
    def enter(task_id: str, task: Any, **kwargs: Any) -> None:
        request_id = getattr(task.request, "request_id", None) or task_id
        tokens[task_id] = _current.set(accepted_request_id(request_id))

    @task_postrun.connect(weak=False)
    def leave(task_id: str, **kwargs: Any) -> None:
        token = tokens.pop(task_id, None)
        if token is not None:
            _current.reset(token)


def logging_config(level: str = "INFO", json_lines: bool = False) -> dict[str, Any]:
    """The ``LOGGING`` dict: plain lines for development, JSON lines in production."""
    console = {
        "class": "logging.StreamHandler",
        "formatter": "json" if json_lines else "plain",
        "filters": ["request_id", "redact"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {
                "()": "config.logs.RedactingFormatter",
                "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s",
            },
            "json": {
                "()": "config.logs.RedactingJsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
                "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            },
        },
        "filters": {
            "request_id": {"()": "config.logs.RequestIdFilter"},
            "redact": {"()": "config.logs.RedactSecrets"},
            "quiet_outages": {"()": "config.logs.QuietDependencyOutages"},
        },
        "handlers": {"console": console},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "django.request": {"filters": ["quiet_outages"]},
            # gunicorn's master and workers: the same handler instead of gunicorn's own.
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
