"""django-redis's client, except that ``clear()`` deletes this cache's keys, not the database;
and, with Redis Sentinel, a pool that notices when the primary has moved.

The cache, the sessions, the rate-limit counters and the Celery broker share
REDIS_URL's one database, told apart by key prefixes. django-redis clears a
cache with FLUSHDB, so clearing the cache would sign everyone out, hand every
client a fresh rate-limit window and drop the queued mail. Here ``clear()`` scans
for ``<KEY_PREFIX>:*`` and deletes only those keys.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis import exceptions as redis_errors
from redis.sentinel import SentinelConnectionPool

__all__ = ["PrefixClient", "SentinelPrimaryPool"]

_BATCH = 500
_FAILURES = (
    redis_errors.ConnectionError,
    redis_errors.ResponseError,
    redis_errors.TimeoutError,
    TimeoutError,  # the socket's own
)


def _glob_escape(text: str) -> str:
    """``text`` matched literally by Redis' glob: a backslash before each special character
    (a bracket class cannot hold ``]`` or ``\\``)."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


class PrefixClient(DefaultClient):  # type: ignore[misc]
    def clear(self, client: Any = None) -> None:
        """Delete every key under this cache's prefix, whatever its version."""
        if client is None:
            client = self.get_client(write=True)
        pattern = f"{_glob_escape(self._backend.key_prefix)}:*"
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=_BATCH):
                batch.append(key)
                if len(batch) >= _BATCH:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)
        except _FAILURES as exc:
            raise ConnectionInterrupted(connection=client) from exc


class SentinelPrimaryPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, asking the Sentinels which server is the primary again at
    most every ``CHECK_INTERVAL`` seconds when it hands out a connection.

    redis-py asks only when a connection connects. After a planned failover (``SENTINEL
    FAILOVER``, or a primary that came back as a replica), the old primary stays up and
    writable until Sentinel turns it into a replica, which takes it about ten seconds (its
    INFO period for replicas); meanwhile the connections already open to it go on reading
    and writing there, and whatever they wrote is gone when it resyncs from the new primary:
    every session signed in on that process meanwhile (``tests/test_sentinel_failover.py``).
    Once the Sentinels name another primary, ``get_master_address`` closes the idle
    connections (they reconnect to the new one when next used) and the pool no longer takes
    back the ones in use. The cost: one ``SENTINEL MASTERS`` a second per pool that is used.
    """

    CHECK_INTERVAL = 1.0

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self._checked_at = float("-inf")

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if self.is_master and now - self._checked_at >= self.CHECK_INTERVAL:
            self._checked_at = now
            # No primary named, or no Sentinel answers: connecting says so (a 503).
            with contextlib.suppress(redis_errors.ConnectionError, redis_errors.TimeoutError):
                self.get_master_address()  # type: ignore[no-untyped-call]
        return super().get_connection(*args, **kwargs)
