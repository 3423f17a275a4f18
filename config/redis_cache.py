"""django-redis's client, except that ``clear()`` deletes this cache's keys, not the database.

The cache, the sessions, the rate-limit counters and the Celery broker share
REDIS_URL's one database, told apart by key prefixes. django-redis clears a
cache with FLUSHDB, so clearing the cache would sign everyone out, hand every
client a fresh rate-limit window and drop the queued mail. Here ``clear()`` scans
for ``<KEY_PREFIX>:*`` and deletes only those keys.
"""

from __future__ import annotations

from typing import Any

from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis import exceptions as redis_errors

__all__ = ["PrefixClient"]

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
