"""Settings of the app, read lazily from ``PASSWORDLESS_*`` Django settings.

Each property is one setting with its documented default. Values are read on
every access, so ``override_settings`` in tests takes effect at once. Durations
accept seconds (int or float) or a ``timedelta``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings

__all__ = ["app_settings"]

_PREFIX = "PASSWORDLESS_"


def _seconds(value: float | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


class AppSettings:
    def _get(self, name: str, default: Any) -> Any:
        return getattr(settings, _PREFIX + name, default)

    @property
    def SITE_URL(self) -> str | None:
        """Scheme and host of every emailed link, e.g. ``https://login.example.com``.

        Links are never built from the request's Host header, which an attacker
        controls. Required; a system check reports it when missing.
        """
        value = self._get("SITE_URL", None)
        return value.rstrip("/") if value else None

    @property
    def REQUEST_LIFETIME(self) -> timedelta:
        """How long a code and link stay valid after they are minted (10 minutes)."""
        return _seconds(self._get("REQUEST_LIFETIME", 600))

    @property
    def CODE_LENGTH(self) -> int:
        """Number of decimal digits in a code (6, the NIST SP 800-63B minimum)."""
        return int(self._get("CODE_LENGTH", 6))

    @property
    def MAX_ATTEMPTS(self) -> int:
        """Wrong codes that lock a sign-in request (5)."""
        return int(self._get("MAX_ATTEMPTS", 5))

    @property
    def VALID_SECRETS(self) -> int:
        """How many of the most recent codes and links of one request stay valid (3)."""
        return int(self._get("VALID_SECRETS", 3))

    @property
    def SIGNUP_ENABLED(self) -> bool:
        """Whether the first verified sign-in of an unknown email creates an account."""
        return bool(self._get("SIGNUP_ENABLED", True))

    @property
    def HASH_KEY(self) -> str:
        """Key of the HMAC that stores codes and tokens; derived from ``SECRET_KEY`` if unset.

        A separate key means a database dump and a leaked ``SECRET_KEY`` are both
        needed before guesses can be tested offline.
        """
        return str(self._get("HASH_KEY", None) or settings.SECRET_KEY)

    @property
    def ADAPTER(self) -> str:
        """Dotted path of the adapter class holding the project's policy."""
        return str(self._get("ADAPTER", "passwordless.adapter.DefaultAdapter"))

    @property
    def AUTH_BACKEND(self) -> str:
        """Authentication backend recorded in the session by ``login()``."""
        return str(self._get("AUTH_BACKEND", "django.contrib.auth.backends.ModelBackend"))

    @property
    def FROM_EMAIL(self) -> str | None:
        """Sender of the sign-in email; ``DEFAULT_FROM_EMAIL`` when unset."""
        value = self._get("FROM_EMAIL", None)
        return str(value) if value else None

    @property
    def LOGIN_REDIRECT_URL(self) -> str:
        """Where a signed-in person lands without a ``next``; ``LOGIN_REDIRECT_URL`` by default."""
        return str(self._get("LOGIN_REDIRECT_URL", settings.LOGIN_REDIRECT_URL))


app_settings = AppSettings()
