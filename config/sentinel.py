"""Redis Sentinel, from the environment: django-redis's options and Celery's broker URL.

``REDIS_SENTINELS`` ("host:port,host:port,...") names the Sentinels. Every ``redis://`` URL
(``REDIS_URL``, ``SESSION_REDIS_URL``, ``RATELIMIT_REDIS_URL``, a Redis ``CELERY_BROKER_URL``)
then names the monitored service as its host, as django-redis documents it:
``redis://mymaster/0``, ``redis://:password@mymaster/0``. ``REDIS_SENTINEL_PASSWORD`` is the
Sentinels' own password, when they ask for one.

The caches read and write the primary only: django-redis's ``SentinelConnectionFactory``
under the project's ``PrefixClient``, not django-redis's ``SentinelClient``, which sends reads
to a replica. Replication is asynchronous: the request after a sign-in would read its session
from a replica that may not have it yet, and look signed out (the store then drops the
cookie's key), and a session ended a moment ago could still read as live there. Their pool,
``config.redis_cache.SentinelPrimaryPool``, asks the Sentinels again every second, so that
connections left open to a primary that was demoted are closed.

The broker becomes kombu's ``sentinel://`` transport, one URL per Sentinel joined by ``;``,
with ``master_name`` in its transport options.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

__all__ = ["broker", "cache_options", "parse_sentinels"]

DEFAULT_PORT = 26379
#: Each Sentinel is asked in turn for the primary: one that does not answer must cost little.
SENTINEL_TIMEOUT = 1.0


def parse_sentinels(entries: list[str]) -> list[tuple[str, int]]:
    """``["host:port", "[::1]:26379", "host"]`` as (host, port) pairs; the port defaults to
    Sentinel's 26379."""
    sentinels = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        parts = urlsplit(f"//{entry}")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ImproperlyConfigured(f"REDIS_SENTINELS: {entry!r} has no valid port") from exc
        if not parts.hostname or parts.path or parts.username or parts.password:
            raise ImproperlyConfigured(f"REDIS_SENTINELS: {entry!r} is not host:port")
        sentinels.append((parts.hostname, port))
    return sentinels


def _sentinel_kwargs(password: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        "socket_timeout": SENTINEL_TIMEOUT,
    }
    if password:
        kwargs["password"] = password
    return kwargs


def cache_options(sentinels: list[tuple[str, int]], password: str = "") -> dict[str, Any]:
    """What a django-redis cache's ``OPTIONS`` add to find the primary through Sentinel."""
    return {
        "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
        "CONNECTION_POOL_CLASS": "config.redis_cache.SentinelPrimaryPool",
        "SENTINELS": sentinels,
        "SENTINEL_KWARGS": _sentinel_kwargs(password),
    }


def broker(
    url: str, sentinels: list[tuple[str, int]], password: str = ""
) -> tuple[str, dict[str, Any]]:
    """A ``redis://[user:password@]service/db`` broker URL as kombu's ``sentinel://`` URL and
    the transport options it needs (``master_name``, ``sentinel_kwargs``)."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ImproperlyConfigured(
            "With REDIS_SENTINELS, a Redis CELERY_BROKER_URL is redis://service/db "
            f"(kombu's Sentinel transport has no TLS from a URL), not {parts.scheme}://"
        )
    database = parts.path.strip("/") or "0"
    credentials = parts.netloc.rpartition("@")[0]
    auth = f"{credentials}@" if credentials else ""
    hosts = [f"[{host}]" if ":" in host else host for host, _ in sentinels]
    joined = ";".join(
        f"sentinel://{auth}{host}:{port}/{database}"
        for host, (_, port) in zip(hosts, sentinels, strict=True)
    )
    return joined, {"master_name": parts.hostname, "sentinel_kwargs": _sentinel_kwargs(password)}
