from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import caches
from django.test import Client

# The app's own test helpers, shipped for projects that use it; used here so they are exercised.
# Test modules import these names from here too.
from passwordless.testing import CODE_RE, LINK_RE, Delivered, FrozenClock, read_sign_in_mail

# Fixtures, offered here as `pytest_plugins = ["passwordless.testing"]` offers them to a project.
from passwordless.testing import frozen_clock as frozen_clock
from passwordless.testing import passwordless_code as passwordless_code

__all__ = ["CODE_RE", "LINK_RE", "Delivered", "FrozenClock", "RateLimitClock", "read_sign_in_mail"]

_MISSING = {
    "postgres": ("postgres", "PostgreSQL is not answering on 127.0.0.1:5432"),
    "redis": ("redis", "Redis is not answering on 127.0.0.1:6379"),
}


_DB_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
}


def tier_of(item: pytest.Item) -> str:
    """The one tier of a test (a marker registered in pyproject.toml), by what it uses.

    The heaviest thing it uses decides, so ``-m "unit or db"`` (``make test-fast``) starts
    no server and no process, and ``-m db`` is not also every e2e test.

    browser: a module named ``test_browser*`` (Chromium); e2e: marked so by hand (it starts
    processes: gunicorn, a Celery worker, an SMTP server); http: the ``live_server`` fixture
    (directly or through ``site``); db: the ``django_db`` marker or a database fixture;
    unit: anything else.
    """
    fixtures = set(getattr(item, "fixturenames", ()))
    if item.path.name.startswith("test_browser"):
        return "browser"
    if item.get_closest_marker("e2e"):
        return "e2e"
    if "live_server" in fixtures:
        return "http"
    if item.get_closest_marker("django_db") or fixtures & _DB_FIXTURES:
        return "db"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    available = {"postgres": settings.HAS_POSTGRES, "redis": settings.HAS_REDIS}
    for item in items:
        tier = tier_of(item)
        if tier != "e2e":  # already marked
            item.add_marker(getattr(pytest.mark, tier))
        for marker, (service, reason) in _MISSING.items():
            if item.get_closest_marker(marker) and not available[service]:
                item.add_marker(pytest.mark.skip(reason=f"{reason}: test skipped"))


@pytest.fixture(autouse=True)
def _clean_caches() -> Iterator[None]:
    yield
    for alias in settings.CACHES:
        caches[alias].clear()


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
