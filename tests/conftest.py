from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import caches
from django.test import Client

_MISSING = {
    "postgres": ("postgres", "PostgreSQL is not answering on 127.0.0.1:5432"),
    "redis": ("redis", "Redis is not answering on 127.0.0.1:6379"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    available = {"postgres": settings.HAS_POSTGRES, "redis": settings.HAS_REDIS}
    for item in items:
        for marker, (service, reason) in _MISSING.items():
            if item.get_closest_marker(marker) and not available[service]:
                item.add_marker(pytest.mark.skip(reason=f"{reason}: test skipped"))


@pytest.fixture(autouse=True)
def _clean_caches() -> Iterator[None]:
    yield
    for alias in settings.CACHES:
        caches[alias].clear()


class FrozenClock:
    """Controls ``passwordless.clock.now``, the app's one source of time."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    from django.utils import timezone

    from passwordless import clock

    frozen = FrozenClock(timezone.now())
    monkeypatch.setattr(clock, "now", frozen)
    return frozen


class RateLimitClock:
    """Controls the time django-ratelimit reads, so windows can be crossed without waiting."""

    def __init__(self, start: float) -> None:
        self.current = start

    def time(self) -> float:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds

    def start_of_window(self, value: str, period: int) -> None:
        """Move to just after the start of ``value``'s window of ``period`` seconds.

        django-ratelimit staggers window edges by key (``crc32(value) % period``),
        so a test spanning minutes would otherwise cross an edge now and then.
        """
        offset = zlib.crc32(value.encode()) % period
        self.current = float(int(self.current) // period * period + offset + 1)


@pytest.fixture
def rate_clock(monkeypatch: pytest.MonkeyPatch) -> RateLimitClock:
    import time

    import django_ratelimit.core

    # Frozen: a test crosses a window edge only when it says so.
    clock = RateLimitClock(float(int(time.time())))
    monkeypatch.setattr(django_ratelimit.core, "time", clock)
    return clock


@dataclass
class Delivered:
    code: str
    link: str
    message: mail.EmailMultiAlternatives


CODE_RE = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)
LINK_RE = re.compile(r"(https?://\S+/auth/link/[A-Za-z0-9_-]+/)")


def read_sign_in_mail(message: Any) -> Delivered:
    """The code and link of a sign-in email, read from its text part."""
    code = CODE_RE.search(message.body)
    link = LINK_RE.search(message.body)
    assert code and link, message.body
    return Delivered(code=code.group(1), link=link.group(1), message=message)


@pytest.fixture
def start_sign_in(
    client: Client, django_capture_on_commit_callbacks: Any
) -> Callable[..., Delivered | None]:
    """POST the email form as a browser would, run the queued task, return the mail sent."""

    def start(email: str, c: Client | None = None, **extra: str) -> Delivered | None:
        before = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            response = (c or client).post("/auth/login/", {"email": email, **extra})
        assert response.status_code == 302, response.content
        if len(mail.outbox) == before:
            return None
        return read_sign_in_mail(mail.outbox[-1])

    return start


@pytest.fixture
def site(live_server: Any, settings: Any) -> str:
    """The app served over HTTP on loopback, with links pointing at it."""
    settings.PASSWORDLESS_SITE_URL = live_server.url
    return str(live_server.url)


@pytest.fixture
def mailbox() -> Callable[..., Delivered]:
    """The newest sign-in email sent to an address (the locmem outbox, shared with the server)."""

    def newest(to: str, index: int = -1) -> Delivered:
        messages = [m for m in mail.outbox if to in m.to]
        assert messages, f"no mail to {to}: {[m.to for m in mail.outbox]}"
        return read_sign_in_mail(messages[index])

    return newest
