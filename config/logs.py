"""Logging: one JSON object per line in production, each with a request id.

The web process takes the ``X-Request-ID`` a proxy in front sent (when it is a
plain token) or makes one, returns it in the response, and hands it to the
Celery tasks the request queues. The worker logs under the same id, so the
lines of one sign-in, from the form post to the delivered email, share it.

Every line passes ``RedactLinkTokens``: request paths can hold a magic link's
token. ``logging_config`` builds the one configuration that Django's settings,
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

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

__all__ = [
    "RequestIdFilter",
    "RequestIdMiddleware",
    "current_request_id",
    "logging_config",
    "request_id_scope",
]

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_current: ContextVar[str | None] = ContextVar("request_id", default=None)


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
        request_id = accepted_request_id(request.headers.get(HEADER))
        with request_id_scope(request_id):
            response = self.get_response(request)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Give every record a ``request_id`` ("-" outside a request or a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _current.get() or "-"
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
            "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
                "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            },
        },
        "filters": {
            "request_id": {"()": "config.logs.RequestIdFilter"},
            "redact": {"()": "passwordless.log.RedactLinkTokens"},
        },
        "handlers": {"console": console},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # gunicorn's master and workers: the same handler instead of gunicorn's own.
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
