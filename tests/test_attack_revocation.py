"""An ended device stays ended, whatever the cache loses; the session cap holds under a race.

Over HTTP, against the live server or a gunicorn of the project, with real Redis.
The cache only remembers what the ``UserSession`` row says: a flush, a restart
without persistence or an eviction must never sign an ended browser back in.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_redis import get_redis_connection

from passwordless.models import UserSession
from passwordless.services.sessions import SESSION_TRACKING_KEY
from tests import services
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock
from tests.factories import UserFactory
from tests.helpers import all_at_once
from tests.stack import SMTPServer, code_of, free_port, gunicorn, production_env
from tests.test_session_state_read import redis_commands

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

Mailbox = Callable[..., Delivered]
EMAIL = "alice@example.org"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"


@pytest.fixture
def sign_in(site: str, mailbox: Mailbox, rate_clock: RateLimitClock) -> Callable[..., Browser]:
    def browser(**headers: str) -> Browser:
        rate_clock.advance(61)
        b = Browser(site, **headers)
        b.start(EMAIL)
        assert b.submit_code(mailbox(EMAIL).code).headers["Location"] == "/"
        return b

    return browser


def _end(from_browser: Browser, public_id: str) -> None:
    """End a device from the sessions page of another, as its owner would."""
    token = from_browser.csrf_token("/auth/sessions/")
    ended = from_browser.post("/auth/sessions/", {"session": public_id}, token=token)
    assert ended.status_code == 302
    assert "Signed out on" in from_browser.get(ended.headers["Location"]).text  # message read


def _phone_id() -> str:
    return UserSession.objects.get(device="Safari on iPhone").public_id


def _session_exists(key: str | None) -> bool:
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    return bool(key) and bool(store().exists(key))


def test_an_ended_session_stays_ended_when_the_cache_is_flushed(
    sign_in: Callable[..., Browser],
) -> None:
    laptop = sign_in()
    phone = sign_in(**{"User-Agent": PHONE})
    # Both are seen signed in, so the cache holds "live" for each.
    assert laptop.signed_in_as() == phone.signed_in_as() == EMAIL
    _end(laptop, _phone_id())
    # The phone asks nothing yet: its next request would sign it out and delete its session.
    caches["default"].clear()  # every key of the cache (prefix cache:), none of the sessions'
    assert _session_exists(phone.cookie("sessionid"))  # the sessions are kept apart

    page = laptop.get("/auth/sessions/").text
    assert page.count('class="session"') == 1 and "Safari on iPhone" not in page
    assert phone.signed_in_as() is None
    assert not _session_exists(phone.cookie("sessionid"))  # and now it is gone from the store
    assert laptop.signed_in_as() == EMAIL
    page = laptop.get("/auth/sessions/").text
    assert page.count('class="session"') == 1 and "Safari on iPhone" not in page


def test_an_ended_session_stays_ended_when_evicted_at_any_moment(
    sign_in: Callable[..., Browser],
) -> None:
    laptop = sign_in()
    phone = sign_in(**{"User-Agent": PHONE})
    assert phone.signed_in_as() == EMAIL
    _end(laptop, _phone_id())
    cache = get_redis_connection("default")
    for key in cache.keys("*session-*"):  # what an eviction would take first
        cache.delete(key)
    assert phone.signed_in_as() is None
    assert laptop.signed_in_as() == EMAIL


def test_a_session_whose_row_is_gone_is_signed_out(sign_in: Callable[..., Browser]) -> None:
    laptop = sign_in()
    phone = sign_in(**{"User-Agent": PHONE})
    UserSession.objects.filter(device="Safari on iPhone").delete()
    # Nothing lists it any more, so nothing could end it: it must not live on.
    assert phone.signed_in_as() is None
    assert laptop.signed_in_as() == EMAIL


def test_a_session_no_row_tracks_is_signed_out(sign_in: Callable[..., Browser]) -> None:
    laptop = sign_in()
    phone = sign_in(**{"User-Agent": PHONE})
    store = import_module(django_settings.SESSION_ENGINE).SessionStore(phone.cookie("sessionid"))
    del store[SESSION_TRACKING_KEY]  # its clocks run, but it names no row
    store.save()
    assert phone.signed_in_as() is None
    assert laptop.signed_in_as() == EMAIL


def test_a_session_from_another_login_path_is_tracked_and_can_be_ended(
    sign_in: Callable[..., Browser],
) -> None:
    laptop = sign_in()
    other = Client()
    other.force_login(UserFactory.create(email=EMAIL))  # no clocks, no row: like the admin form
    signed_in: Any = other.get("/")
    assert b"Signed in as" in signed_in.content
    row = UserSession.objects.get(method="other")
    _end(laptop, row.public_id)
    caches["default"].clear()  # the cached states only: its session is still in the store
    home: Any = other.get("/")
    assert b"Signed in as" not in home.content


def test_a_signed_in_request_is_one_statement_and_no_cached_state(
    client: Client, start_sign_in: Callable[..., Delivered | None]
) -> None:
    """The row is read on every request, in the statement that loads the user
    (``SessionModelBackend``): one SQL statement, and nothing asked of the cache about it."""
    delivered = start_sign_in(EMAIL)
    assert delivered is not None
    client.post("/auth/code/", {"code": delivered.code})
    assert client.session[BACKEND_SESSION_KEY] == "passwordless.backends.SessionModelBackend"
    client.get("/")
    with CaptureQueriesContext(connection) as queries, redis_commands() as commands:
        home: Any = client.get("/")
    assert b"Signed in as" in home.content
    (statement,) = [q["sql"] for q in queries]
    assert "passwordless_usersession" in statement and "accounts_user" in statement
    assert not [c for c in commands if "session-state" in " ".join(c)], commands


class RedisServer:
    """A redis-server of this test's own, on a free port, that it may restart."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        where = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        no_persistence = ["--save", "", "--appendonly", "no"]
        self._proc = subprocess.Popen(
            ["redis-server", *where, *no_persistence], stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not services.answers("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)

    def restart_losing_everything(self) -> None:
        with contextlib.suppress(redis.ConnectionError):  # it closes as the server exits
            redis.Redis(host="127.0.0.1", port=self.port).shutdown(nosave=True)
        assert self._proc is not None
        self._proc.wait(10)
        self.start()


@pytest.fixture
def cache_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _app(tmp_path: Path, cache_redis: RedisServer) -> Iterator[tuple[str, SMTPServer]]:
    """gunicorn with its cache on ``cache_redis``; sessions and limits on the test Redis."""
    test_redis = f"redis://127.0.0.1:{services.REDIS_PORT}"
    for db in (12, 13):
        redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=db).flushdb()
    port = free_port()
    with SMTPServer() as smtp:
        env = production_env(
            port,
            tmp_path / "var",
            REDIS_URL=f"redis://127.0.0.1:{cache_redis.port}/0",
            SESSION_REDIS_URL=f"{test_redis}/12",
            RATELIMIT_REDIS_URL=f"{test_redis}/13",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SEND_RATES_PER_EMAIL="10/m",
        )
        try:
            with gunicorn(env, tmp_path, port):
                yield f"http://127.0.0.1:{port}", smtp
        finally:
            for db in (12, 13):
                redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=db).flushdb()


@pytest.mark.e2e
@pytest.mark.postgres
def test_an_ended_session_stays_ended_when_the_cache_redis_restarts(
    tmp_path: Path, cache_redis: RedisServer
) -> None:
    with _app(tmp_path, cache_redis) as (url, smtp):
        browsers = []
        for n, agent in enumerate(["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", PHONE], 1):
            browser = Browser(url, **{"User-Agent": agent})
            assert browser.start(EMAIL).status_code == 302
            assert browser.submit_code(code_of(smtp.wait_for(n))).headers["Location"] == "/"
            assert browser.signed_in_as() == EMAIL
            browsers.append(browser)
        laptop, phone = browsers
        _end(laptop, _phone_id())
        cache_redis.restart_losing_everything()  # every flag and cached state is gone
        assert redis.Redis(host="127.0.0.1", port=cache_redis.port).dbsize() == 0

        assert phone.signed_in_as() is None
        assert laptop.signed_in_as() == EMAIL
        page = laptop.get("/auth/sessions/").text
        assert page.count('class="session"') == 1 and "Safari on iPhone" not in page


@pytest.mark.postgres
def test_concurrent_sign_ins_stay_within_the_session_cap(
    site: str, mailbox: Mailbox, settings: Any
) -> None:
    settings.PASSWORDLESS_MAX_SESSIONS = 2
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "100/m"
    settings.PASSWORDLESS_SEND_RATES_PER_IP = "100/m"
    UserFactory.create(email=EMAIL)
    browsers = [Browser(site) for _ in range(12)]
    codes = []
    for i, browser in enumerate(browsers):
        assert browser.start(EMAIL).status_code == 302
        codes.append(mailbox(EMAIL, i).code)
    submissions = [
        functools.partial(b.submit_code, c) for b, c in zip(browsers, codes, strict=True)
    ]
    outcomes = [r.headers.get("Location") for r in all_at_once(submissions)]
    assert outcomes == ["/"] * 12  # every sign-in succeeds, ending the oldest
    assert UserSession.objects.filter(ended_at=None).count() == 2
    assert [b.signed_in_as() for b in browsers].count(EMAIL) == 2
