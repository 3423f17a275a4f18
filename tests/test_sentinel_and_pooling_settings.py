"""The settings for Redis Sentinel (``REDIS_SENTINELS``) and for PgBouncer
(``DATABASE_POOLING``), read in a fresh process; and what nothing set leaves alone.

The failover itself runs in ``test_sentinel_failover.py``, the pooled flow in
``test_pgbouncer.py``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django_redis.exceptions import ConnectionInterrupted

from config import sentinel
from config.logs import QuietDependencyOutages
from passwordless.redis_probe import masked, redis_url_problem

ROOT = Path(__file__).resolve().parent.parent
SENTINELS = "127.0.0.1:26401,127.0.0.1:26402,127.0.0.1:26403"

_PRINT = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "caches": {alias: c.get("OPTIONS", {}) for alias, c in settings.CACHES.items()},
    "locations": sorted({c.get("LOCATION", "") for c in settings.CACHES.values()}),
    "broker": settings.CELERY_BROKER_URL,
    "transport": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "database": {k: db.get(k) for k in
                 ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "DISABLE_SERVER_SIDE_CURSORS")},
}, default=str))
"""


def _settings(tmp_path: Path, **env: str) -> dict[str, Any]:
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings"}
    clean.update(VAR_DIR=str(tmp_path / "var"), DEBUG="True", **env)
    out = subprocess.run(
        [sys.executable, "-c", _PRINT], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    found: dict[str, Any] = json.loads(out.stdout)
    return found


def _refused(tmp_path: Path, **env: str) -> str:
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings"}
    clean.update(VAR_DIR=str(tmp_path / "var"), DEBUG="True", **env)
    out = subprocess.run(
        [sys.executable, "-c", _PRINT], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert out.returncode != 0, out.stdout
    return out.stderr


# Redis Sentinel.


def test_sentinels_parse_with_the_default_port_and_ipv6() -> None:
    assert sentinel.parse_sentinels(["127.0.0.1:26401", " [::1]:26402 ", "sentinel-3", ""]) == [
        ("127.0.0.1", 26401),
        ("::1", 26402),
        ("sentinel-3", 26379),
    ]


@pytest.mark.parametrize("entry", ["host:port", "user:pw@host:26379", "host:26379/0"])
def test_a_sentinel_that_is_not_host_port_is_refused(entry: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="REDIS_SENTINELS"):
        sentinel.parse_sentinels([entry])


def test_the_broker_url_becomes_kombus_sentinel_urls() -> None:
    sentinels = [("127.0.0.1", 26401), ("::1", 26402)]
    url, options = sentinel.broker("redis://:secret@mymaster/2", sentinels, "sentinel-secret")
    assert url == "sentinel://:secret@127.0.0.1:26401/2;sentinel://:secret@[::1]:26402/2"
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"]["password"] == "sentinel-secret"
    assert masked(url) == "sentinel://:***@127.0.0.1:26401/2;sentinel://:***@[::1]:26402/2"
    with pytest.raises(ImproperlyConfigured, match="redis://service/db"):
        sentinel.broker("rediss://mymaster/0", sentinels)


def test_with_sentinels_every_redis_use_finds_the_primary_through_them(tmp_path: Path) -> None:
    found = _settings(tmp_path, REDIS_URL="redis://mymaster/0", REDIS_SENTINELS=SENTINELS)
    assert found["locations"] == ["redis://mymaster/0"]
    for options in found["caches"].values():
        # The project's client (clear() by prefix), on the primary only: not SentinelClient.
        assert options["CLIENT_CLASS"] == "config.redis_cache.PrefixClient"
        assert options["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
        # Asks the Sentinels again every second: nothing stays on a demoted primary.
        assert options["CONNECTION_POOL_CLASS"] == "config.redis_cache.SentinelPrimaryPool"
        assert options["SENTINELS"] == [["127.0.0.1", port] for port in (26401, 26402, 26403)]
    assert found["broker"] == ";".join(
        f"sentinel://127.0.0.1:{port}/0" for port in (26401, 26402, 26403)
    )
    assert found["transport"]["master_name"] == "mymaster"
    assert found["transport"]["global_keyprefix"] == "broker:"  # beside the caches, as before
    assert found["transport"]["visibility_timeout"] == 3600


def test_without_sentinels_nothing_changes(tmp_path: Path) -> None:
    found = _settings(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    assert found["broker"] == "redis://127.0.0.1:6379/0"
    assert "master_name" not in found["transport"]
    for options in found["caches"].values():
        assert "CONNECTION_FACTORY" not in options and "SENTINELS" not in options
    assert found["database"] == {
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "DISABLE_SERVER_SIDE_CURSORS": None,  # not set: Django's default, off
    }


def test_a_rabbitmq_broker_is_left_alone_beside_sentinels(tmp_path: Path) -> None:
    found = _settings(
        tmp_path,
        REDIS_URL="redis://mymaster/0",
        REDIS_SENTINELS=SENTINELS,
        CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
    )
    assert found["broker"] == "amqp://guest:guest@127.0.0.1:5672//"
    assert found["transport"] == {}


def test_the_check_is_quiet_and_quick_when_no_sentinel_answers() -> None:
    started = time.monotonic()
    assert redis_url_problem("redis://mymaster/0", {"SENTINELS": [("127.0.0.1", 1)]}) is None
    assert time.monotonic() - started < 5


# PgBouncer.


def test_transaction_pooling_disables_server_side_cursors_and_keeps_connections(
    tmp_path: Path,
) -> None:
    found = _settings(tmp_path, DATABASE_POOLING="transaction")
    assert found["database"] == {
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }
    chosen = _settings(tmp_path, DATABASE_POOLING="transaction", CONN_MAX_AGE="0")
    assert chosen["database"]["CONN_MAX_AGE"] == 0  # a value set is kept


def test_session_pooling_closes_connections_after_each_request(tmp_path: Path) -> None:
    found = _settings(tmp_path, DATABASE_POOLING="session")
    assert found["database"]["CONN_MAX_AGE"] == 0
    assert found["database"]["DISABLE_SERVER_SIDE_CURSORS"] is None


def test_statement_pooling_is_refused(tmp_path: Path) -> None:
    assert "DATABASE_POOLING must be 'session' or 'transaction'" in _refused(
        tmp_path, DATABASE_POOLING="statement"
    )


# The log of an outage.


def _record(status: int, exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        record = logging.getLogger("django.request").makeRecord(
            "django.request",
            logging.ERROR,
            __file__,
            1,
            "Service Unavailable: /",
            (),
            sys.exc_info(),
            extra={"status_code": status},
        )
    return record


def test_a_503_for_a_dependency_is_logged_without_its_traceback() -> None:
    quiet = QuietDependencyOutages()
    outage = _record(503, ConnectionInterrupted(connection=None))
    assert quiet.filter(outage) and outage.exc_info is None
    bug = _record(500, RuntimeError("a bug"))
    assert quiet.filter(bug) and bug.exc_info is not None
    other = _record(503, RuntimeError("not a dependency"))
    assert quiet.filter(other) and other.exc_info is not None
