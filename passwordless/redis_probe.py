"""Redis URLs that cannot work: told apart from a Redis that is only down.

A URL naming a database the server does not have (``/16`` on a server of 16,
anything but ``/0`` on Redis Cluster and many managed services), or credentials
it refuses, fails every request until the configuration changes; a stopped
server may come back. The system check (``passwordless.E020``) and ``/readyz``
name the first kind. Nothing here connects at import, and the probe gives up
after a second.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

__all__ = ["masked", "redis_refusal", "redis_url_problem", "redis_urls"]

#: Cache backends whose LOCATION is one or more Redis URLs.
REDIS_BACKENDS = (
    "django_redis.cache.RedisCache",
    "django.core.cache.backends.redis.RedisCache",
)
_SCHEMES = ("redis", "rediss", "unix")
_TIMEOUT = 1.0


def redis_urls() -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """``(use, url, options)`` for every Redis cache location and a Redis broker."""
    for alias, config in settings.CACHES.items():
        if config.get("BACKEND") not in REDIS_BACKENDS:
            continue
        location = config.get("LOCATION", "")
        urls = location.split(",") if isinstance(location, str) else list(location)
        for url in urls:
            yield f"cache:{alias}", url.strip(), config.get("OPTIONS") or {}
    broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if urlsplit(broker).scheme in ("redis", "rediss"):
        yield "broker", broker, {}


def masked(url: str) -> str:
    """The URL without its password, fit for a log line or a check message (each of
    kombu's ``;``-joined ``sentinel://`` URLs too)."""
    if ";" in url:
        return ";".join(masked(part) for part in url.split(";"))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:" if parts.username else ":"
    return parts._replace(netloc=f"{user}***@{netloc}").geturl()


def _database(url: str) -> str:
    parts = urlsplit(url)
    query = parse_qs(parts.query).get("db")
    if query:
        return query[-1]
    if parts.scheme == "unix":
        return "0"
    return parts.path.strip("/") or "0"


def _offline_problem(url: str) -> str | None:
    if urlsplit(url).scheme not in _SCHEMES:
        return "it is not a redis://, rediss:// or unix:// URL"
    database = _database(url)
    if not database.isascii() or not database.isdigit():
        # redis-py would quietly use database 0 instead.
        return f"its database {database!r} is not a number"
    return None


def redis_refusal(exc: BaseException | None, url: str) -> str | None:
    """Why the server behind ``url`` refused it for good, read from ``exc`` and its causes
    (django-redis and kombu wrap redis-py's errors); ``None`` if it may only be down."""
    try:
        from redis import exceptions as redis_errors
    except ImportError:  # pragma: no cover - Redis is an optional extra
        return None
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        if isinstance(exc, redis_errors.AuthenticationError) or text.startswith(
            ("NOAUTH", "WRONGPASS", "invalid password", "invalid username-password")
        ):
            return "the server refused the credentials"
        if isinstance(exc, redis_errors.ResponseError):
            database = _database(url)
            if "cluster mode" in text:
                return f"database {database} does not exist: Redis Cluster has database 0 only"
            if "DB index" in text or "invalid DB" in text:
                return f"database {database} does not exist on this server"
            if text.startswith("NOPERM"):
                return "the server's ACL refuses this user a command the app needs"
        exc = exc.__cause__ or exc.__context__
    return None


def redis_url_problem(url: str, options: Mapping[str, Any] | None = None) -> str | None:
    """Why ``url`` cannot work, or ``None`` (it works, or the server does not answer now).

    Connects once, with one-second timeouts and no retries; ``options`` are a django-redis
    cache's ``OPTIONS``, for its ``PASSWORD`` and ``CONNECTION_POOL_KWARGS``.
    """
    offline = _offline_problem(url)
    if offline is not None:
        return offline
    # redis-py is an optional dependency (the "redis" extra): no Redis URL, no import.
    try:
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:  # pragma: no cover
        return None
    options = options or {}
    kwargs: dict[str, Any] = dict(options.get("CONNECTION_POOL_KWARGS") or {})
    if options.get("PASSWORD"):
        kwargs["password"] = options["PASSWORD"]
    kwargs.update(
        socket_connect_timeout=_TIMEOUT, socket_timeout=_TIMEOUT, retry=Retry(NoBackoff(), 0)
    )
    clients = _clients(url, options, kwargs)
    try:
        clients[0].ping()
    except Exception as exc:
        return redis_refusal(exc, url)
    finally:
        for client in clients:
            client.close()
    return None


def _clients(url: str, options: Mapping[str, Any], kwargs: dict[str, Any]) -> list[Any]:
    """A client of ``url`` first, then any others to close after it: with django-redis's
    ``SENTINELS``, a client of the primary that the Sentinels name for the URL's host (the
    service: ``redis://mymaster/0``), then the Sentinels' own."""
    import redis

    sentinels = options.get("SENTINELS")
    if not sentinels:
        return [redis.Redis.from_url(url, **kwargs)]
    from redis.sentinel import Sentinel

    parts = urlsplit(url)
    limits = ("socket_connect_timeout", "socket_timeout", "retry")
    on_sentinels = {
        **(options.get("SENTINEL_KWARGS") or {}),
        **{key: kwargs[key] for key in limits},
    }
    manager = Sentinel(  # type: ignore[no-untyped-call]
        sentinels, sentinel_kwargs=on_sentinels, **kwargs
    )
    auth = {"username": parts.username, "password": parts.password or kwargs.get("password")}
    given = {key: value for key, value in auth.items() if value}
    primary = manager.master_for(  # type: ignore[no-untyped-call]
        parts.hostname or "", db=int(_database(url)), **given
    )
    return [primary, *manager.sentinels]
