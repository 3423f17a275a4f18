"""Sessions in Redis: Django's ``cache`` engine against ``cached_db``, on this machine.

Times, for each engine, N new sessions saved (a sign-in), N loads (a signed-in
request) and N load-modify-save cycles (a renewal), against the real Redis and
PostgreSQL, and prints operations per second and the ratio between the two.

    .venv/bin/python -m bench.session_engines            # N = 2000
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable

import django

ENGINES = {
    "cache": "django.contrib.sessions.backends.cache",
    "cached_db": "django.contrib.sessions.backends.cached_db",
}


def _rate(n: int, action: Callable[[int], None]) -> float:
    began = time.perf_counter()
    for i in range(n):
        action(i)
    return n / (time.perf_counter() - began)


def measure(engine: str, n: int) -> dict[str, float]:
    from django.conf import settings

    settings.SESSION_CACHE_ALIAS = "sessions"
    store = importlib.import_module(engine).SessionStore
    keys: list[str] = []

    def create(i: int) -> None:
        session = store()
        session["_auth_user_id"] = str(i)
        session["passwordless_last_seen"] = time.time()
        session.save()
        keys.append(session.session_key)

    def load(i: int) -> None:
        store(session_key=keys[i]).load()

    def renew(i: int) -> None:
        session = store(session_key=keys[i])
        session["passwordless_last_seen"] = time.time()
        session.save()

    return {"create": _rate(n, create), "load": _rate(n, load), "renew": _rate(n, renew)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--database", default="passwordless_bench")
    parser.add_argument("--redis-port", type=int, default=6379)
    args = parser.parse_args()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        REDIS_URL=f"redis://127.0.0.1:{args.redis_port}/1",
        CELERY_BROKER_URL="memory://",
        DEBUG="True",
        LOG_LEVEL="WARNING",
    )
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        if not db.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (args.database,)
        ).fetchone():
            db.execute(f'CREATE DATABASE "{args.database}"')
    django.setup()
    from django.core.cache import caches
    from django.core.management import call_command

    call_command("migrate", "sessions", verbosity=0)
    results = {}
    for name, engine in ENGINES.items():
        caches["sessions"].clear()
        measure(engine, 200)  # warm up connections
        results[name] = measure(engine, args.n)
    print(f"{'operation':<10}{'cache /s':>12}{'cached_db /s':>15}{'cache ÷ cached_db':>20}")
    for op in ("create", "load", "renew"):
        a, b = results["cache"][op], results["cached_db"][op]
        print(f"{op:<10}{a:>12.0f}{b:>15.0f}{a / b:>20.2f}")
    caches["sessions"].clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
