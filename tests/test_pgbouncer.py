"""PostgreSQL behind PgBouncer, the whole flow over HTTP, in transaction and session pooling.

A PgBouncer of the test's own (at most two server connections, shared by all its clients)
fronts the test database on the machine's PostgreSQL. gunicorn (four processes), a Celery
worker and every statement they run go through it. In transaction mode, with
``DATABASE_POOLING=transaction``: no server-side cursors, and client connections kept open
(``CONN_MAX_AGE``), which costs no server connection between transactions; in session mode
(``DATABASE_POOLING=session``) each request's connection is closed after it. The flow: send,
the worker delivers, verify by code, refresh the JWT pair, sign in and out in a browser, the
purge task; then twenty clients submit one code at once, and one link's code on twenty
pages at once: exactly one signs in, the others are refused, none gets an error. Statement
pooling refuses the transactions the app is made of.

The test database was created and migrated by pytest-django over a direct connection, as a
release step does (``bin/migrate``): migrating needs no pool, and a migration is entitled to
one server connection for its whole run (a non-atomic migration, a ``SET lock_timeout``
for the session), which transaction pooling does not give.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from celery import Celery
from django.db import connection

from passwordless import clock
from passwordless.models import AuthEvent, LoginRequest, LoginSecret
from tests import services
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.factories import LoginRequestFactory, issue_secret
from tests.stack import (
    Process,
    SMTPServer,
    celery_worker,
    code_and_link,
    free_port,
    gunicorn,
    production_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

POOL_SIZE = 2
CLIENTS = 20
ALIAS = "bounced"  # the database's name at PgBouncer
Submission = Callable[[], requests.Response]


def _pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
    )


class PgBouncer:
    """PgBouncer on a free loopback port, in a directory of its own; as root, it runs as the
    ``postgres`` user (it refuses to run as root)."""

    def __init__(self, binary: str, directory: Path, database: str, mode: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.log = directory / "pgbouncer.log"
        (directory / "users.txt").write_text('"postgres" ""\n')
        self.config = directory / "pgbouncer.ini"
        self.config.write_text(
            "[databases]\n"
            f"{ALIAS} = host=127.0.0.1 port=5432 dbname={database} user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
            f"admin_users = postgres\npool_mode = {mode}\n"
            f"default_pool_size = {POOL_SIZE}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            f"max_client_conn = 200\nlogfile = {self.log}\n"
            f"pidfile = {directory / 'pgbouncer.pid'}\n"
        )
        self.binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{ALIAS}"

    def start(self) -> None:
        as_postgres: dict[str, Any] = {}
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            for path in self.directory.iterdir():
                shutil.chown(path, "postgres")
            as_postgres = {"user": "postgres", "group": "postgres", "extra_groups": []}
        self._process = subprocess.Popen(
            [self.binary, str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            **as_postgres,
        )
        deadline = time.monotonic() + 15
        while not services.answers("127.0.0.1", self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"pgbouncer did not start:\n{log}")
            time.sleep(0.05)

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on PgBouncer's admin console, one dict per row."""
        url = f"postgres://postgres@127.0.0.1:{self.port}/pgbouncer"
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as admin:
            cursor = admin.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stop(self) -> None:
        # SIGINT: a safe shutdown, its server connections closed, so that pytest-django can
        # drop the test database after.
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(2)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@dataclass
class Site:
    url: str
    smtp: SMTPServer
    bouncer: PgBouncer
    mode: str
    env: dict[str, str]
    web: Process
    worker: Process

    def mail_to(self, email: str, timeout: float = 30) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.smtp.messages if m["To"] == email]
            if found:
                assert len(found) == 1, f"{len(found)} emails to {email}"
                return found[0]
            time.sleep(0.05)
        raise TimeoutError(f"no email to {email} after {timeout}s")


@contextmanager
def _bouncer(mode: str) -> Iterator[PgBouncer]:
    binary = _pgbouncer()
    if binary is None:
        if services.REQUIRED:
            raise RuntimeError("pgbouncer (Debian's pgbouncer) is not installed")
        pytest.skip("PgBouncer (Debian's pgbouncer) is not installed")
    # PgBouncer runs as postgres: a directory it can reach (pytest's tmp_path is private).
    directory = Path(tempfile.mkdtemp(prefix="passwordless-pgbouncer-"))
    bouncer = PgBouncer(binary, directory, connection.settings_dict["NAME"], mode)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module", params=["transaction", "session"])
def site(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """The stack behind PgBouncer in each pooling mode, for the module's tests; each test
    takes ``transactional_db`` for its own rows (the tables are emptied after each)."""
    mode = str(request.param)
    tmp_path = tmp_path_factory.mktemp(f"pgbouncer-{mode}")
    with _bouncer(mode) as bouncer:
        port = free_port()
        with SMTPServer() as smtp:
            env = production_env(
                port,
                tmp_path / "var",
                DATABASE_URL=bouncer.url,
                DATABASE_POOLING=mode,
                EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
                SEND_RATES_PER_EMAIL="100/m",
                SEND_RATES_PER_IP="10000/h",
                VERIFY_RATES_PER_IP="10000/5m",
            )
            # The broker in REDIS_URL's database, beside the caches (its keys prefixed).
            env["CELERY_BROKER_URL"] = env["REDIS_URL"]
            with (
                celery_worker(env, tmp_path) as worker,
                gunicorn(env, tmp_path, port, workers=4) as web,
            ):
                yield Site(f"http://127.0.0.1:{port}", smtp, bouncer, mode, env, web, worker)


def _run_task(site: Site, name: str) -> None:
    """Queue task ``name`` on the site's broker, as beat would."""
    probe = Celery("probe", set_as_current=False)
    probe.conf.broker_transport_options = {"global_keyprefix": "broker:"}
    with probe.connection_for_write(site.env["CELERY_BROKER_URL"]) as conn:
        probe.send_task(name, connection=conn)
    probe.close()


def _until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.1)


def _race(submissions: list[Submission]) -> list[requests.Response]:
    """Run the submissions at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(submissions))
    responses: list[Any] = [None] * len(submissions)

    def run(i: int) -> None:
        barrier.wait()
        responses[i] = submissions[i]()

    threads = [threading.Thread(target=functools.partial(run, i)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


def _one_wins(responses: list[requests.Response], accepted: int) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(accepted) == 1, statuses
    assert set(statuses) - {accepted} <= {409}, statuses  # already used: refused in words


def _signed_in_once(email: str) -> None:
    request = LoginRequest.objects.get(email=email)
    assert request.status == "signed_in"
    kinds = list(AuthEvent.objects.filter(login_request=request).values_list("kind", flat=True))
    assert kinds.count("signed_in") == 1, kinds


def test_the_whole_flow_through_pgbouncer(site: Site, transactional_db: None) -> None:
    (mode,) = [c["value"] for c in site.bouncer.show("CONFIG") if c["key"] == "pool_mode"]
    assert mode == site.mode

    # Send, the worker delivers, verify by code, refresh the pair (a duplicate of the refresh
    # gets the same new pair), refresh again, sign out: the family's refresh is refused.
    api = ApiClient(site.url)
    sent = api.send("api@example.org")
    assert sent.status_code == 202, sent.text
    code, _ = code_and_link(site.mail_to("api@example.org"))
    pair = api.verify_code(sent.json()["request_id"], code).json()
    assert api.me(pair["access"]).json()["user"]["email"] == "api@example.org"
    rotated = api.post("/api/auth/token/refresh", {"refresh": pair["refresh"]})
    assert rotated.status_code == 200, rotated.text
    duplicate = api.post("/api/auth/token/refresh", {"refresh": pair["refresh"]})
    assert duplicate.json() == rotated.json()
    again = api.post("/api/auth/token/refresh", {"refresh": rotated.json()["refresh"]}).json()
    bearer = {"Authorization": f"Bearer {again['access']}"}
    assert api.me(again["access"]).status_code == 200
    assert api.post("/api/auth/logout", {"refresh": again["refresh"]}, bearer).status_code == 204
    assert api.post("/api/auth/token/refresh", {"refresh": again["refresh"]}).status_code == 401
    assert api.me(again["access"]).status_code == 401

    # A browser signs in with the code and out again.
    browser = Browser(site.url)
    assert browser.start("web@example.org").status_code == 302
    code, _ = code_and_link(site.mail_to("web@example.org"))
    assert browser.submit_code(code).headers["Location"] == "/"
    assert browser.signed_in_as() == "web@example.org"
    assert browser.post("/auth/logout/", token=browser.csrf_token("/")).status_code == 302
    assert browser.signed_in_as() is None

    # The purge task, run by the worker: requests expired more than a week ago go.
    old = [LoginRequestFactory.create() for _ in range(3)]
    for request in old:
        issue_secret(request)
    LoginRequest.objects.filter(pk__in=[r.pk for r in old]).update(
        expires_at=clock.now() - timedelta(days=8)
    )
    _run_task(site, "passwordless.purge")
    _until(
        lambda: not LoginRequest.objects.filter(pk__in=[r.pk for r in old]).exists(),
        30,
        f"the purge did not run:\n{site.worker.log()[-3000:]}",
    )
    assert not LoginSecret.objects.filter(request_id__in=[r.pk for r in old]).exists()
    assert LoginRequest.objects.filter(email="api@example.org").exists()  # recent: kept

    _check_pooled(site, after_race=False)


def test_one_code_submitted_twenty_times_at_once_signs_in_once(
    site: Site, transactional_db: None
) -> None:
    # Twenty API clients post the code of one request.
    started = ApiClient(site.url).send("race-api@example.org")
    assert started.status_code == 202, started.text
    code, _ = code_and_link(site.mail_to("race-api@example.org"))
    request_id = started.json()["request_id"]
    clients = [ApiClient(site.url) for _ in range(CLIENTS)]
    _one_wins(_race([functools.partial(c.verify_code, request_id, code) for c in clients]), 200)
    _signed_in_once("race-api@example.org")

    # Twenty browsers that opened the link type its code on the link's page: twenty
    # sessions, each reaching the code check on its own.
    assert Browser(site.url).start("race-web@example.org").status_code == 302
    code, link = code_and_link(site.mail_to("race-web@example.org"))
    submissions: list[Submission] = []
    for browser in (Browser(site.url) for _ in range(CLIENTS)):
        assert browser.open_link(link).status_code == 302
        token = browser.csrf_token("/auth/link/")
        form = {"action": "code", "code": code}
        submissions.append(functools.partial(browser.post, "/auth/link/", form, token=token))
    _one_wins(_race(submissions), 302)
    _signed_in_once("race-web@example.org")

    _check_pooled(site, after_race=True)


def _check_pooled(site: Site, *, after_race: bool) -> None:
    """Everything went through PgBouncer, on at most ``POOL_SIZE`` server connections, and
    no process logged an error (a cursor or a prepared statement that a server connection
    did not have). In transaction mode, once every web process has served a request at the
    same time, the client connections kept open outnumber the server connections."""
    (stats,) = [s for s in site.bouncer.show("STATS") if s["database"] == ALIAS]
    (pool,) = [p for p in site.bouncer.show("POOLS") if p["database"] == ALIAS]
    servers = sum(int(pool[k]) for k in pool if str(k).startswith("sv_"))
    clients = [c for c in site.bouncer.show("CLIENTS") if c["database"] == ALIAS]
    print(
        f"\nPgBouncer ({site.mode}): {stats['total_xact_count']} transactions and "
        f"{stats['total_query_count']} statements so far; {len(clients)} client connections "
        f"open on {servers} server connections"
    )
    assert int(stats["total_xact_count"]) > 0
    assert servers <= POOL_SIZE
    if after_race and site.mode == "transaction":
        assert len(clients) > POOL_SIZE
    for process in (site.web, site.worker):
        log = process.log()
        assert "Traceback" not in log, log[-3000:]
        assert '"level": "ERROR"' not in log, log[-3000:]


@pytest.mark.django_db
def test_statement_pooling_refuses_the_transactions_the_app_is_made_of() -> None:
    """Why ``DATABASE_POOLING=statement`` is refused: spending a code is a transaction of
    several statements (``SELECT ... FOR UPDATE``, then ``UPDATE``), and statement pooling
    hands each statement to any server connection, so PgBouncer refuses the transaction."""
    with (
        _bouncer("statement") as bouncer,
        psycopg.connect(bouncer.url, prepare_threshold=None) as conn,  # not autocommit
        pytest.raises(psycopg.Error, match="transaction blocks not allowed"),
    ):
        conn.execute("SELECT id FROM passwordless_loginrequest FOR UPDATE")
