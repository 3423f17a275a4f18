"""Django's cache session engine, except that a session store that does not answer is an
error (a 503 page, by ``ServiceUnavailableMiddleware``), not an empty session, and that
each write is one Redis command.

Django's own engine reads a failure as "no session": the person would silently
look signed out, and a half-finished sign-in would restart from the email form.

Django's engine also spends a round trip before each write: a new key is first checked
with ``EXISTS`` (then written with ``SET NX``, which refuses a key in use anyway), and an
update first ``GET``s the key so as not to bring back a session deleted meanwhile (a
sign-out elsewhere). On django-redis, ``SET NX`` alone creates and ``SET XX`` updates:
the same refusals, each in one atomic command. Every sign-in saves two round trips, and
every session write one.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.utils.crypto import get_random_string
from django_redis.cache import RedisCache


class SessionStore(CacheSessionStore):
    def load(self) -> dict[str, Any]:
        data = self._cache.get(self.cache_key)  # type: ignore[attr-defined]  # errors propagate
        if data is not None:
            return data  # type: ignore[no-any-return]
        self._session_key = None
        return {}

    def _get_new_session_key(self) -> str:
        if not self._on_redis():
            return super()._get_new_session_key()  # type: ignore[misc,no-any-return]
        # No EXISTS: ``save(must_create=True)`` is SET NX, and ``create`` draws another key
        # on the (2^-165) chance that this one is taken.
        return get_random_string(32, VALID_KEY_CHARS)

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None or not self._on_redis():
            return super().save(must_create)
        cache: Any = self._cache  # type: ignore[attr-defined]
        data = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        if must_create:
            if not cache.set(self.cache_key, data, self.get_expiry_age(), nx=True):
                raise CreateError
        elif not cache.set(self.cache_key, data, self.get_expiry_age(), xx=True):
            raise UpdateError  # deleted meanwhile: Django's SessionMiddleware says so

    def _on_redis(self) -> bool:
        return isinstance(self._cache, RedisCache)  # type: ignore[attr-defined]
