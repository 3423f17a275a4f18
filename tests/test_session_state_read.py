"""Whether a session's device is live is read with its user, on every request.

``SessionModelBackend`` loads the user of a signed-in request and whether its
``UserSession`` row is live in one statement; ``SessionTimeoutMiddleware`` names the row
and signs the browser out when it is ended or gone. Nothing the cache says can keep an
ended device signed in. Other backends, and sessions signed in before the backend was
listed, take the former path (``tracking.is_ended``: the cache, else the row).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import redis
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.cache import caches
from django.db import connection
from django.db.models import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from passwordless import backends, clock
from passwordless.backends import SessionModelBackend, row_is_live, session_row
from passwordless.conf import app_settings
from passwordless.models import UserSession
from passwordless.services import tracking
from passwordless.services.revocation import end_session
from passwordless.services.sessions import SESSION_TRACKING_KEY
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
EMAIL = "alice@example.org"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"
NEW = "passwordless.backends.SessionModelBackend"
OLD = "django.contrib.auth.backends.ModelBackend"


@contextmanager
def redis_commands() -> Iterator[list[tuple[str, ...]]]:
    """Every Redis command this process sends meanwhile (pipelines aside), as text."""
    commands: list[tuple[str, ...]] = []
    send = redis.Redis.execute_command

    def record(self: redis.Redis, *args: Any, **options: Any) -> Any:
        commands.append(
            tuple(a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in args)
        )
        return send(self, *args, **options)

    with mock.patch.object(redis.Redis, "execute_command", record):
        yield commands


def _state_reads(commands: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The reads of cached session states (``tracking.is_ended``), not the writes."""
    return [c for c in commands if c[0].upper() != "SET" and "session-state" in " ".join(c)]


SignIn = Callable[..., Client]


@pytest.fixture
def signed_in(
    start_sign_in: Callable[..., Delivered | None], rate_clock: RateLimitClock
) -> SignIn:
    """A browser (Django's test client) signed in by code, seen once signed in."""

    def sign_in(email: str = EMAIL) -> Client:
        rate_clock.advance(61)  # past the address's one email a minute
        browser = Client()
        delivered = start_sign_in(email, browser)
        assert delivered is not None
        assert browser.post("/auth/code/", {"code": delivered.code})["Location"] == "/"
        assert _is_signed_in(browser)
        return browser

    return sign_in


def _is_signed_in(browser: Client) -> bool:
    home: Any = browser.get("/")
    return b"Signed in as" in home.content


def _row(browser: Client) -> UserSession:
    return UserSession.objects.get(public_id=browser.session[SESSION_TRACKING_KEY])


def _cache_says_live(row: UserSession) -> None:
    """What a stale "live" in the shared cache looks like to ``tracking.is_ended``."""
    key = tracking._STATE + row.public_id
    caches[app_settings.SESSION_CACHE].set(key, tracking._LIVE, timeout=3600)


# The default backend recorded by sign-ins.


def test_sign_ins_record_the_new_backend_once_it_is_listed(settings: Any) -> None:
    settings.AUTHENTICATION_BACKENDS = [NEW, OLD]
    assert app_settings.AUTH_BACKEND == NEW
    settings.AUTHENTICATION_BACKENDS = [OLD]  # a project that does not list it: as before
    assert app_settings.AUTH_BACKEND == OLD
    settings.PASSWORDLESS_AUTH_BACKEND = "some.Backend"  # named: always that one
    assert app_settings.AUTH_BACKEND == "some.Backend"


# The backend itself.


@pytest.mark.django_db
def test_the_backend_reads_the_row_only_when_the_middleware_names_it() -> None:
    user = UserFactory.create()
    row = UserSession.objects.create(user=user, kind=UserSession.Kind.BROWSER)
    backend = SessionModelBackend()
    plain = backend.get_user(str(user.pk))
    assert plain == user and row_is_live(plain, row.public_id) is None  # ModelBackend's read

    token = session_row.set(row.public_id)
    try:
        with CaptureQueriesContext(connection) as queries:
            loaded = backend.get_user(str(user.pk))
        assert loaded == user and len(queries) == 1
        assert row_is_live(loaded, row.public_id) is True
        assert row_is_live(loaded, "another-row") is None  # the answer is for its row only
        assert not hasattr(loaded, backends._LIVE)  # the extra column does not linger
        assert {f.attname: getattr(loaded, f.attname) for f in User._meta.concrete_fields} == {
            f.attname: getattr(user, f.attname) for f in User._meta.concrete_fields
        }

        UserSession.objects.filter(pk=row.pk).update(ended_at=clock.now())
        assert row_is_live(backend.get_user(user.pk), row.public_id) is False
        UserSession.objects.filter(pk=row.pk).delete()
        assert row_is_live(backend.get_user(user.pk), row.public_id) is False
    finally:
        session_row.reset(token)
    assert session_row.get() is None


@pytest.mark.django_db
def test_the_backend_keeps_django_s_refusals() -> None:
    user = UserFactory.create()
    other = UserFactory.create()
    theirs = UserSession.objects.create(user=other, kind=UserSession.Kind.BROWSER)
    backend = SessionModelBackend()
    token = session_row.set(theirs.public_id)
    try:
        # Another user's live row does not make this session live.
        assert row_is_live(backend.get_user(user.pk), theirs.public_id) is False
        assert backend.get_user(str(other.pk + user.pk + 1000)) is None  # no such user
        assert backend.get_user("not-a-key") is None
        User.objects.filter(pk=other.pk).update(is_active=False)
        assert backend.get_user(other.pk) is None  # user_can_authenticate
    finally:
        session_row.reset(token)


def test_a_manager_that_filters_users_keeps_modelbackend_s_read() -> None:
    """The plain statement would load users the project's default manager hides."""
    assert backends._USER_AND_ROW.written_for(User, connection) is not None

    def only_active(manager: Any) -> Any:
        return QuerySet(User, using=manager._db).filter(is_active=True)

    with mock.patch.object(type(User._default_manager), "get_queryset", only_active):
        assert backends._USER_AND_ROW.written_for(User, connection) is None


@pytest.mark.django_db
def test_the_statement_runs_on_the_database_under_test() -> None:
    """The SQLite run below asks for SQLite, and gets it."""
    wanted = os.environ.get("PASSWORDLESS_TEST_VENDOR")
    assert wanted in (None, connection.vendor)
    statement = backends._USER_AND_ROW.written_for(User, connection)
    assert statement is not None and statement.count("%s") == 2


# Through the middleware, in process.


@pytest.mark.redis
@pytest.mark.django_db
def test_an_ended_row_signs_out_at_once_while_the_cache_says_live(signed_in: SignIn) -> None:
    laptop, phone = signed_in(), signed_in()
    row = _row(phone)
    assert phone.session[BACKEND_SESSION_KEY] == NEW
    _cache_says_live(row)
    # Ended by SQL: no signal, no "ended" in the cache, the cache still says "live".
    UserSession.objects.filter(pk=row.pk).update(ended_at=clock.now(), ended_reason="sql")
    with redis_commands() as commands:
        assert not _is_signed_in(phone)
    assert not _state_reads(commands)  # the row decided, the cache was not asked
    assert not _is_signed_in(phone)  # and it stays signed out: the session is gone
    assert _is_signed_in(laptop)


@pytest.mark.redis
@pytest.mark.django_db
def test_a_deleted_row_signs_out_at_once_while_the_cache_says_live(signed_in: SignIn) -> None:
    laptop, phone = signed_in(), signed_in()
    row = _row(phone)
    _cache_says_live(row)
    UserSession.objects.filter(pk=row.pk).delete()
    assert not _is_signed_in(phone)
    assert _is_signed_in(laptop)


@pytest.mark.redis
@pytest.mark.django_db
def test_with_plain_modelbackend_the_cache_and_the_row_still_decide(
    signed_in: SignIn, settings: Any
) -> None:
    settings.AUTHENTICATION_BACKENDS = [OLD]
    phone = signed_in()
    assert phone.session[BACKEND_SESSION_KEY] == OLD
    with redis_commands() as commands:
        assert _is_signed_in(phone)
    assert _state_reads(commands)  # tracking.is_ended: the cached state
    row = _row(phone)
    end_session(row, reason="user")  # writes "ended" in the cache at once
    assert not _is_signed_in(phone)


@pytest.mark.redis
@pytest.mark.django_db
def test_a_session_signed_in_before_the_backend_was_listed_keeps_working(
    signed_in: SignIn, settings: Any
) -> None:
    settings.PASSWORDLESS_AUTH_BACKEND = OLD  # as every sign-in recorded it before
    phone = signed_in()
    del settings.PASSWORDLESS_AUTH_BACKEND
    assert phone.session[BACKEND_SESSION_KEY] == OLD
    assert _is_signed_in(phone)  # ModelBackend is still listed, after the new one
    end_session(_row(phone), reason="user")
    assert not _is_signed_in(phone)


@pytest.mark.redis
@pytest.mark.django_db
def test_a_user_loaded_before_the_middleware_is_checked_the_former_way(
    signed_in: SignIn, settings: Any
) -> None:
    """A middleware ahead of ``SessionTimeoutMiddleware`` that reads ``request.user``."""
    phone = signed_in()
    row = _row(phone)
    at = settings.MIDDLEWARE.index("passwordless.middleware.SessionTimeoutMiddleware")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:at],
        "tests.test_session_state_read.ReadsTheUser",
        *settings.MIDDLEWARE[at:],
    ]
    phone = _same_cookies(phone)  # a client builds its middleware once
    with redis_commands() as commands:
        assert _is_signed_in(phone)
    assert _state_reads(commands)  # no answer was carried: tracking.is_ended asked
    end_session(row, reason="user")
    assert not _is_signed_in(phone)


def _same_cookies(browser: Client) -> Client:
    twin = Client()
    twin.cookies = browser.cookies
    return twin


class ReadsTheUser:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        assert request.user.is_authenticated is not None
        return self.get_response(request)


@pytest.mark.redis
@pytest.mark.django_db
def test_an_anonymous_request_reads_no_session_state(client: Client) -> None:
    with CaptureQueriesContext(connection) as queries, redis_commands() as commands:
        assert client.get("/").status_code == 200
    assert not commands  # no cookie: no session to load, nothing to ask
    assert not [q for q in queries if "passwordless_usersession" in q["sql"]]


# Over HTTP, against the running app.


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_device_ended_from_another_is_refused_on_its_next_request(
    site: str, mailbox: Callable[..., Delivered], rate_clock: RateLimitClock
) -> None:
    def sign_in(**headers: str) -> Browser:
        rate_clock.advance(61)
        browser = Browser(site, **headers)
        browser.start(EMAIL)
        assert browser.submit_code(mailbox(EMAIL).code).headers["Location"] == "/"
        assert browser.signed_in_as() == EMAIL
        return browser

    laptop, phone = sign_in(), sign_in(**{"User-Agent": PHONE})
    row = UserSession.objects.get(device="Safari on iPhone")
    token = laptop.csrf_token("/auth/sessions/")
    assert laptop.post("/auth/sessions/", {"session": row.public_id}, token=token).is_redirect
    _cache_says_live(row)  # a stale "live" (a lost write, a race): the row still decides
    assert phone.signed_in_as() is None
    assert phone.get("/auth/sessions/").status_code == 302  # to the sign-in page
    assert laptop.signed_in_as() == EMAIL

    # Ended behind the app's back, by SQL: the laptop too, on its very next request.
    UserSession.objects.filter(ended_at=None).update(ended_at=clock.now(), ended_reason="sql")
    assert laptop.signed_in_as() is None


# SQLite, the development default.


@pytest.mark.e2e
def test_the_database_tests_pass_on_sqlite() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--ds", "tests.settings_sqlite", "-m", "db", __file__,
        ],
        cwd=ROOT,
        env={**os.environ, "PASSWORDLESS_TEST_VENDOR": "sqlite"},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
