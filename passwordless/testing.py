"""Helpers for the tests of a project that uses passwordless.

Plain functions, usable from ``django.test.TestCase`` or pytest alike, with
Django's locmem email backend (the test runner's default) so sent mail lands in
``django.core.mail.outbox``::

    from passwordless.testing import read_sign_in_mail, request_code

    def test_sign_in(client):
        delivered = request_code("alice@example.org")
        client.post("/auth/code/", {"code": delivered.code})  # after the login form
        ...

    def test_the_mail_the_view_sent(client):
        client.post("/auth/login/", {"email": "alice@example.org"})
        code, link = read_sign_in_mail(mail.outbox[-1])

Under pytest (when it is installed) the module also offers fixtures; add
``pytest_plugins = ["passwordless.testing"]`` to a ``conftest.py`` to use them:

``frozen_clock``
    A :class:`FrozenClock` in place of ``passwordless.clock.now``, the app's one
    source of time: ``frozen_clock.advance(minutes=10)`` expires a code.
``passwordless_code``
    :func:`request_code`, for tests that take their helpers as fixtures.

The app does not depend on pytest: nothing here imports it unless it is installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.util import find_spec
from typing import Any

from django.core import mail
from django.test import TestCase
from django.utils import timezone

from . import clock

__all__ = [
    "CODE_RE",
    "LINK_RE",
    "Delivered",
    "FrozenClock",
    "link_token",
    "read_sign_in_mail",
    "request_code",
    "sign_in_mails",
]

#: The code in the text part of the default sign-in email: six digits on a line of their own.
CODE_RE = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)
#: The link in it: the URL of the ``passwordless:link`` view, wherever the app's URLs are mounted.
LINK_RE = re.compile(r"(https?://\S+/link/[A-Za-z0-9_-]+/)")


@dataclass
class Delivered:
    """What a sign-in email carries. It unpacks as ``code, link = delivered``."""

    code: str
    link: str
    message: mail.EmailMultiAlternatives

    @property
    def token(self) -> str:
        """The secret part of the link (see :func:`link_token`)."""
        return link_token(self.link)

    def __iter__(self) -> Iterator[str]:
        return iter((self.code, self.link))


def link_token(link: str) -> str:
    """The secret part of a sign-in link: the last segment of its path."""
    return link.rstrip("/").rsplit("/", 1)[1]


def read_sign_in_mail(message: Any) -> Delivered:
    """The code and link of a sign-in email, read from its text part.

    Raises ``AssertionError`` (showing the body) when the message holds no code or
    no link, so a test fails on the mail rather than later on a ``None``.
    """
    body = str(message.body)
    code = CODE_RE.search(body)
    link = LINK_RE.search(body)
    if not (code and link):
        raise AssertionError(f"not a sign-in email (no code or no link):\n{body}")
    return Delivered(code=code.group(1), link=link.group(1), message=message)


def sign_in_mails(to: str | None = None) -> list[Delivered]:
    """Every sign-in email in ``mail.outbox``, oldest first; only those to ``to`` if given."""
    return [
        read_sign_in_mail(message)
        for message in mail.outbox
        if (to is None or to in message.to) and CODE_RE.search(str(message.body))
    ]


def request_code(email: str, **start: Any) -> Delivered | None:
    """Start a sign-in for ``email`` through the service layer and return the mail it sent.

    ``start`` goes to ``passwordless.services.start_sign_in`` (``request``, ``next_url``…).
    The email task is queued on commit; its callbacks run here, and when no task ran in
    process (no eager Celery) the mail is delivered here instead, so the test needs no
    worker. Returns ``None`` when no mail goes out, as for an unknown address with
    sign-up closed: that is what the app does, silently.
    """
    from . import services  # not at import time: the app registry may not be ready

    before = len(mail.outbox)
    with TestCase.captureOnCommitCallbacks(execute=True):
        started = services.start_sign_in(email, **start)
    if len(mail.outbox) == before:
        services.deliver_login_email(started.login_request.pk)  # idempotent
    sent = mail.outbox[before:]
    return read_sign_in_mail(sent[-1]) if sent else None


class FrozenClock:
    """Stands in for ``passwordless.clock.now``, the app's one source of time.

    Install it with ``mock.patch("passwordless.clock.now", FrozenClock(timezone.now()))``
    or take the ``frozen_clock`` fixture.
    """

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        """Move on by a ``timedelta``'s keyword arguments: ``advance(minutes=10)``."""
        self.current += timedelta(**delta)


if find_spec("pytest") is not None:
    import pytest

    @pytest.fixture
    def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
        """The app's time, frozen at the start of the test until the test moves it."""
        frozen = FrozenClock(timezone.now())
        monkeypatch.setattr(clock, "now", frozen)
        return frozen

    @pytest.fixture
    def passwordless_code() -> Callable[..., Delivered | None]:
        """:func:`request_code`: ``passwordless_code("alice@example.org").code``."""
        return request_code
