"""Load benchmark: the project's endpoints against the floors of the same stack.

gunicorn (2 sync workers, production settings, DEBUG off) on 127.0.0.1, sessions
in Redis, PostgreSQL with persistent connections, a Redis broker; wrk sends the
load. Each repetition runs every case once, floors and endpoints interleaved in a
rotating order; the table gives the median of the repetitions.

    .venv/bin/python -m bench.load                  # 3 repetitions of 5 s per case
    .venv/bin/python -m bench.load --reps 5 --seconds 10
    .venv/bin/python -m bench.load --reps 1 --seconds 1 --per-run 50 --flow-users 50  # smoke
    .venv/bin/python -m bench.load --redis-port 6391 --database my_bench  # elsewhere

The mail path is not in the request: the send endpoints queue a task on the broker.
No worker runs during those cases (the queue is emptied after each), so they
measure the web tier alone; the full-flow case runs a real worker (bin/worker)
delivering to an SMTP sink on loopback, on the same two cores, because its
verifies need the codes that worker mints.

The peers (``bench/peers/``: bare Django, django-allauth, django-sesame) run in
gunicorns of their own beside ours, on the same PostgreSQL server and Redis, and
their cases rotate with ours; django-allauth and django-sesame are the ``bench``
extra, skipped (and said so) when they are not installed.

A second table gives what a capacity plan multiplies by sign-ins per second: the CPU
seconds of the web servers' process trees (and of the worker's, in the full flow) read
from ``/proc`` before and after every run, per completed sign-in and per email, beside
allauth's, which does all of it in the request. Flows per second on two shared cores
measure one worker fighting wrk and gunicorn for them, not a tier's cost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.stack import SMTPServer

ROOT = Path(__file__).resolve().parent.parent
CSRF_SECRET = "benchCsrfSecret0123456789abcdefg"  # 32 characters, as Django's are
SECRET_KEY = "load-benchmark-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
HASH_KEY = "load-benchmark-hash-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Target:
    """Where the benchmark writes: two PostgreSQL databases it drops and creates (ours, and
    the peers' beside it), and four databases of the Redis at ``redis_port`` from
    ``redis_db`` on (cache, sessions, rate limits, broker), which it empties. The peers
    share those Redis databases under key prefixes of their own."""

    database: str = "passwordless_bench_load"
    redis_db: int = 1
    redis_port: int = 6379

    @property
    def peers_database(self) -> str:
        return f"{self.database}_peers"

    @property
    def redis_dbs(self) -> tuple[int, ...]:
        return tuple(range(self.redis_db, self.redis_db + 4))

    @property
    def broker_db(self) -> int:
        return self.redis_dbs[-1]

    def redis_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{db}"

    def redis(self, db: int) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.redis_port, db=db)

    def configure(self) -> None:
        """The environment of this process and of the servers it starts."""
        os.environ.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            DEBUG="False",
            SECRET_KEY=SECRET_KEY,
            PASSWORDLESS_HASH_KEY=HASH_KEY,
            ALLOWED_HOSTS="127.0.0.1",
            SECURE_SSL_REDIRECT="False",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{self.database}",
            CONN_MAX_AGE="600",
            # Sessions, rate limits and the broker each in a database of their own, the
            # next three, so that each can be emptied alone.
            REDIS_URL=self.redis_url(self.redis_db),
            SESSION_REDIS_URL=self.redis_url(self.redis_db + 1),
            RATELIMIT_REDIS_URL=self.redis_url(self.redis_db + 2),
            CELERY_BROKER_URL=self.redis_url(self.broker_db),
            LOG_LEVEL="INFO",
            LOG_FORMAT="json",
        )


TARGET = Target()


@dataclass
class Case:
    name: str
    floor: str | None  # the floor it is compared with; None for a floor or a peer
    goal: float  # the least ratio to the floor's requests (or flows) per second
    expect: int
    lines: Callable[[int], list[str]] | None = None  # consumable lines for one run
    #: The redirect a success answers with: a replayed or refused sign-in also answers 302,
    #: to the sign-in form, and must not count as one.
    location: str | None = None
    per_second: int = 0  # lines made for each second of a run; 0: --per-run lines
    fixed: list[str] = field(default_factory=list)  # replayed in a loop
    fresh: Callable[[], list[str]] | None = None  # the fixed lines, made anew for each run
    flow: bool = False
    peer: str | None = None  # the peer case it is compared with
    peer_goal: float = 0  # the least ratio to the peer's requests (or flows) per second
    server: str = "ours"  # or the peer server it runs against: bare, allauth, sesame
    script: str = "requests.lua"
    script_env: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, run: dict[str, Any]) -> float:
        done = run["flows"] if self.flow else run["requests"] - run["unexpected"]
        return float(done) / (float(run["duration_us"]) / 1e6)


def line(method: str, path: str, headers: dict[str, str] | None = None, body: str = "") -> str:
    pairs = " | ".join(f"{k}: {v}" for k, v in (headers or {}).items())
    return f"{method}\t{path}\t{pairs}\t{body}"


def form_headers(cookies: dict[str, str]) -> dict[str, str]:
    from django.conf import settings

    jar = {**cookies, settings.CSRF_COOKIE_NAME: CSRF_SECRET}
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
    }


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


# Setting up: the database, the users, and the requests wrk will complete.


def prepare_database(peers: list[str]) -> None:
    import psycopg

    from tests.stack import new_jwt_key

    os.environ["JWT_PRIVATE_KEY"] = new_jwt_key()

    databases = [TARGET.database] + ([TARGET.peers_database] if peers else [])
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        for database in databases:
            db.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            db.execute(f'CREATE DATABASE "{database}"')
    # bin/migrate, as a release runs it: its system checks run under bench.settings.
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["sh", str(ROOT / "bin" / "migrate"), "-v0"], cwd=ROOT, env=env, check=True)
    if peers:
        # The peers' tables: allauth's settings have every app any peer has.
        peer = "allauth" if "allauth" in peers else "bare"
        peer_migrate = {**peer_env(peer), "PYTHON": sys.executable}
        subprocess.run(
            ["sh", str(ROOT / "bin" / "migrate"), "-v0"], cwd=ROOT, env=peer_migrate, check=True
        )
    for db_number in TARGET.redis_dbs:
        TARGET.redis(db_number).flushdb()


def create_users(prefix: str, count: int) -> list[str]:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    emails = [f"{prefix}{i}@bench.test" for i in range(count)]
    user_model._default_manager.bulk_create(
        [user_model(email=email, password="!unusable") for email in emails], batch_size=2000
    )
    return emails


class Setup:
    """Drives the real views in-process (Django's test client) to make what wrk needs."""

    def __init__(self) -> None:
        from django.conf import settings
        from django.core import mail

        # The setup delivers in-process; the server under load queues on the broker.
        settings.PASSWORDLESS_MAIL_QUEUE = "sync"
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        mail.outbox = []
        self.counter = 0

    def client(self) -> Any:
        from django.test import Client

        return Client(HTTP_HOST="127.0.0.1")

    def new_users(self, kind: str, count: int) -> list[str]:
        self.counter += 1
        return create_users(f"{kind}{self.counter}-", count)

    def started_in_browser(self, email: str) -> Any:
        client = self.client()
        response = client.post("/auth/login/", {"email": email})
        assert response.status_code == 302, response.status_code
        return client

    def html_code_lines(self, count: int) -> list[str]:
        from bench.adapter import BENCH_CODE

        lines = []
        for email in self.new_users("code", count):
            client = self.started_in_browser(email)
            cookies = {k: v.value for k, v in client.cookies.items()}
            body = f"code={BENCH_CODE}&csrfmiddlewaretoken={CSRF_SECRET}"
            lines.append(line("POST", "/auth/code/", form_headers(cookies), body))
        return lines

    def json_code_lines(self, count: int) -> list[str]:
        from bench.adapter import BENCH_CODE

        lines = []
        for email in self.new_users("api", count):
            response = self.client().post(
                "/api/auth/send", {"email": email}, content_type="application/json"
            )
            assert response.status_code == 202, response.content
            body = json.dumps(
                {"request_id": response.json()["request_id"], "code": BENCH_CODE, "mode": "jwt"}
            )
            lines.append(
                line("POST", "/api/auth/verify/code", {"Content-Type": "application/json"}, body)
            )
        return lines

    def link_lines(self, count: int) -> list[str]:
        from bench.adapter import bench_token
        from passwordless.services.sessions import pending_request_id

        lines = []
        for email in self.new_users("link", count):
            client = self.started_in_browser(email)
            public_id = pending_request_id_of(client, pending_request_id)
            opened = client.get(f"/auth/link/{bench_token(public_id)}/")
            assert opened.status_code == 302, opened.status_code
            cookies = {k: v.value for k, v in client.cookies.items()}
            body = f"action=sign_in&csrfmiddlewaretoken={CSRF_SECRET}"
            lines.append(line("POST", "/auth/link/", form_headers(cookies), body))
        return lines

    def signed_in_cookies(self) -> dict[str, str]:
        from bench.adapter import BENCH_CODE

        client = self.started_in_browser(self.new_users("page", 1)[0])
        response = client.post("/auth/code/", {"code": BENCH_CODE})
        assert response.status_code == 302, response.status_code
        return {k: v.value for k, v in client.cookies.items()}

    def session_cookies(self) -> dict[str, str]:
        client = self.client()
        assert client.get("/bench/floor/session").status_code == 200
        return {k: v.value for k, v in client.cookies.items()}

    def access_token(self) -> str:
        from bench.adapter import BENCH_CODE

        email = self.new_users("jwt", 1)[0]
        json_type = "application/json"
        sent = self.client().post("/api/auth/send", {"email": email}, content_type=json_type)
        body = {"request_id": sent.json()["request_id"], "code": BENCH_CODE, "mode": "jwt"}
        verified = self.client().post("/api/auth/verify/code", body, content_type=json_type)
        assert verified.status_code == 200, verified.content
        return str(verified.json()["access"])


def pending_request_id_of(client: Any, pending_request_id: Callable[[Any], str | None]) -> str:
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = client.session
    public_id = pending_request_id(request)
    assert public_id, "no pending request in the session"
    return public_id


# Running: gunicorn, wrk, and a worker for the flow.


@dataclass(frozen=True)
class Server:
    """A gunicorn under load: where wrk sends, and the master whose process tree (it and
    its workers) is charged with the CPU of every run against it."""

    url: str
    pid: int


def tree_cpu_seconds(root: int) -> float:
    """User and system CPU seconds of ``root`` and all its descendants, from ``/proc``.

    Each process's ``cutime`` and ``cstime`` are counted too: a child that exits during a
    run (a gunicorn worker or a Celery pool process replaced) leaves its time there, in
    its parent's, and without them the difference of two readings would lose it.
    """
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        # After the command name (in parentheses, which may hold spaces): field 3 on.
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # field 4, the parent
        ticks[pid] = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += ticks.get(pid, 0)
        pending += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, timeout: float = 15) -> None:
    """Wait until ``pid``'s tree spends at most one clock tick in half a second (or
    ``timeout``): on loaded cores a worker may still be starting (importing, forking its
    pool) after its usual 4 s, and the run would be charged with its start-up."""
    tick = 1 / os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout
    last = tree_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_cpu_seconds(pid)
        if now - last <= tick * 1.5:
            return
        last = now


@dataclass(frozen=True)
class Meter:
    """What a run cost outside wrk, read just before and just after it: the CPU seconds of
    the web server's tree and, for the full flow, of the worker's, and the messages that
    reached the SMTP sink meanwhile (the sink runs in this process, charged to neither)."""

    web: int
    worker: int | None = None
    smtp: SMTPServer | None = None

    def read(self) -> dict[str, float]:
        reading = {"web_cpu_s": tree_cpu_seconds(self.web)}
        if self.worker is not None:
            reading["worker_cpu_s"] = tree_cpu_seconds(self.worker)
        if self.smtp is not None:
            reading["messages"] = len(self.smtp.messages)
        return reading

    def around(self, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``run()``'s result with what it cost added (``web_cpu_s``, ...)."""
        before = self.read()
        result = run()
        after = self.read()
        return {**result, **{key: after[key] - before[key] for key in before}}


@contextmanager
def server(log_dir: Path, smtp_port: int) -> Iterator[Server]:
    from django.conf import settings

    from tests.stack import free_port, gunicorn

    port = free_port()
    os.environ.update(
        SITE_URL=f"http://127.0.0.1:{port}", EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}"
    )
    # This process mints access tokens for the server: the same issuer and audience.
    settings.PASSWORDLESS_SITE_URL = os.environ["SITE_URL"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with gunicorn(env, log_dir, port, workers=2) as process:
        yield Server(f"http://127.0.0.1:{port}", process.pid)


@contextmanager
def worker(log_dir: Path) -> Iterator[int]:
    """bin/worker as deployed (prefork, one process per core); its main process's id."""
    from tests.stack import Process

    env = {**os.environ, "PYTHON": sys.executable, "LOG_LEVEL": "WARNING"}
    process = Process("worker", ["sh", str(ROOT / "bin" / "worker")], env, log_dir)
    try:
        time.sleep(4)  # ready: connected to the broker, children forked
        process.assert_running()
        wait_until_idle(process.pid)
        yield process.pid
    finally:
        process.stop()


def run_wrk(base_url: str, script: str, env: dict[str, str], seconds: int, conns: int) -> Any:
    command = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "wrk" / script),
        base_url,
    ]
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    for output_line in result.stdout.splitlines():
        if output_line.startswith("RESULT "):
            return json.loads(output_line[len("RESULT ") :])
    raise RuntimeError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")


def empty_broker() -> None:
    TARGET.redis(TARGET.broker_db).delete("celery")


# The peers: their servers, what wrk needs from them, their cases.

BARE_LOGIN = "bare Django: login()"
BARE_PAGE = "bare Django: signed-in home page"
BARE_BEARER = "bare Django: bearer JWT view loading the user"
ALLAUTH_SEND = "allauth: request code"
ALLAUTH_FLOW = "allauth: request+confirm, per request"
SESAME_LINK = "sesame: one-time link"
#: The path each peer server answers once it is up.
PEER_READY = {"bare": "/bare/me", "allauth": "/accounts/login/code/", "sesame": "/sesame/login"}
#: The accounts that request allauth's codes, each from a client address of its own.
ALLAUTH_USERS = 2000
ALLAUTH_PREFIX = "allauth-"


def peers_to_run(args: argparse.Namespace) -> list[str]:
    from bench import peers

    if not args.peers:
        return []
    return [peer for peer in peers.PEERS if peers.installed(peer)]


def peer_env(peer: str) -> dict[str, str]:
    """A peer's environment: ours (the same Redis, keys, cookies), its settings and database."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.peers.settings",
        BENCH_PEER=peer,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{TARGET.peers_database}",
    )
    return env


@contextmanager
def peer_server(peer: str, log_dir: Path) -> Iterator[Server]:
    """The peer in gunicorn as ours runs (bin/web, config/gunicorn.py, 2 sync workers)."""
    from tests.stack import free_port, gunicorn

    port = free_port()
    ready = PEER_READY[peer]
    with gunicorn(peer_env(peer), log_dir, port, workers=2, ready_path=ready) as process:
        yield Server(f"http://127.0.0.1:{port}", process.pid)


def peer_prepare(peer: str, *args: str) -> Any:
    """``bench.peers.prepare`` under the peer's settings; what it made."""
    env = {**peer_env(peer), "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "bench.peers.prepare", *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode == 0:
        for output_line in result.stdout.splitlines():
            if output_line.startswith("RESULT "):
                return json.loads(output_line[len("RESULT ") :])
    raise RuntimeError(f"bench.peers.prepare {' '.join(args)} failed:\n{result.stderr}")


def client_address(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def peer_token(user_pk: int) -> str:
    """An access token for the bare bearer view: HS256, living 5 minutes as ours do."""
    import jwt

    from bench.peers import JWT_AUDIENCE, JWT_ISSUER, JWT_KEY

    now = int(time.time())
    claims = {"sub": str(user_pk), "iss": JWT_ISSUER, "aud": JWT_AUDIENCE}
    return jwt.encode({**claims, "iat": now, "exp": now + 300}, JWT_KEY, algorithm="HS256")


def build_peer_cases(peers: list[str]) -> list[Case]:
    from django.conf import settings

    from bench.peers import CODE

    cases = []
    if "bare" in peers:
        bare = peer_prepare("bare", "signed-in")

        def fresh_bearer() -> list[str]:  # a token for each run, as ours
            bearer = {"Authorization": f"Bearer {peer_token(bare['user'])}"}
            return [line("GET", "/bare/me", bearer)]

        cases += [
            Case(BARE_LOGIN, None, 0, 200, server="bare", fixed=[line("POST", "/bare/login")]),
            Case(
                BARE_PAGE,
                None,
                0,
                200,
                server="bare",
                fixed=[line("GET", "/", cookie_header(bare["cookies"]))],
            ),
            Case(BARE_BEARER, None, 0, 200, server="bare", fresh=fresh_bearer),
        ]
    if "allauth" in peers:
        peer_prepare("allauth", "users", ALLAUTH_PREFIX, str(ALLAUTH_USERS))
        request_code = [
            line(
                "POST",
                "/accounts/login/code/",
                {**form_headers({}), "X-Forwarded-For": client_address(i)},
                f"email={ALLAUTH_PREFIX}{i}%40bench.test&csrfmiddlewaretoken={CSRF_SECRET}",
            )
            for i in range(ALLAUTH_USERS)
        ]
        flow_env = {
            "CODE": CODE,
            "PREFIX": ALLAUTH_PREFIX,
            "USERS": str(ALLAUTH_USERS),
            "CSRF_COOKIE": f"{settings.CSRF_COOKIE_NAME}={CSRF_SECRET}",
            "CSRF_TOKEN": CSRF_SECRET,
            "SESSION_COOKIE": settings.SESSION_COOKIE_NAME,
            "REQUEST_PATH": "/accounts/login/code/",
            "CONFIRM_PATH": "/accounts/login/code/confirm/",
            "DONE_PATH": "/signed-in",
        }
        cases += [
            Case(ALLAUTH_SEND, None, 0, 302, server="allauth", fixed=request_code),
            Case(
                ALLAUTH_FLOW,
                None,
                0,
                302,
                server="allauth",
                script="allauth_flow.lua",
                script_env=flow_env,
            ),
        ]
    if "sesame" in peers:
        made = [0]

        def sesame_lines(count: int) -> list[str]:  # new accounts, a link each, for each run
            made[0] += 1
            links = peer_prepare("sesame", "links", f"sesame{made[0]}-", str(count))
            return [line("GET", link) for link in links]

        # As many links as a run could consume: sesame's link is about a bare login().
        cases.append(
            Case(SESAME_LINK, None, 0, 302, server="sesame", lines=sesame_lines, per_second=1000)
        )
    return cases


# The cases.

#: Our cases that the CPU table reads.
SEND_HTML = "send (HTML form)"
SEND_JSON = "send (JSON)"
VERIFY_HTML = "verify code (HTML)"
VERIFY_JSON = "verify code (JSON)"
FULL_FLOW = "full flow, flows/s (JSON)"


def build_cases(setup: Setup, per_run: int, peers: list[str]) -> list[Case]:
    """The floors, the peers, then our endpoints: the order of the table."""
    from django.contrib.auth import get_user_model

    from bench.views import BENCH_USER_EMAIL

    get_user_model()._default_manager.create(email=BENCH_USER_EMAIL, password="!unusable")
    signed_in = setup.signed_in_cookies()
    send_emails = create_users("send", 2000)
    json_type = {"Content-Type": "application/json"}
    floors = [
        Case("floor: bare JSON view", None, 0, 200, fixed=[line("GET", "/bench/floor/json")]),
        Case(
            "floor: Redis session read+write",
            None,
            0,
            200,
            fixed=[line("GET", "/bench/floor/session", cookie_header(setup.session_cookies()))],
        ),
        Case(  # against Django's own middleware: what ours costs
            "floor: login()",
            None,
            0,
            200,
            fixed=[line("POST", "/bench/floor/login")],
            peer=BARE_LOGIN,
        ),
        Case(
            "floor: login_required view",
            None,
            0,
            200,
            fixed=[line("GET", "/bench/floor/private", cookie_header(signed_in))],
        ),
        Case(
            "floor: view loading the user", None, 0, 200, fixed=[line("GET", "/bench/floor/user")]
        ),
    ]
    endpoints = [
        Case(
            SEND_HTML,
            "floor: Redis session read+write",
            0.35,
            302,
            fixed=[
                line(
                    "POST",
                    "/auth/login/",
                    form_headers({}),
                    f"email={e}&csrfmiddlewaretoken={CSRF_SECRET}",
                )
                for e in send_emails
            ],
            peer=ALLAUTH_SEND,
            peer_goal=2.0,
        ),
        Case(
            SEND_JSON,
            "floor: Redis session read+write",
            0.35,
            202,
            fixed=[
                line("POST", "/api/auth/send", json_type, json.dumps({"email": e}))
                for e in send_emails
            ],
            peer=ALLAUTH_SEND,
            peer_goal=2.0,
        ),
        Case(
            VERIFY_HTML,
            "floor: login()",
            0.60,
            302,
            lines=setup.html_code_lines,
            location="/",
            peer=ALLAUTH_FLOW,
            peer_goal=1.0,
        ),
        Case(
            VERIFY_JSON,
            "floor: login()",
            0.60,
            200,
            lines=setup.json_code_lines,
            peer=ALLAUTH_FLOW,
            peer_goal=1.0,
        ),
        Case(  # it runs the worker: the CPU table reads its cost per email from it
            FULL_FLOW,
            "floor: login()",
            0,  # issue 16 replaced its goal by the CPU table's figures; shown for reference
            200,
            flow=True,
        ),
        Case(
            "confirm link (POST)",
            "floor: login()",
            0,  # issue 16 judges it against its peer; the floor is shown for reference
            302,
            lines=setup.link_lines,
            location="/",
            peer=SESAME_LINK,
            peer_goal=0.85,
        ),
        Case(
            "signed-in home page",
            "floor: login_required view",
            0,  # issue 16 judges it against its peer; the floor is shown for reference
            200,
            fixed=[line("GET", "/", cookie_header(signed_in))],
            peer=BARE_PAGE,
            peer_goal=0.90,
        ),
        Case(  # beyond the issue's table: it reads and lists the devices, so no goal
            "sessions page",
            "floor: login_required view",
            0,
            200,
            fixed=[line("GET", "/auth/sessions/", cookie_header(signed_in))],
        ),
        Case(
            "GET /api/auth/me (Bearer JWT)",
            "floor: view loading the user",
            0,  # issue 16 judges it against its peer; the floor is shown for reference
            200,
            # Fresh for each run: access tokens live 5 minutes.
            fresh=lambda: [
                line("GET", "/api/auth/me", {"Authorization": f"Bearer {setup.access_token()}"})
            ],
            peer=BARE_BEARER,
            peer_goal=0.90,
        ),
    ]
    return floors + build_peer_cases(peers) + endpoints


def measure(args: argparse.Namespace, peers: list[str]) -> tuple[list[Case], list[float]]:
    """Every case's runs, and allauth's CPU seconds per login-code email (one figure per
    repetition; none without allauth)."""
    prepare_database(peers)
    import django

    django.setup()
    logging.disable(logging.WARNING)  # this process's own lines; the server logs as usual
    from tests.stack import SMTPServer

    setup = Setup()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    with ExitStack() as stack:
        smtp = stack.enter_context(SMTPServer())
        servers = {"ours": stack.enter_context(server(log_dir, smtp.port))}
        for peer in peers:  # each started once, beside ours, for every repetition
            servers[peer] = stack.enter_context(peer_server(peer, log_dir))
        cases = build_cases(setup, args.per_run, peers)
        create_users("flow", args.flow_users)
        allauth_mail: list[float] = []
        for rep in range(args.reps):
            shift = rep % len(cases)
            for case in cases[shift:] + cases[:shift]:
                run = run_case(case, setup, servers[case.server], log_dir, args, smtp)
                case.runs.append(run)
                print(f"  rep {rep + 1} {progress(case, run)}", file=sys.stderr, flush=True)
            if "allauth" in peers:
                allauth_mail.append(allauth_mail_cpu(args.allauth_mails))
    shutil.rmtree(log_dir, ignore_errors=True)
    return cases, allauth_mail


def progress(case: Case, run: dict[str, Any]) -> str:
    """One run, as it ends: its rate, latencies, cost and failures."""
    text = (
        f"{case.name:<45} {case.rate(run):8.1f}/s"
        f"  p50 {run['p50_us'] / 1000:6.2f} ms  p99 {run['p99_us'] / 1000:6.2f} ms"
        f"  web CPU {run['web_cpu_s']:5.2f} s"
    )
    if "worker_cpu_s" in run:
        text += f"  worker CPU {run['worker_cpu_s']:5.2f} s, {run['messages']:.0f} emails"
    text += f"  unexpected {run['unexpected']}"
    return text + (f" (first: {run['sample']})" if run["unexpected"] else "")


def allauth_mail_cpu(count: int) -> float:
    """allauth's CPU seconds per login-code email, sent ``count`` times in a process of
    its own under its settings (``bench.peers.prepare mail-cpu``): what its request pays
    for the mail, set beside what our worker pays per email."""
    seconds = float(peer_prepare("allauth", "mail-cpu", str(count)))
    print(f"  allauth: login-code email {seconds * 1000:.3f} ms CPU", file=sys.stderr)
    return seconds


def run_case(
    case: Case,
    setup: Setup,
    target: Server,
    log_dir: Path,
    args: argparse.Namespace,
    smtp: SMTPServer,
) -> Any:
    """One wrk run of ``case``, with what it cost the server (``Meter``)."""
    from bench.adapter import BENCH_CODE

    if case.flow and case.server == "ours":
        empty_broker()
        flow_env = {
            "CODE": BENCH_CODE,
            "FLOW_DEPTH": str(args.flow_depth),
            "FIRST_USER": "0",
            "USERS": str(args.flow_users),
        }
        with worker(log_dir) as worker_pid:
            return Meter(target.pid, worker_pid, smtp).around(
                lambda: run_wrk(target.url, "flow.lua", flow_env, args.seconds, args.connections)
            )
    meter = Meter(target.pid)
    if case.script != "requests.lua":
        return meter.around(
            lambda: run_wrk(
                target.url, case.script, case.script_env, args.seconds, args.connections
            )
        )
    env = {"EXPECT": str(case.expect), "REPEAT": "1"}
    if case.location is not None:
        env["EXPECT_LOCATION"] = case.location
    requests_file = log_dir / "requests.tsv"
    if case.fresh is not None:
        case.fixed = case.fresh()
    if case.lines is not None:
        count = case.per_second * args.seconds if case.per_second else args.per_run
        requests_file.write_text("\n".join(case.lines(count)) + "\n")
        env["REPEAT"] = "0"
    else:
        requests_file.write_text("\n".join(case.fixed) + "\n")
    env["REQUESTS"] = str(requests_file)
    run = meter.around(
        lambda: run_wrk(target.url, "requests.lua", env, args.seconds, args.connections)
    )
    if case.expect == 202:
        empty_broker()
    if run["exhausted"]:
        print(f"  {case.name}: ran out of prepared requests; raise --per-run", file=sys.stderr)
    return run


# Reporting.


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    cpu = next(
        (
            row.split(":", 1)[1].strip()
            for row in Path("/proc/cpuinfo").read_text().splitlines()
            if row.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def skipped_line(skipped: list[str]) -> str:
    return (
        f"Peers skipped, not installed: {', '.join(skipped)} "
        '(pip install -c constraints.txt -e ".[bench]")'
    )


def compare(rate: float, other: Case | None, goal: float) -> tuple[str, str, bool]:
    """The ratio to ``other``'s median rate, the goal, and whether it is met."""
    if other is None:
        return "", "", True
    goal_cell = f"≥ {goal:.0%}" if goal else "—"
    other_rate = median([other.rate(run) for run in other.runs])
    if not other_rate > 0:  # it served nothing (its row says why): no ratio, not met
        return "—", goal_cell, False
    ratio = rate / other_rate
    return f"{ratio:.0%}", goal_cell, ratio >= goal


def report(cases: list[Case], args: argparse.Namespace, skipped: list[str]) -> bool:
    """Print the table; True if every goal was met (a goal against a skipped peer is not
    judged)."""
    by_name = {case.name: case for case in cases}
    print(f"Machine: {machine()}")
    print(
        f"gunicorn 2 sync workers, wrk -t1 -c{args.connections}, {args.seconds:g} s per run, "
        f"median of {args.reps} interleaved repetitions"
    )
    if skipped:
        print(skipped_line(skipped))
    header = "| case | req/s | p50 ms | p99 ms | p99/p50 | floor | ratio | goal "
    print(header + "| peer | ratio | goal | met |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---|")
    all_met = True
    for case in cases:
        rate = median([case.rate(run) for run in case.runs])
        p50 = median([run["p50_us"] / 1000 for run in case.runs])
        p99 = median([run["p99_us"] / 1000 for run in case.runs])
        spread = p99 / p50 if p50 else float("nan")
        unexpected = sum(run["unexpected"] for run in case.runs)
        floor = by_name[case.floor] if case.floor else None
        floor_ratio, floor_goal, floor_met = compare(rate, floor, case.goal)
        peer_name = case.peer or ""
        peer = by_name.get(peer_name)
        peer_ratio, peer_goal, peer_met = compare(rate, peer, case.peer_goal)
        if case.peer and peer is None:
            peer_name += " (not installed)" if args.peers else " (--no-peers)"
        met = spread <= 3 and floor_met and peer_met and unexpected == 0
        all_met = all_met and met
        floor_name = (case.floor or "").removeprefix("floor: ")
        verdict = "yes" if met else "NO" + (f" ({unexpected} failed)" if unexpected else "")
        print(
            f"| {case.name} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {spread:.1f} | {floor_name} "
            f"| {floor_ratio} | {floor_goal} | {peer_name} | {peer_ratio} | {peer_goal} "
            f"| {verdict} |"
        )
    return all_met


def web_ms_per(case: Case, counted: str) -> float:
    """The median over ``case``'s runs of its server's CPU milliseconds per ``counted``
    (``requests``, or ``flows``: completed sign-ins)."""
    return median([run["web_cpu_s"] * 1000 / run[counted] for run in case.runs if run[counted]])


def worker_ms_per_email(case: Case) -> float:
    """The median over the full flow's runs of the worker's CPU milliseconds per message
    that reached the SMTP sink during the run."""
    runs = [run for run in case.runs if run["messages"]]
    return median([run["worker_cpu_s"] * 1000 / run["messages"] for run in runs])


def report_cpu(cases: list[Case], allauth_mail: list[float], args: argparse.Namespace) -> None:
    """Print the CPU per sign-in, ours against allauth's, for a capacity plan: CPU per
    sign-in times sign-ins per second is the cores a tier needs, where flows per second
    on two shared cores is bounded by one worker competing with wrk and gunicorn.

    Ours is the send case's CPU per request plus the verify case's (each completed
    sign-in is one of each), and the worker's CPU per email. allauth's is its
    request+confirm flow's CPU per completed flow, its mail included (it builds the
    message in the request); its in-request mail alone is set beside our worker's."""
    by_name = {case.name: case for case in cases}
    web = {
        surface: web_ms_per(by_name[send], "requests") + web_ms_per(by_name[verify], "requests")
        for surface, send, verify in (
            ("JSON", SEND_JSON, VERIFY_JSON),
            ("HTML", SEND_HTML, VERIFY_HTML),
        )
    }
    mail = worker_ms_per_email(by_name[FULL_FLOW])
    allauth = by_name.get(ALLAUTH_FLOW)
    theirs_web = web_ms_per(allauth, "flows") if allauth else None
    theirs_mail = median([seconds * 1000 for seconds in allauth_mail]) if allauth else None
    missing = "not installed" if args.peers else "--no-peers"
    rows = [
        ("web CPU per sign-in, JSON (send + verify code)", web["JSON"], theirs_web),
        ("web CPU per sign-in, HTML (send + verify code)", web["HTML"], theirs_web),
        ("worker CPU per email", mail, theirs_mail),
        ("total per sign-in, JSON (web + worker)", web["JSON"] + mail, theirs_web),
        ("total per sign-in, HTML (web + worker)", web["HTML"] + mail, theirs_web),
    ]
    print("CPU per sign-in")
    print(
        "user + system CPU of each server's process tree (gunicorn and its workers, "
        f"bin/worker and its pool), median of {args.reps} repetitions; ratio ours / allauth, "
        "lower is better"
    )
    print(
        "allauth does it all in the request: its web figure is per completed request+confirm "
        f"flow, mail included; beside our worker, its login-code email alone "
        f"({args.allauth_mails} sent in-process)"
    )
    print("| figure | ours ms | allauth ms | ratio |")
    print("|---|---:|---:|---:|")
    for figure, ours, theirs in rows:
        if theirs is None:
            print(f"| {figure} | {ours:.2f} | {missing} |  |")
        else:
            ratio = f"{ours / theirs:.2f}x" if theirs > 0 else ""  # not NaN, not 0
            print(f"| {figure} | {ours:.2f} | {theirs:.2f} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--per-run", type=int, default=1500, help="codes and links prepared for each run"
    )
    parser.add_argument("--flow-users", type=int, default=5000)
    parser.add_argument("--flow-depth", type=int, default=100)
    parser.add_argument(
        "--allauth-mails",
        type=int,
        default=500,
        help="allauth login-code emails timed in-process for each repetition",
    )
    parser.add_argument("--database", default=Target.database)
    parser.add_argument(
        "--redis-db", type=int, default=Target.redis_db, help="the first of four Redis databases"
    )
    parser.add_argument("--redis-port", type=int, default=Target.redis_port)
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the peers beside ours (bench/peers/; the bench extra for allauth and sesame)",
    )
    args = parser.parse_args()
    global TARGET
    TARGET = Target(args.database, args.redis_db, args.redis_port)
    TARGET.configure()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    from bench import peers

    skipped = peers.missing() if args.peers else []
    if skipped:
        print(skipped_line(skipped), file=sys.stderr)
    cases, allauth_mail = measure(args, peers_to_run(args))
    report(cases, args, skipped)  # goals are judged on full runs: measured is success
    print()
    report_cpu(cases, allauth_mail, args)


if __name__ == "__main__":
    main()
