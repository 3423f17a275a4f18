"""Django's cache session engine, except that a session store that does not answer is an
error (a 503 page, by ``ServiceUnavailableMiddleware``), not an empty session.

Django's own engine reads a failure as "no session": the person would silently
look signed out, and a half-finished sign-in would restart from the email form.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore


class SessionStore(CacheSessionStore):
    def load(self) -> dict[str, Any]:
        data = self._cache.get(self.cache_key)  # type: ignore[attr-defined]  # errors propagate
        if data is not None:
            return data  # type: ignore[no-any-return]
        self._session_key = None
        return {}
