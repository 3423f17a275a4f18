"""At scale: verify latency against table size, the purge, and one worker's mail throughput.

On this machine's PostgreSQL (a database of its own, ``passwordless_bench_scale``,
dropped, created and migrated at each run) and Redis (database 0
for the cache, the sessions, the rate limits and the Celery broker, each under
its own key prefix: the one database that no other benchmark or test flushes):

1. Verify latency with ``--baseline`` (1,000) and with ``--rows`` (1,000,000)
   outstanding requests in the table, each with its hashed secret, written with
   set-based SQL. Requests started by the real start service, whose emails the
   real delivery service mints (to memory, in this process), are then verified
   with the code read from the email, alternately through the service
   (``verify_code``) and as the HTTP POST of the code page through Django's
   test client (every middleware, the session in Redis, the sign-in). Every
   statement of one verify of each kind is EXPLAINed with sequential and plain
   index scans disabled: a full scan that remains means no index serves it.
2. The purge task (``passwordless.tasks.purge``: ``services.purge``, in batches)
   of ``--rows`` requests expired beyond the retention, each with a secret and
   an audit event: its total time and each batch's transaction (the span of its
   row locks), while another thread signs in again and again.
3. One real Celery worker (``bin/worker`` as production runs it: the prefork
   pool, one process per CPU) sending ``--mails`` sign-in emails, queued
   beforehand by the start service, to an aiosmtpd server on 127.0.0.1:
   messages per second from the first delivered to the last.

    .venv/bin/python -m bench.scale                     # about 9 minutes on 2 cores
    .venv/bin/python -m bench.scale --rows 5000 --mails 20 --verifies 20

Progress goes to stderr, the table to stdout. Goals are judged by people on a
full run: the exit status is 0 whenever the figures could be measured.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import django
import psycopg
import redis

from tests.stack import Process, SMTPServer, new_jwt_key, project_env

ROOT = Path(__file__).resolve().parent.parent

GOAL_RATIO = 1.2
#: The purge task's soft time limit (``passwordless.tasks.purge``): it must finish within it.
GOAL_PURGE_S = 600.0
#: Proposed: no purge transaction holds its row locks longer than this.
GOAL_LOCK_S = 1.0
#: Proposed: no sign-in during the purge takes longer than this.
GOAL_SIGN_IN_S = 1.0
#: Proposed: one worker sends at least this many messages per second.
GOAL_MAILS_PER_S = 20.0

CODE_RE = re.compile(r"^\s+(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Target:
    """Where the benchmark writes: its PostgreSQL database and its Redis database."""

    database: str = "passwordless_bench_scale"
    redis_db: int = 0
    redis_port: int = 6379

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{self.redis_db}"

    def redis(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.redis_port, db=self.redis_db)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            f"postgresql://postgres@127.0.0.1:5432/{self.database}", autocommit=True
        )

    def flush_redis(self) -> None:
        self.redis().flushdb()

    def settings(self, var_dir: str) -> dict[str, str]:
        """The environment of this process and of the worker: production-like (DEBUG off,
        Redis, persistent connections), the per-IP limits out of the way of one client."""
        return {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.database}",
            "REDIS_URL": self.redis_url,
            "SESSION_REDIS_URL": self.redis_url,
            "RATELIMIT_REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "DEBUG": "False",
            "SECRET_KEY": "bench-scale-" + "k" * 60,
            "PASSWORDLESS_HASH_KEY": "bench-scale-hash-" + "h" * 60,
            "JWT_PRIVATE_KEY": new_jwt_key(),
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "SITE_URL": "https://login.bench.example",
            "SECURE_COOKIES": "False",
            "SECURE_SSL_REDIRECT": "False",
            "SECURE_HSTS_SECONDS": "0",
            "SEND_RATES_PER_IP": "1000000/h",
            "VERIFY_RATES_PER_IP": "1000000/5m",
            "CONN_MAX_AGE": "60",
            "VAR_DIR": var_dir,
        }


TARGET = Target()
SETTINGS: dict[str, str] = {}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(name: str) -> Iterator[None]:
    began = time.perf_counter()
    log(f"{name}…")
    yield
    log(f"{name}: {time.perf_counter() - began:.1f} s")


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return float(statistics.quantiles(values, n=100, method="inclusive")[q - 1])


# The database, filled with set-based SQL.

#: Outstanding: pending, a code sent, unexpired for 15 to 20 minutes after the fill.
LIVE_REQUESTS = """
INSERT INTO passwordless_loginrequest (
    id, public_id, email, status, delivery, attempts, sends, created_at, expires_at, sent_at,
    requester_ip, user_agent, next_url, binding_hash, match_number, code_challenge,
    approver_user_agent)
SELECT i, md5(i::text || random()::text), 'live' || i || '@bench.example', 'pending', 'sent',
    0, 1, t, t + interval '20 minutes', t, '192.0.2.1', 'Mozilla/5.0 (bench)', '',
    md5(random()::text) || md5(random()::text), 12, '', ''
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
    LATERAL (SELECT now() - random() * interval '5 minutes' AS t) AS created
"""

#: Expired more than ``REQUEST_RETENTION`` (7 days) ago, oldest first: their ids are the
#: lowest, as old rows' ids are. Their statuses vary as they would.
EXPIRED_REQUESTS = """
INSERT INTO passwordless_loginrequest (
    id, public_id, email, status, delivery, attempts, sends, created_at, expires_at, sent_at,
    completed_at, requester_ip, user_agent, next_url, binding_hash, match_number,
    code_challenge, approver_user_agent)
SELECT i, md5(i::text || random()::text), 'old' || i || '@bench.example',
    (ARRAY['signed_in', 'pending', 'ended', 'locked'])[1 + i %% 4], 'sent', 0, 1,
    t, t + interval '10 minutes', t, CASE WHEN i %% 4 = 1 THEN NULL ELSE t END,
    '192.0.2.1', 'Mozilla/5.0 (bench)', '', md5(random()::text) || md5(random()::text),
    12, '', ''
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
    LATERAL (SELECT now() - interval '8 days' - (%(last_id)s::bigint - i) * interval '50 ms'
        AS t) AS created
"""

SECRETS = """
INSERT INTO passwordless_loginsecret (
    request_id, code_hash, token_hash, created_at, settled_at)
SELECT id, md5(random()::text) || md5(random()::text), md5(id::text) || md5(random()::text),
    created_at, created_at
FROM passwordless_loginrequest WHERE id BETWEEN %(first)s AND %(last)s
"""

#: Audit rows are kept longer (90 days) than requests: the purge sets their link to NULL.
EVENTS = """
INSERT INTO passwordless_authevent (
    kind, reason, method, masked_email, ip, user_agent, details, created_at, login_request_id,
    count)
SELECT 'requested', '', '', 'o***@bench.example', '192.0.2.1', 'Mozilla/5.0 (bench)', '{}',
    created_at, id, 1
FROM passwordless_loginrequest WHERE id BETWEEN %(first)s AND %(last)s
"""

TABLES = (
    "passwordless_loginrequest",
    "passwordless_loginsecret",
    "passwordless_authevent",
    "passwordless_failurebudget",
    "passwordless_usersession",
    "passwordless_refreshtoken",
    "passwordless_tokenfamily",
    "accounts_user",
)


def prepare_database() -> None:
    """Create the database anew and migrate it: one left by an earlier run may hold a
    migration as it was then (an unreleased one changes until it ships)."""
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        name = TARGET.database
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    empty_database()


def empty_database() -> None:
    with TARGET.connect() as db:
        db.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


def fill(statement: str, first: int, last: int, jobs: int, **params: int) -> None:
    """Run ``statement`` over the ids ``first`` to ``last``, split among ``jobs`` connections."""
    if last < first:
        return
    step = -(-(last - first + 1) // jobs)
    parts = [(a, min(a + step - 1, last)) for a in range(first, last + 1, step)]

    def run(part: tuple[int, int]) -> None:
        with TARGET.connect() as db:
            db.execute(statement, {"first": part[0], "last": part[1], **params})

    with ThreadPoolExecutor(len(parts)) as pool:
        list(pool.map(run, parts))


def analyze() -> None:
    with TARGET.connect() as db:
        db.execute(
            "ANALYZE passwordless_loginrequest, passwordless_loginsecret, passwordless_authevent,"
            " accounts_user, passwordless_failurebudget, passwordless_usersession"
        )


def reserve_ids(last: int) -> None:
    """Requests made through the services get ids above every id the fills write."""
    with TARGET.connect() as db:
        db.execute(
            "SELECT setval(pg_get_serial_sequence('passwordless_loginrequest', 'id'), %s)",
            (last,),
        )


def outstanding() -> int:
    with TARGET.connect() as db:
        row = db.execute(
            "SELECT count(*) FROM passwordless_loginrequest "
            "WHERE status = 'pending' AND expires_at > now()"
        ).fetchone()
    return int(row[0]) if row else 0


# Sign-ins: started by the real service, their email minted by the real delivery service.


def read_code(pk: int) -> str:
    """Deliver the request's email (in this process, to memory) and read its code."""
    from django.core import mail

    from passwordless.services import deliver_login_email

    state = deliver_login_email(pk)
    assert state == "sent", state
    message = mail.outbox.pop()
    match = CODE_RE.search(str(message.body))
    assert match, message.body
    return match.group(1)


def start_by_service(email: str) -> tuple[str, str]:
    from passwordless.services import start_sign_in

    login_request = start_sign_in(email).login_request
    return login_request.public_id, read_code(login_request.pk)


def verify_by_service(public_id: str, code: str) -> None:
    from passwordless.services import verify_code

    login_request, _ = verify_code(public_id, code)
    assert login_request.status == "signed_in", login_request.status


@dataclass
class Browser:
    """A browser on the code page, and the code of its email."""

    client: Any
    code: str


def start_by_http(email: str) -> Browser:
    from django.test import Client

    from passwordless.models import LoginRequest
    from passwordless.services.sessions import SESSION_REQUEST_KEY

    client = Client()
    response = client.post("/auth/login/", {"email": email})
    assert response.status_code == 302, response.status_code
    public_id = client.session[SESSION_REQUEST_KEY]
    return Browser(client, read_code(LoginRequest.objects.get(public_id=public_id).pk))


def verify_by_http(browser: Browser) -> None:
    response = browser.client.post("/auth/code/", {"code": browser.code})
    assert response.status_code == 302, response.status_code
    assert not response["Location"].startswith("/auth/"), response["Location"]


@dataclass
class Latency:
    service: list[float] = field(default_factory=list)
    http: list[float] = field(default_factory=list)


def measure_verify(size: int, n: int, warmup: int) -> Latency:
    """Time ``n`` verifies of each kind, alternating, after ``warmup`` of each."""
    total = n + warmup
    by_service = [start_by_service(f"svc-{size}-{i}@bench.example") for i in range(total)]
    by_http = [start_by_http(f"web-{size}-{i}@bench.example") for i in range(total)]
    latency = Latency()
    for i in range(total):
        began = time.perf_counter()
        verify_by_service(*by_service[i])
        service = time.perf_counter() - began
        began = time.perf_counter()
        verify_by_http(by_http[i])
        http = time.perf_counter() - began
        if i >= warmup:
            latency.service.append(service * 1000)
            latency.http.append(http * 1000)
    return latency


# Query plans.


@dataclass
class Statement:
    sql: str
    params: Any


@contextmanager
def capture(last: str | None = None) -> Iterator[list[Statement]]:
    """The statements this thread runs, up to the first that starts with ``last`` if given."""
    from django.db import connection

    statements: list[Statement] = []
    done = False

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any) -> Any:
        nonlocal done
        if not done and not many:
            statements.append(Statement(sql, params))
            done = last is not None and sql.startswith(last)
        return execute(sql, params, many, ctx)

    with connection.execute_wrapper(wrapper):
        yield statements


@dataclass
class PlanCheck:
    statements: int = 0
    full_scans: list[tuple[str, str]] = field(default_factory=list)  # (table, plans)
    plans: list[str] = field(default_factory=list)

    def summary(self) -> str:
        tables = sorted({table for table, _ in self.full_scans})
        return f"{len(self.full_scans)} of {self.statements}" + (
            f" ({', '.join(tables)})" if tables else ""
        )


def explain(statements: list[Statement], check: PlanCheck) -> None:
    """EXPLAIN each statement (nothing runs, no row is written) as the planner chooses, and
    again with sequential and plain index scans disabled: a bitmap scan needs an index
    condition, so a sequential or whole-index scan that remains means that no index
    matches the statement's conditions on that table."""
    from django.db import connection, transaction

    def plan_of(sql: str, params: Any, *settings: str, json: bool = False) -> Any:
        with transaction.atomic(), connection.cursor() as cursor:
            for setting in ("jit", *settings):
                cursor.execute(f"SET LOCAL {setting} = off")
            cursor.execute(f"EXPLAIN {'(FORMAT JSON) ' if json else ''}{sql}", params)
            rows = cursor.fetchall()
        return rows[0][0][0]["Plan"] if json else "\n".join(row[0] for row in rows)

    def scanned(node: dict[str, Any]) -> Iterator[str]:
        if node["Node Type"] in ("Seq Scan", "Index Scan", "Index Only Scan"):
            yield node["Relation Name"]
        for child in node.get("Plans", []):
            yield from scanned(child)

    disabled = ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan")
    for statement in statements:
        if not statement.sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
            continue
        check.statements += 1
        sql, params = statement.sql, statement.params
        shown = repr(params) if len(repr(params)) < 200 else repr(params)[:200] + "…"
        text = f"{sql}\n  params: {shown}\n{plan_of(sql, params)}"
        check.plans.append(text)
        tables = set(scanned(plan_of(sql, params, *disabled, json=True)))
        if tables:
            forced = plan_of(sql, params, *disabled)
            text += f"\n  with only bitmap scans allowed, a full scan remains:\n{forced}"
            check.full_scans.extend((table, text) for table in sorted(tables))


# The purge, and sign-ins beside it.


@dataclass
class SignIns:
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.seconds:
            return f"none, {len(self.errors)} failed"
        return (
            f"{len(self.seconds)} ok, {len(self.errors)} failed; "
            f"p50 {percentile(self.seconds, 50) * 1000:.0f} ms, "
            f"max {max(self.seconds) * 1000:.0f} ms"
        )


@contextmanager
def signing_in(label: str) -> Iterator[SignIns]:
    """Sign in again and again (start, email, verify) in another thread, while inside."""
    result = SignIns()
    stop = threading.Event()

    def run() -> None:
        from django.db import connection

        i = 0
        try:
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    verify_by_service(*start_by_service(f"{label}-{i}@bench.example"))
                except Exception as error:
                    result.errors.append(repr(error))
                else:
                    result.seconds.append(time.perf_counter() - began)
                i += 1
                stop.wait(0.05)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()


@dataclass
class Purge:
    seconds: float
    deleted: dict[str, int]
    transactions: list[float]
    sign_ins: SignIns
    plans: PlanCheck


def run_purge() -> Purge:
    from django.db.models import deletion

    from passwordless import tasks

    transactions: list[float] = []
    original = deletion.Collector.delete

    def timed(collector: deletion.Collector) -> tuple[int, dict[str, int]]:
        # Each batch deletes through a Collector, in one transaction: the span of its locks.
        began = time.perf_counter()
        try:
            return original(collector)
        finally:
            transactions.append(time.perf_counter() - began)

    # The statements of the first batch are kept, to be EXPLAINed.
    first_batch = capture(last='DELETE FROM "passwordless_loginrequest"')
    with signing_in("during-purge") as sign_ins:
        time.sleep(0.5)  # the sign-ins are under way before the purge starts
        with first_batch as statements, mock.patch.object(deletion.Collector, "delete", timed):
            began = time.perf_counter()
            deleted = tasks.purge()
            seconds = time.perf_counter() - began
    plans = PlanCheck()
    explain(statements, plans)
    return Purge(seconds, deleted, transactions, sign_ins, plans)


# Mail throughput.


@dataclass
class Mail:
    mails: int
    queued: int
    enqueue_seconds: float
    first_to_last: float

    @property
    def rate(self) -> float:
        return (self.mails - 1) / self.first_to_last if self.first_to_last > 0 else 0.0


def measure_mail(n: int) -> Mail:
    from django.conf import settings

    from passwordless.services import start_sign_in

    broker = TARGET.redis()
    # The queue's key, with the prefix it has beside the caches in one database.
    queue = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")) + "celery"
    broker.delete(queue)  # the tasks of the sign-ins above, which no worker ran
    began = time.perf_counter()
    for i in range(n):
        start_sign_in(f"mail-{i}@bench.example")
    enqueue_seconds = time.perf_counter() - began
    queued = int(broker.llen(queue))
    with tempfile.TemporaryDirectory() as tmp, SMTPServer() as smtp:
        env = project_env(
            **SETTINGS, EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}", PYTHON=sys.executable
        )
        # bin/worker with no option, as production runs it: prefork, a process per CPU.
        worker = Process("celery-worker", ["sh", str(ROOT / "bin" / "worker")], env, Path(tmp))
        try:
            smtp.wait_for(1, timeout=120)
            first = time.perf_counter()
            smtp.wait_for(n, timeout=1200)
            last = time.perf_counter()
        except TimeoutError as error:
            raise RuntimeError(f"{error}\n{worker.log()[-5000:]}") from None
        finally:
            worker.stop()
    return Mail(n, queued, enqueue_seconds, last - first)


# The report.


@dataclass
class Row:
    metric: str
    value: str
    goal: str = ""
    met: bool | None = None

    def cells(self) -> tuple[str, str, str, str]:
        verdict = "" if self.met is None else ("met" if self.met else "MISSED")
        return self.metric, self.value, self.goal, verdict


def print_table(rows: list[Row]) -> None:
    cells = [("metric", "value", "goal", "met?"), *(row.cells() for row in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def verify_rows(small: int, big: int, at: dict[int, Latency]) -> list[Row]:
    rows: list[Row] = []
    for layer, name in (("service", "verify_code()"), ("http", "POST /auth/code/")):
        figures = {size: getattr(at[size], layer) for size in (small, big)}
        for size, values in figures.items():
            p50, p99 = percentile(values, 50), percentile(values, 99)
            rows.append(
                Row(f"{name} @ {size:,} outstanding", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            )
        for q in (50, 99):
            ratio = percentile(figures[big], q) / percentile(figures[small], q)
            rows.append(
                Row(
                    f"{name} p{q}, {big:,} / {small:,}",
                    f"{ratio:.2f}x",
                    f"<= {GOAL_RATIO}x",
                    ratio <= GOAL_RATIO,
                )
            )
    return rows


def report(
    args: argparse.Namespace,
    still: int,
    latency: dict[int, Latency],
    verify_plans: PlanCheck,
    baseline: SignIns,
    purge: Purge,
    mail: Mail,
) -> list[Row]:
    small, big = min(args.baseline, args.rows), args.rows
    longest = max(purge.transactions, default=0.0)
    mean = statistics.fmean(purge.transactions or [0.0])
    during = purge.sign_ins
    return [
        Row(f"outstanding requests when verifying at {big:,}", f"{still:,}"),
        *verify_rows(small, big, latency),
        Row(
            "verify statements with a full scan (no index)",
            verify_plans.summary(),
            "0",
            not verify_plans.full_scans,
        ),
        Row("purge: requests deleted", f"{purge.deleted['requests']:,} of {big:,}"),
        Row(
            "purge: total time",
            f"{purge.seconds:.1f} s ({purge.deleted['requests'] / purge.seconds:,.0f} rows/s)",
            f"< {GOAL_PURGE_S:.0f} s (task's soft limit)",
            purge.seconds < GOAL_PURGE_S and purge.deleted["requests"] >= big,
        ),
        Row("purge: batches (transactions)", f"{len(purge.transactions):,}"),
        Row(
            "purge: longest transaction (row locks held)",
            f"{longest * 1000:.0f} ms (mean {mean * 1000:.0f} ms)",
            f"< {GOAL_LOCK_S * 1000:.0f} ms (proposed)",
            longest < GOAL_LOCK_S,
        ),
        Row(
            "purge: statements with a full scan (no index)",
            purge.plans.summary(),
            "0",
            not purge.plans.full_scans,
        ),
        Row("sign-ins before the purge (start+mail+verify)", baseline.summary()),
        Row(
            "sign-ins during the purge (start+mail+verify)",
            during.summary(),
            f"all ok, max < {GOAL_SIGN_IN_S * 1000:.0f} ms (proposed)",
            bool(during.seconds) and not during.errors and max(during.seconds) < GOAL_SIGN_IN_S,
        ),
        Row(
            "mail: tasks queued by the start service",
            f"{mail.queued} in {mail.enqueue_seconds:.1f} s",
        ),
        Row("mail: worker pool", f"prefork, {os.cpu_count()} processes (bin/worker's default)"),
        Row(
            f"mail: throughput, first to last of {mail.mails}",
            f"{mail.rate:.1f} msg/s ({mail.first_to_last:.1f} s)",
            f">= {GOAL_MAILS_PER_S:.0f} msg/s (proposed)",
            mail.rate >= GOAL_MAILS_PER_S,
        ),
    ]


def main() -> int:
    global TARGET
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="outstanding, and expired")
    parser.add_argument("--baseline", type=int, default=1000, help="outstanding, small table")
    parser.add_argument("--verifies", type=int, default=300, help="timed, of each kind and size")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=2, help="connections filling the tables")
    parser.add_argument("--database", default=Target.database)
    parser.add_argument("--redis-db", type=int, default=Target.redis_db)
    parser.add_argument("--redis-port", type=int, default=Target.redis_port)
    parser.add_argument("--plans", action="store_true", help="print every EXPLAINed plan")
    parser.add_argument("--keep", action="store_true", help="leave the rows in the database")
    args = parser.parse_args()
    small, big = min(args.baseline, args.rows), args.rows
    began = time.perf_counter()

    TARGET = Target(args.database, args.redis_db, args.redis_port)
    var_dir = tempfile.mkdtemp(prefix="bench-scale-")
    Path(var_dir, "static").mkdir()  # STATIC_ROOT, which whitenoise wants to exist
    SETTINGS.update(TARGET.settings(var_dir))
    os.environ.update(
        SETTINGS,
        DJANGO_SETTINGS_MODULE="config.settings",
        # Here the delivery service runs in-line, and its mail is read from memory.
        EMAIL_URL="memorymail://",
        LOG_LEVEL="WARNING",
    )
    TARGET.flush_redis()
    django.setup()
    prepare_database()
    # Ids: the expired rows 1..big (the oldest, the lowest ids), the outstanding ones
    # above them, and the requests started through the services above both.
    live = big + 1
    reserve_ids(2 * big)
    try:
        latency: dict[int, Latency] = {}
        with phase(f"{small:,} outstanding requests, with a secret each"):
            fill(LIVE_REQUESTS, live, live + small - 1, args.jobs)
            fill(SECRETS, live, live + small - 1, args.jobs)
            analyze()
        with phase(f"verify at {small:,}"):
            latency[small] = measure_verify(small, args.verifies, args.warmup)
        with phase(f"{big:,} outstanding requests, with a secret each"):
            fill(LIVE_REQUESTS, live + small, live + big - 1, args.jobs)
            fill(SECRETS, live + small, live + big - 1, args.jobs)
            analyze()
        still = outstanding()
        with phase(f"verify at {big:,}"):
            latency[big] = measure_verify(big, args.verifies, args.warmup)
            by_service = start_by_service("plans@bench.example")
            browser = start_by_http("plans-web@bench.example")
            with capture() as statements:
                verify_by_service(*by_service)
                verify_by_http(browser)
            verify_plans = PlanCheck()
            explain(statements, verify_plans)
        with phase(f"{big:,} expired requests, with a secret and an audit event each"):
            fill(EXPIRED_REQUESTS, 1, big, args.jobs, last_id=big)
            fill(SECRETS, 1, big, args.jobs)
            fill(EVENTS, 1, big, args.jobs)
            analyze()
        with phase("sign-ins before the purge"), signing_in("before-purge") as baseline:
            time.sleep(3)
        with phase("purge"):
            purge = run_purge()
        with phase(f"{args.mails} emails through one worker"):
            mail = measure_mail(args.mails)
    finally:
        if not args.keep:
            empty_database()
        TARGET.flush_redis()
        shutil.rmtree(var_dir, ignore_errors=True)

    print_table(report(args, still, latency, verify_plans, baseline, purge, mail))
    for title, check in (("verify", verify_plans), ("purge", purge.plans)):
        shown = check.plans if args.plans else [plans for _, plans in check.full_scans]
        for plans in dict.fromkeys(shown):
            print(f"\n{title} statement:\n{plans}")
    print(f"\ntotal run time {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
