"""System checks for configurations that would make sign-in unsafe or broken."""

from __future__ import annotations

import importlib.util
import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import NoReverseMatch, reverse

from .adapter import get_adapter
from .client import invalid_proxies
from .conf import app_settings
from .keys import signing_key
from .limits import rate_period
from .redis_probe import masked, redis_url_problem, redis_urls

__all__ = [
    "check_adapter",
    "check_hash_key",
    "check_jwt",
    "check_mail_queue",
    "check_passkeys",
    "check_rates",
    "check_redis_urls",
    "check_shared_caches",
    "check_site_url",
    "check_trusted_proxies",
    "check_user_model",
]


@register(Tags.security, deploy=False)
def check_site_url(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Emailed links are built from SITE_URL alone, never from the Host header."""
    site_url = app_settings.SITE_URL
    if not site_url:
        return [
            Error(
                "PASSWORDLESS_SITE_URL is not set.",
                hint="Set it to the scheme and host of the emailed links, "
                "e.g. 'https://login.example.com'.",
                id="passwordless.E001",
            )
        ]
    parts = urlsplit(site_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        return [
            Error(
                f"PASSWORDLESS_SITE_URL {site_url!r} is not a scheme and host.",
                hint="Use the form 'https://login.example.com', without a path.",
                id="passwordless.E002",
            )
        ]
    if parts.scheme != "https" and not settings.DEBUG:
        return [
            Error(
                "PASSWORDLESS_SITE_URL must use https when DEBUG is off.",
                hint="Links sent over http can be read and used by anyone on the path.",
                id="passwordless.E003",
            )
        ]
    return []


@register(Tags.models)
def check_user_model(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    user_model = get_user_model()
    field_name = user_model.get_email_field_name()
    if field_name not in {f.name for f in user_model._meta.get_fields()}:
        return [
            Error(
                f"The user model {user_model._meta.label} has no email field {field_name!r}.",
                hint="Sign-in by email needs a user model with an email field "
                "(set EMAIL_FIELD on the model).",
                id="passwordless.E004",
            )
        ]
    return []


@register(Tags.security)
def check_hash_key(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """In production, codes and tokens should be keyed apart from SECRET_KEY."""
    if settings.DEBUG or getattr(settings, "PASSWORDLESS_HASH_KEY", None):
        return []
    return [
        Warning(
            "PASSWORDLESS_HASH_KEY is not set: codes and link tokens are keyed with SECRET_KEY.",
            hint="Set a separate random key, so that a database dump together with a leaked "
            "SECRET_KEY is still not enough to test code guesses offline.",
            id="passwordless.W001",
        )
    ]


@register(Tags.security)
def check_jwt(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Access tokens are signed, so a token lives until it expires: keep them short, and
    keep the clock leeway small. (A revoked family's are refused at once: every request
    reads the family.)"""
    errors: list[CheckMessage] = []
    if app_settings.ACCESS_TOKEN_LIFETIME.total_seconds() > 15 * 60:
        errors.append(
            Error(
                "PASSWORDLESS_ACCESS_TOKEN_LIFETIME is longer than 15 minutes.",
                hint="Use 5 minutes (the default) and refresh tokens for longer sign-ins.",
                id="passwordless.E005",
            )
        )
    if app_settings.JWT_LEEWAY.total_seconds() > 60:
        errors.append(
            Error(
                "PASSWORDLESS_JWT_LEEWAY is more than 60 seconds.",
                hint="Leeway only covers clock skew between servers; 30 seconds is plenty.",
                id="passwordless.E006",
            )
        )
    try:
        reverse("passwordless-api:send")
    except NoReverseMatch:
        return errors  # the JSON API is not mounted: no tokens to sign
    try:
        signing_key()
    except Exception as exc:
        errors.append(
            Error(
                f"JWT signing keys are missing or unusable: {exc}",
                hint="Set PASSWORDLESS_JWT_PRIVATE_KEYS to Ed25519 private keys in PEM.",
                id="passwordless.E007",
            )
        )
    return errors


_PROCESS_LOCAL = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
#: Shared, but their increments are read-then-write: concurrent hits are undercounted.
_NOT_ATOMIC = (
    "django.core.cache.backends.db.DatabaseCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)


@register(Tags.security, Tags.caches)
def check_shared_caches(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Rate limits and ended sessions must be seen by every process."""
    if settings.DEBUG:
        return []
    rate_cache = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    uses = {
        rate_cache: "rate limits",
        app_settings.SESSION_CACHE: "ended sessions",
    }
    errors: list[CheckMessage] = [
        Error(
            f"The cache {alias!r}, used for {what}, is local to one process.",
            hint="Point it at Redis (django-redis), shared by every web process.",
            id="passwordless.E008",
        )
        for alias, what in uses.items()
        if settings.CACHES.get(alias, {}).get("BACKEND") in _PROCESS_LOCAL
    ]
    if settings.CACHES.get(rate_cache, {}).get("BACKEND") in _NOT_ATOMIC:
        errors.append(
            Error(
                f"The rate-limit cache {rate_cache!r} has no atomic increment.",
                hint="Concurrent attempts would be undercounted; use Redis (django-redis).",
                id="passwordless.E011",
            )
        )
    return errors


_RATE_SETTINGS = (
    "SEND_RATES_PER_EMAIL",
    "SEND_RATES_PER_IP",
    "VERIFY_RATES_PER_IP",
    "POLL_RATES_PER_IP",
)


@register(Tags.security)
def check_rates(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """A rate that does not parse would fail at the first request, in production."""
    errors: list[CheckMessage] = []
    for name in _RATE_SETTINGS:
        for rate in getattr(app_settings, name):
            try:
                rate_period(rate)
            except ValueError:
                errors.append(
                    Error(
                        f"PASSWORDLESS_{name} has an invalid rate {rate!r}.",
                        hint="Write rates as count/period: '5/h', '30/5m', '100/d'.",
                        id="passwordless.E009",
                    )
                )
    alphabet = app_settings.CODE_ALPHABET
    if len(set(alphabet)) != len(alphabet) or len(alphabet) ** app_settings.CODE_LENGTH < 10**6:
        errors.append(
            Error(
                "PASSWORDLESS_CODE_ALPHABET and CODE_LENGTH give fewer than a million codes, "
                "or the alphabet repeats a symbol.",
                hint="Six digits is the floor (NIST SP 800-63B-4 §3.1.3.2).",
                id="passwordless.E012",
            )
        )
    if not settings.DEBUG and settings.SESSION_ENGINE.endswith("cache"):
        alias = getattr(settings, "SESSION_CACHE_ALIAS", "default")
        if settings.CACHES.get(alias, {}).get("BACKEND") in _PROCESS_LOCAL:
            errors.append(
                Error(
                    "Sessions are kept in a cache local to one process.",
                    hint="Use Redis for SESSION_CACHE_ALIAS, or database-backed sessions.",
                    id="passwordless.E010",
                )
            )
    return errors


@register(Tags.security)
def check_adapter(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """An adapter that mints guessable secrets is for load benchmarks, never for a site."""
    try:
        adapter = get_adapter()
    except ImportError as exc:
        return [
            Error(
                f"PASSWORDLESS_ADAPTER {app_settings.ADAPTER!r} cannot be imported: {exc}",
                id="passwordless.E014",
            )
        ]
    if adapter.predictable_secrets:
        return [
            Error(
                f"PASSWORDLESS_ADAPTER {app_settings.ADAPTER!r} mints predictable secrets.",
                hint="It exists for load benchmarks. Use passwordless.adapter.DefaultAdapter "
                "or a subclass that keeps mint_code and mint_token random.",
                id="passwordless.E013",
            )
        ]
    return []


@register(Tags.compatibility)
def check_mail_queue(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Mail goes through Celery unless ``MAIL_QUEUE`` says ``"sync"``: without Celery
    installed, the first email would fail with ``ModuleNotFoundError``. The app does not
    fall back to ``"sync"`` by itself: a worker image that lost Celery would then send in
    every web request instead of saying so."""
    if app_settings.MAIL_QUEUE != "celery" or importlib.util.find_spec("celery") is not None:
        return []
    return [
        Error(
            "PASSWORDLESS_MAIL_QUEUE is 'celery' (the default), but Celery is not installed.",
            hint="Install django-passwordless-email[celery] and run a worker, or set "
            "PASSWORDLESS_MAIL_QUEUE = 'sync' to send mail in the request, after commit.",
            id="passwordless.E015",
        )
    ]


@register(Tags.caches)
def check_redis_urls(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """A Redis URL that cannot work fails every request that needs it: a database the
    server does not have, credentials it refuses. Each URL is tried once, for at most a
    second; a server that does not answer is not reported (it may be starting; ``/readyz``
    says so)."""
    uses: dict[str, list[str]] = {}
    options: dict[str, Any] = {}
    for use, url, url_options in redis_urls():
        uses.setdefault(url, []).append(use)
        options.setdefault(url, url_options)
    errors: list[CheckMessage] = []
    for url, names in uses.items():
        problem = redis_url_problem(url, options[url])
        if problem is not None:
            errors.append(
                Error(
                    f"The Redis URL {masked(url)!r} ({', '.join(names)}) cannot work: {problem}.",
                    hint="Use a database the server has: every use can share one (the "
                    "project tells them apart by key prefixes), and Redis Cluster and many "
                    "managed services have only database 0.",
                    id="passwordless.E020",
                )
            )
    return errors


@register(Tags.security)
def check_trusted_proxies(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Rate limits count clients by address: a proxy list that does not parse would fail the
    first request, and a proxy in front that is not trusted makes every client its address."""
    errors: list[CheckMessage] = [
        Error(
            f"PASSWORDLESS_TRUSTED_PROXIES has {entry!r}, which is not an address, a network "
            "or 'unix'.",
            hint="Write addresses or networks, e.g. '10.0.0.0/8,127.0.0.1', and 'unix' for a "
            "proxy that connects over a unix socket.",
            id="passwordless.E021",
        )
        for entry in invalid_proxies(app_settings.TRUSTED_PROXIES)
    ]
    behind_proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if behind_proxy and not settings.DEBUG and not app_settings.TRUSTED_PROXIES:
        errors.append(
            Error(
                "SECURE_PROXY_SSL_HEADER says a proxy is in front, but "
                "PASSWORDLESS_TRUSTED_PROXIES is empty.",
                hint="Every client would be counted as the proxy, in one rate-limit bucket "
                "that one attacker can fill. Name the proxy's addresses, or 'unix' when it "
                "connects over a unix socket.",
                id="passwordless.E022",
            )
        )
    return errors


@register(Tags.security)
def check_passkeys(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Passkeys take their rp id (the host) and their one origin from SITE_URL: with no
    host there is nothing to bind them to, and an IP address is never a valid rp id."""
    messages: list[CheckMessage] = []
    if app_settings.PASSKEYS:
        host = urlsplit(app_settings.SITE_URL or "").hostname
        if not host:
            messages.append(
                Error(
                    "PASSWORDLESS_PASSKEYS is on, but PASSWORDLESS_SITE_URL has no host "
                    "to be the passkeys' relying party id.",
                    hint="Set PASSWORDLESS_SITE_URL, or set PASSWORDLESS_PASSKEYS = False.",
                    id="passwordless.E030",
                )
            )
        elif _is_ip(host):
            messages.append(
                Warning(
                    f"PASSWORDLESS_SITE_URL's host {host} is an IP address: browsers refuse "
                    "it as a relying party id, so no passkey can be added or used.",
                    hint="Use the site's name (in development, http://localhost:8000), or "
                    "set PASSWORDLESS_PASSKEYS = False.",
                    id="passwordless.W030",
                )
            )
    middleware = "passwordless.web.staff_passkeys.StaffPasskeyMiddleware"
    if app_settings.PASSKEYS_REQUIRED_FOR_STAFF and (
        not app_settings.PASSKEYS or middleware not in settings.MIDDLEWARE
    ):
        messages.append(
            Error(
                "PASSWORDLESS_PASSKEYS_REQUIRED_FOR_STAFF is on, but nothing enforces it.",
                hint=f"Keep PASSWORDLESS_PASSKEYS on and add {middleware!r} to MIDDLEWARE, "
                "after AuthenticationMiddleware.",
                id="passwordless.E031",
            )
        )
    return messages


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
