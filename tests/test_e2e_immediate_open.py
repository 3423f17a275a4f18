"""A code and link work the moment their email arrives.

The worker commits the secret before it sends the email. A mail scanner (Microsoft
Defender Safe Links) opens links while the message is still being delivered, and a
person may type the code at once: here the SMTP server itself does both, before it
answers the DATA command, for 200 sign-ins over real gunicorn, PostgreSQL, Redis and
Celery processes. Then the database stops between the send and its record, and
starts again 2 s later: the code still works, and no task sends the email again.
And, in-process, the claim that keeps a send single: a duplicate while it is under
way sends nothing, and a claim whose worker died is sent again only after
``CLAIM_TIMEOUT``.
"""

from __future__ import annotations

import functools
import re
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
import pytest
import redis
import requests
from celery import Celery
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

from passwordless import services
from passwordless.models import LoginRequest, LoginSecret
from passwordless.services.delivery import CLAIM_TIMEOUT, DeliveryDeferred, stale_claims
from passwordless.tasks import MAIL_TASK_OPTIONS
from tests import services as test_services
from tests.attacker import Browser
from tests.conftest import FrozenClock, read_sign_in_mail
from tests.factories import LoginRequestFactory
from tests.stack import (
    Process,
    SMTPServer,
    celery_worker,
    code_and_link,
    free_port,
    gunicorn,
    migrate,
    postgres_cluster,
    production_env,
)

SIGN_INS = 200
#: How long the scanner waits for an answer: the worker waits for the scanner, so a
#: sign-in that blocks on the worker's transaction (the old order) fails, not hangs.
OPEN_TIMEOUT = 5.0
#: Redis databases of the web processes (cache, sessions, rate limits) and of the broker.
REDIS_DBS = (11, 12, 13, 14)
LOCMEM = "django.core.mail.backends.locmem.EmailBackend.send_messages"


def _stack_env(port: int, tmp: Path, smtp: SMTPServer, **overrides: str) -> dict[str, str]:
    return production_env(
        port,
        tmp / "var",
        CELERY_BROKER_URL=_broker_url(),
        EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        EMAIL_TIMEOUT="20",  # longer than OPEN_TIMEOUT: the scanner answers first
        SEND_RATES_PER_IP="100000/h",
        VERIFY_RATES_PER_IP="100000/5m",
        **overrides,
    )


def _broker_url() -> str:
    return f"redis://127.0.0.1:{test_services.REDIS_PORT}/{REDIS_DBS[-1]}"


@pytest.fixture
def clean_redis() -> Iterator[None]:
    databases = [redis.Redis(port=test_services.REDIS_PORT, db=db) for db in REDIS_DBS]
    for db in databases:
        db.flushdb()
    yield
    for db in databases:
        db.flushdb()


_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _submit(browser: Browser, path: str, data: dict[str, str]) -> requests.Response:
    """Post a form of ``path`` as a browser does, answered within ``OPEN_TIMEOUT``."""
    url = browser.url(path)
    page = browser.session.get(url, timeout=OPEN_TIMEOUT)
    token = _CSRF.search(page.text)
    if token is None:
        raise AssertionError(f"{path} answered {page.status_code} without a form")
    return browser.session.post(
        url,
        data={"csrfmiddlewaretoken": token.group(1), **data},
        headers={"Origin": browser.base_url},
        allow_redirects=False,
        timeout=OPEN_TIMEOUT,
    )


def _signed_in(response: Any) -> bool:
    """A sign-in ends in a redirect out of the sign-in pages."""
    location = response.headers.get("Location", "")
    return bool(response.status_code == 302 and "/auth/" not in location)


@dataclass
class Scanner:
    """The SMTP server's hook: for each message, before it is accepted, the browser that
    asked opens the link and clicks the one-click button, or types the code."""

    browsers: dict[str, Browser] = field(default_factory=dict)
    ready: dict[str, threading.Event] = field(default_factory=dict)
    results: dict[str, tuple[str, bool, str]] = field(default_factory=dict)
    done: threading.Condition = field(default_factory=threading.Condition)

    def expect(self, email: str) -> None:
        self.ready[email] = threading.Event()

    def register(self, email: str, browser: Browser) -> None:
        self.browsers[email] = browser
        self.ready[email].set()

    def __call__(self, message: EmailMessage) -> None:
        email = str(message["To"])
        code, link = code_and_link(message)
        by_link = int(email.split("-")[1].split("@")[0]) % 2 == 0
        try:
            if not self.ready[email].wait(OPEN_TIMEOUT):
                raise TimeoutError("the start did not return")
            browser = self.browsers[email]
            if by_link:
                opened = browser.session.get(link, allow_redirects=False, timeout=OPEN_TIMEOUT)
                if opened.status_code != 302:
                    raise AssertionError(f"the link answered {opened.status_code}")
                answer = _submit(browser, "/auth/link/", {"action": "sign_in"})
            else:
                answer = _submit(browser, "/auth/code/", {"code": code})
            where = answer.headers.get("Location")
            outcome = (_signed_in(answer), f"{answer.status_code} {where}")
        except Exception as exc:
            outcome = (False, type(exc).__name__)
        with self.done:
            self.results[email] = ("link" if by_link else "code", *outcome)
            self.done.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.done:
            while len(self.results) < count and time.monotonic() < deadline:
                self.done.wait(deadline - time.monotonic())


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_two_hundred_sign_ins_work_while_their_email_is_being_delivered(
    transactional_db: None, clean_redis: None, tmp_path: Path
) -> None:
    scanner = Scanner()
    port = free_port()
    with SMTPServer(on_message=scanner) as smtp:
        env = _stack_env(port, tmp_path, smtp)
        with gunicorn(env, tmp_path, port, workers=3), celery_worker(env, tmp_path) as worker:
            site = f"http://127.0.0.1:{port}"

            def start(i: int) -> None:
                email = f"scan-{i}@example.org"
                scanner.expect(email)
                browser = Browser(site)
                answer = browser.start(email)
                assert answer.status_code == 302, answer.text
                scanner.register(email, browser)

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(start, range(SIGN_INS)))
            scanner.wait_for(SIGN_INS, timeout=75)
            elapsed = time.monotonic() - started
            worker.assert_running()

    failed = {e: r for e, r in scanner.results.items() if not r[1]}
    by_method = {m: sum(1 for r in failed.values() if r[0] == m) for m in ("link", "code")}
    summary = f"{len(failed)} of {len(scanner.results)} failed {by_method} in {elapsed:.0f}s"
    assert len(scanner.results) == SIGN_INS, summary
    assert not failed, f"{summary}: {list(failed.items())[:5]}"
    settled = set(LoginRequest.objects.values_list("status", "delivery", "sends"))
    assert settled == {("signed_in", "sent", 1)}


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_database_restart_between_the_send_and_its_record(
    clean_redis: None, tmp_path: Path
) -> None:
    """The database goes away the moment the mail server has the message, and comes back
    2 s later. A duplicate task arrives while the email is being sent, and another after."""
    with postgres_cluster() as cluster:
        cluster.create_database("passwordless")
        port = free_port()
        outage = Outage(cluster)
        with SMTPServer(on_message=outage) as smtp:
            env = _stack_env(port, tmp_path, smtp, DATABASE_URL=cluster.url("passwordless"))
            migrate(env, tmp_path)
            with (
                gunicorn(env, tmp_path, port) as web,
                celery_worker(env, tmp_path, name="worker-1") as first,
                celery_worker(env, tmp_path, name="worker-2") as second,
            ):
                outage.workers = [first, second]
                browser = Browser(f"http://127.0.0.1:{port}")
                assert browser.start("alice@example.org").status_code == 302
                smtp.wait_for(1, timeout=30)
                outage.finished.wait(30)
                assert outage.error is None, outage.error
                settled = _wait_until(lambda: _settled(cluster), timeout=30)
                # Another copy of the task, after the email was delivered.
                late = _publish(_row(cluster)["id"])
                ran = [
                    _wait_until(functools.partial(_ran, task_id, first, second), timeout=60)
                    for task_id in (outage.duplicate, late)
                ]
                code, _ = code_and_link(smtp.messages[0])
                signed_in = _signed_in(browser.submit_code(code))
                outcome = {
                    "emails": len(smtp.messages),
                    "first code works": signed_in,
                    "send recorded": settled,
                    "duplicates done": ran,
                }
                assert outcome == {
                    "emails": 1,
                    "first code works": True,
                    "send recorded": True,
                    "duplicates done": [True, True],
                }, (outcome, first.log()[-2000:], second.log()[-2000:], web.log()[-2000:])
                assert _row(cluster)["status"] == "signed_in"


class Outage:
    """The SMTP hook of the restart test: with the first message in hand, publish a
    duplicate task and let it meet the send under way, then stop the database, answer,
    and start the database again 2 s later."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.workers: list[Process] = []
        self.duplicate = ""
        self.error: str | None = None
        self.finished = threading.Event()

    def __call__(self, message: EmailMessage) -> None:
        if self.duplicate:
            return
        try:
            self.duplicate = _publish(_row(self.cluster)["id"])
            met = _wait_until(lambda: _retried(self.duplicate, *self.workers), timeout=20)
            if not met:
                self.error = "the duplicate task did not run while the email was being sent"
            self.cluster.stop()
            threading.Timer(2.0, self.cluster.start).start()
        except Exception as exc:
            self.error = repr(exc)
        finally:
            self.finished.set()


def _row(cluster: Any) -> dict[str, Any]:
    """The one sign-in request of the private database, or nothing while it is down."""
    query = "SELECT id, status, delivery, sends FROM passwordless_loginrequest"
    try:
        with psycopg.connect(cluster.url("passwordless"), connect_timeout=2) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.OperationalError:
        return {}
    return dict(zip(("id", "status", "delivery", "sends"), row, strict=True)) if row else {}


def _settled(cluster: Any) -> bool:
    row = _row(cluster)
    return (row.get("delivery"), row.get("sends")) == ("sent", 1)


def _publish(login_request_id: int) -> str:
    """Put one more ``send_login_email`` task on the broker, as the sweeper or a
    redelivery would; return its id."""
    app = Celery()
    # Named here: Celery would take CELERY_BROKER_URL from this process's environment.
    with app.connection_for_write(_broker_url()) as connection:
        task = app.send_task(
            "passwordless.send_login_email", args=[login_request_id], connection=connection
        )
    app.close()
    return str(task.id)


def _task_lines(task_id: str, *workers: Process) -> list[str]:
    return [line for w in workers for line in w.log().splitlines() if task_id in line]


def _retried(task_id: str, *workers: Process) -> bool:
    return any("retry" in line.lower() for line in _task_lines(task_id, *workers))


def _ran(task_id: str, *workers: Process) -> bool:
    return any("succeeded" in line for line in _task_lines(task_id, *workers))


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


# The claim, in-process.


@pytest.mark.django_db
def test_a_task_run_while_the_email_is_being_sent_sends_nothing() -> None:
    login_request = LoginRequestFactory.create()
    inner: list[BaseException] = []
    real_send = LocmemBackend.send_messages

    def send_and_meet_a_duplicate(self: Any, messages: Any) -> int:
        try:
            services.deliver_login_email(login_request.pk)
        except DeliveryDeferred as exc:
            inner.append(exc)
        return int(real_send(self, messages))

    with mock.patch(LOCMEM, send_and_meet_a_duplicate):
        assert services.deliver_login_email(login_request.pk) == "sent"
    assert [str(e) for e in inner] == ["send under way"]
    assert len(mail.outbox) == 1
    login_request.refresh_from_db()
    assert (login_request.delivery, login_request.sends) == ("sent", 1)
    assert services.deliver_login_email(login_request.pk) == "sent"
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_claim_whose_worker_died_is_sent_again_after_the_timeout(
    frozen_clock: FrozenClock,
) -> None:
    login_request = LoginRequestFactory.create()
    with mock.patch(LOCMEM, side_effect=KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
        services.deliver_login_email(login_request.pk)  # the worker is killed mid-send
    assert LoginSecret.objects.filter(request=login_request).count() == 1

    frozen_clock.advance(seconds=CLAIM_TIMEOUT.total_seconds() - 1)
    with pytest.raises(DeliveryDeferred):
        services.deliver_login_email(login_request.pk)
    assert mail.outbox == []
    assert not stale_claims(frozen_clock()).exists()
    frozen_clock.advance(seconds=1)
    assert list(stale_claims(frozen_clock())) == [login_request]
    assert services.deliver_login_email(login_request.pk) == "sent"
    assert len(mail.outbox) == 1
    login_request.refresh_from_db()
    # Both secrets stay: the lost email may have arrived.
    assert (login_request.sends, login_request.secrets.count()) == (2, 2)
    assert services.deliver_login_email(login_request.pk) == "sent"
    assert len(mail.outbox) == 1
    frozen_clock.advance(seconds=CLAIM_TIMEOUT.total_seconds())
    assert not stale_claims(frozen_clock()).exists()


def test_the_claim_outlives_the_task() -> None:
    assert CLAIM_TIMEOUT.total_seconds() > MAIL_TASK_OPTIONS["time_limit"]


@pytest.mark.django_db
def test_a_transient_failure_keeps_its_code_and_the_retry_adds_one() -> None:
    login_request = LoginRequestFactory.create()
    lost: list[Any] = []
    real_send = LocmemBackend.send_messages

    def delivered_then_disconnected(self: Any, messages: Any) -> int:
        lost.extend(messages)  # the message went out; the answer to DATA was lost
        raise smtplib.SMTPServerDisconnected("gone")

    with mock.patch(LOCMEM, delivered_then_disconnected), pytest.raises(DeliveryDeferred):
        services.deliver_login_email(login_request.pk)
    login_request.refresh_from_db()
    assert (login_request.delivery, login_request.sends) == ("deferred", 1)
    with mock.patch(LOCMEM, real_send):
        assert services.deliver_login_email(login_request.pk) == "sent"
    first = read_sign_in_mail(lost[0])
    signed, _ = services.verify_code(login_request.public_id, first.code)
    assert signed.status == "signed_in"


@pytest.mark.django_db
def test_a_refused_email_ends_its_secret() -> None:
    login_request = LoginRequestFactory.create()
    refused = smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"no such user")})
    with mock.patch(LOCMEM, side_effect=refused):
        assert services.deliver_login_email(login_request.pk) == "failed"
    login_request.refresh_from_db()
    assert (login_request.delivery, login_request.sends) == ("failed", 0)
    assert not LoginSecret.objects.filter(request=login_request).exists()


@pytest.mark.django_db
def test_a_resend_during_a_send_is_sent_too() -> None:
    login_request = LoginRequestFactory.create()
    real_send = LocmemBackend.send_messages

    def send_while_resend_is_asked(self: Any, messages: Any) -> int:
        services.resend(login_request.public_id)
        return int(real_send(self, messages))

    with mock.patch(LOCMEM, send_while_resend_is_asked):
        services.deliver_login_email(login_request.pk)
    login_request.refresh_from_db()
    assert login_request.delivery == "pending"  # the first send did not record over it
    assert services.deliver_login_email(login_request.pk) == "sent"
    assert len(mail.outbox) == 2
    login_request.refresh_from_db()
    assert (login_request.sends, login_request.secrets.count()) == (2, 2)
