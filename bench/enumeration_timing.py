"""Can response time tell a known address from an unknown one?

Starts gunicorn on 127.0.0.1 against PostgreSQL and Redis (production-like: a
real broker takes the task, no worker runs, so only the web path is timed),
then POSTs the email form for known and unknown addresses, interleaved, each
from a fresh browser, and prints the medians and their difference.

    .venv/bin/python -m bench.enumeration_timing            # 200 + 200 requests
    .venv/bin/python -m bench.enumeration_timing --requests 50
    .venv/bin/python -m bench.enumeration_timing --pathway api   # POST /api/auth/send

Exit status 1 when the median difference is not under the goal (5 ms).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
import requests

from tests.attacker import Browser
from tests.stack import free_port, gunicorn, new_jwt_key, project_env

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "passwordless_bench"
GOAL_MS = 5.0


def _prepare_database(env: dict[str, str], users: int, database: str) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{database}"')
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    script = (
        "from accounts.models import User; User.objects.bulk_create("
        f"[User(email=f'known{{i}}@bench.example') for i in range({users})])"
    )
    subprocess.run([*manage, "shell", "-v0", "-c", script], cwd=ROOT, env=env, check=True)


def _timed_start(base_url: str, email: str, pathway: str) -> float:
    if pathway == "api":
        began = time.perf_counter()
        response = requests.post(f"{base_url}/api/auth/send", json={"email": email}, timeout=20)
        elapsed = time.perf_counter() - began
        expected = 202
    else:
        browser = Browser(base_url)
        token = browser.csrf_token()
        began = time.perf_counter()
        response = browser.post("/auth/login/", {"email": email}, token=token)
        elapsed = time.perf_counter() - began
        expected = 302
    if response.status_code != expected:
        raise RuntimeError(f"{email}: {response.status_code} {response.text[:200]}")
    return elapsed * 1000


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, no tie correction)."""
    ranked = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    rank_sum_a = sum(rank + 1 for rank, (_, group) in enumerate(ranked) if group == 0)
    n1, n2 = len(a), len(b)
    u = rank_sum_a - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    z = (u - mean) / sd
    return math.erfc(abs(z) / math.sqrt(2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="per class (default 200)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--pathway", choices=["html", "api"], default="html")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--redis-port", type=int, default=6379)
    args = parser.parse_args()
    total = args.requests + args.warmup

    broker_db = 11
    redis_url = f"redis://127.0.0.1:{args.redis_port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = project_env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
            REDIS_URL=f"{redis_url}/1",
            CELERY_BROKER_URL=f"{redis_url}/{broker_db}",
            EMAIL_URL="dummymail://",
            DEBUG="False",
            SECURE_COOKIES="False",
            SECURE_SSL_REDIRECT="False",
            ALLOWED_HOSTS="127.0.0.1",
            SITE_URL="https://login.bench.example",
            SECRET_KEY="bench-" + "k" * 60,
            JWT_PRIVATE_KEY=new_jwt_key(),
            SEND_RATES_PER_IP="1000000/h",
            CONN_MAX_AGE="60",
            LOG_LEVEL="WARNING",
            VAR_DIR=tmp,
        )
        for db in (1, 2, 3, broker_db):
            redis.Redis(host="127.0.0.1", port=args.redis_port, db=db).flushdb()
        _prepare_database(env, total, args.database)
        port = free_port()
        with gunicorn(env, Path(tmp), port, workers=2):
            base = f"http://127.0.0.1:{port}"
            known: list[float] = []
            unknown: list[float] = []
            for i in range(total):
                # Alternate which class goes first, so order cannot bias either.
                if i % 2:
                    u = _timed_start(base, f"nobody{i}@bench.example", args.pathway)
                    k = _timed_start(base, f"known{i}@bench.example", args.pathway)
                else:
                    k = _timed_start(base, f"known{i}@bench.example", args.pathway)
                    u = _timed_start(base, f"nobody{i}@bench.example", args.pathway)
                if i >= args.warmup:
                    known.append(k)
                    unknown.append(u)
        queued = redis.Redis(host="127.0.0.1", port=args.redis_port, db=broker_db).llen("celery")
        for db in (1, 2, 3, broker_db):
            redis.Redis(host="127.0.0.1", port=args.redis_port, db=db).flushdb()

    median_known, median_unknown = statistics.median(known), statistics.median(unknown)
    difference = abs(median_known - median_unknown)
    print(f"pathway                 {args.pathway}")
    print(f"requests per class      {len(known)} (after {args.warmup} warm-up each)")
    print(f"tasks queued            {queued} (one per request, known or not)")
    print(f"median known            {median_known:.2f} ms")
    print(f"median unknown          {median_unknown:.2f} ms")
    print(f"median difference       {difference:.2f} ms (goal < {GOAL_MS:.0f} ms)")
    print(f"Mann-Whitney U p-value  {mann_whitney_p(known, unknown):.3f}")
    print("PASS" if difference < GOAL_MS else "FAIL")
    return 0 if difference < GOAL_MS else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
