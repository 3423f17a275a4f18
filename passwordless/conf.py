"""Settings of the app, read lazily from ``PASSWORDLESS_*`` Django settings.

Each property is one setting with its documented default. Values are read on
every access, so ``override_settings`` in tests takes effect at once. Durations
accept seconds (int or float) or a ``timedelta``.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

__all__ = ["app_settings", "mounted_path"]

_PREFIX = "PASSWORDLESS_"
#: Where the app's first API URL is mounted in the project's URLconf, and its route.
_API_FIRST_URL, _API_FIRST_ROUTE = "passwordless-api:csrf", "csrf"


def _seconds(value: float | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


def _rates(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"1/m,5/h"`` or ``["1/m", "5/h"]``: django-ratelimit rate strings."""
    if isinstance(value, str):
        value = value.split(",")
    return tuple(r.strip() for r in value if r.strip())


def _names(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"a.com,b.org"`` or ``["a.com", "b.org"]``, lower-cased and stripped."""
    if isinstance(value, str):
        value = value.split(",")
    return tuple(v.strip().lower().strip(".") for v in value if v.strip())


#: The verify endpoints of the CAPTCHAs that ``CAPTCHA`` names.
_CAPTCHA_VERIFY_URLS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
}


def mounted_path(viewname: str, *args: str) -> str | None:
    """The path of one of the app's URLs where the project mounted it, as
    ``request.path_info`` sees it (without the script prefix), or ``None`` when the
    URLconf does not include it. Called when needed, never at import: the URLconf
    loads after the settings."""
    try:
        path = reverse(viewname, args=args)
    except NoReverseMatch:
        return None
    return "/" + path.removeprefix(get_script_prefix()).lstrip("/")


def _api_prefix() -> str:
    # Asked on every request (``BearerTokenMiddleware``), where ``reverse()`` is the
    # cost: the answer is kept per URLconf and script prefix.
    return _api_prefix_of(str(get_urlconf() or settings.ROOT_URLCONF), get_script_prefix())


@functools.lru_cache(maxsize=64)
def _api_prefix_of(urlconf: str, script_prefix: str) -> str:
    path = mounted_path(_API_FIRST_URL)
    return "/api/" if path is None else path.removesuffix(_API_FIRST_ROUTE)


def _forget_api_prefixes(**kwargs: Any) -> None:
    _api_prefix_of.cache_clear()


# A test that swaps the URLconf's contents under the same name says so with this signal.
setting_changed.connect(_forget_api_prefixes, dispatch_uid="passwordless.conf.api_prefix")


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
    def CODE_ALPHABET(self) -> str:
        """The symbols a code is drawn from (the ten digits). Letters are compared without
        case; a system check asks for at least a million possible codes."""
        return str(self._get("CODE_ALPHABET", "0123456789"))

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
        """Whether the first verified sign-in of an unknown email may create an account
        (True). ``False`` closes sign-up whatever ``SIGNUP_POLICY`` says: the older name
        of ``SIGNUP_POLICY = "closed"``."""
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
        """Authentication backend recorded in the session by ``login()``.

        ``passwordless.backends.SessionModelBackend`` when ``AUTHENTICATION_BACKENDS`` lists
        it, else ``django.contrib.auth.backends.ModelBackend``: Django signs out a session
        whose backend is not listed.
        """
        value = self._get("AUTH_BACKEND", None)
        if value:
            return str(value)
        backend = "passwordless.backends.SessionModelBackend"
        if backend in settings.AUTHENTICATION_BACKENDS:
            return backend
        return "django.contrib.auth.backends.ModelBackend"

    @property
    def FROM_EMAIL(self) -> str | None:
        """Sender of the sign-in email; ``DEFAULT_FROM_EMAIL`` when unset."""
        value = self._get("FROM_EMAIL", None)
        return str(value) if value else None

    @property
    def LOGIN_REDIRECT_URL(self) -> str:
        """Where a signed-in person lands without a ``next``; ``LOGIN_REDIRECT_URL`` by default."""
        return str(self._get("LOGIN_REDIRECT_URL", settings.LOGIN_REDIRECT_URL))

    # Abuse resistance.

    @property
    def TRUSTED_PROXIES(self) -> tuple[str, ...]:
        """Addresses or networks of the proxies whose ``X-Forwarded-For`` is believed (none)."""
        return tuple(self._get("TRUSTED_PROXIES", ()))

    @property
    def SEND_RATES_PER_EMAIL(self) -> tuple[str, ...]:
        """Emails one address may be sent, starts and resends together (1/m and 5/h)."""
        return _rates(self._get("SEND_RATES_PER_EMAIL", "1/m,5/h"))

    @property
    def SEND_RATES_PER_IP(self) -> tuple[str, ...]:
        """Sign-ins one client address may start or resend (20/h; IPv6 per /64)."""
        return _rates(self._get("SEND_RATES_PER_IP", "20/h"))

    @property
    def VERIFY_RATES_PER_IP(self) -> tuple[str, ...]:
        """Codes and links one client address may submit (30 per 5 minutes)."""
        return _rates(self._get("VERIFY_RATES_PER_IP", "30/5m"))

    @property
    def POLL_RATES_PER_IP(self) -> tuple[str, ...]:
        """Status polls of waiting pages from one client address (120/m: every 2 s, with room)."""
        return _rates(self._get("POLL_RATES_PER_IP", "120/m"))

    @property
    def FAILURE_LIMIT(self) -> int:
        """Consecutive wrong codes for one address, across requests, before waits begin (20)."""
        return int(self._get("FAILURE_LIMIT", 20))

    @property
    def FAILURE_BACKOFF(self) -> tuple[timedelta, timedelta]:
        """The first and the longest wait once ``FAILURE_LIMIT`` is reached (30 s, 1 h).

        Each further wrong code doubles the wait, up to the longest.
        """
        first, longest = self._get("FAILURE_BACKOFF", (30, 3600))
        return _seconds(first), _seconds(longest)

    @property
    def CROSS_DEVICE_APPROVAL(self) -> bool:
        """Whether a link opened on another device may approve the waiting one by its number."""
        return bool(self._get("CROSS_DEVICE_APPROVAL", True))

    @property
    def APPROVAL_FAILURE_LIMIT(self) -> int:
        """Wrong numbers typed on approval pages for one address, across requests, after
        which approving from another device is off until that address signs in by code or
        by a link in the browser that asked (3): a guesser's whole chance is 3 in 100."""
        return int(self._get("APPROVAL_FAILURE_LIMIT", 3))

    @property
    def TRUSTED_DEVICE_LIFETIME(self) -> timedelta:
        """How long a browser that signed in stays trusted for its address (365 days): its
        own sends and codes are then judged by budgets that an attacker flooding the
        address cannot spend (OWASP's device cookies against lockout)."""
        return _seconds(self._get("TRUSTED_DEVICE_LIFETIME", 365 * 24 * 3600))

    @property
    def ADMIN_PASSWORDS(self) -> bool:
        """Whether ``/admin/login/`` still takes passwords (``False``: it hands over to the
        email flow; staff need no password)."""
        return bool(self._get("ADMIN_PASSWORDS", False))

    # The outbox.

    @property
    def MAIL_QUEUE(self) -> str:
        """``"celery"`` (a worker sends, with retries) or ``"sync"`` (sent in the request,
        after commit, for projects without Celery)."""
        return str(self._get("MAIL_QUEUE", "celery"))

    @property
    def SWEEP_AFTER(self) -> timedelta:
        """A request still ``pending`` this long after it was made is queued again (30 s)."""
        return _seconds(self._get("SWEEP_AFTER", 30))

    @property
    def REQUEST_RETENTION(self) -> timedelta:
        """Expired requests (with their hashed secrets) are deleted after this (7 days)."""
        return _seconds(self._get("REQUEST_RETENTION", 7 * 24 * 3600))

    @property
    def EVENT_RETENTION(self) -> timedelta:
        """Audit rows are deleted after this (90 days)."""
        return _seconds(self._get("EVENT_RETENTION", 90 * 24 * 3600))

    @property
    def RATE_LIMITED_EVENT_WINDOW(self) -> timedelta:
        """Refusals by a rate limit are audited as one ``rate_limited`` row per reason,
        client and window of this length, with a count (1 hour): a flood of refused
        requests must not become a flood of rows."""
        return _seconds(self._get("RATE_LIMITED_EVENT_WINDOW", 3600))

    # JSON API and JWT.

    @property
    def JWT_PRIVATE_KEYS(self) -> tuple[str, ...]:
        """PEM private keys (Ed25519); the first signs, all verify. Add a second to rotate:
        tokens signed by a key removed from the list stop working."""
        value = self._get("JWT_PRIVATE_KEYS", ())
        return (value,) if isinstance(value, str) else tuple(value)

    @property
    def JWT_ISSUER(self) -> str:
        """``iss`` of access tokens; ``SITE_URL`` by default."""
        return str(self._get("JWT_ISSUER", None) or self.SITE_URL or "")

    @property
    def JWT_AUDIENCE(self) -> str:
        """``aud`` of access tokens, checked exactly; ``SITE_URL`` by default."""
        return str(self._get("JWT_AUDIENCE", None) or self.SITE_URL or "")

    @property
    def ACCESS_TOKEN_LIFETIME(self) -> timedelta:
        """Access tokens live 5 minutes (at most 15: a system check says so)."""
        return _seconds(self._get("ACCESS_TOKEN_LIFETIME", 300))

    @property
    def JWT_LEEWAY(self) -> timedelta:
        """Clock skew allowed when checking ``exp`` and ``nbf`` (30 s; at most 60)."""
        return _seconds(self._get("JWT_LEEWAY", 30))

    @property
    def REFRESH_TOKEN_LIFETIME(self) -> timedelta:
        """A refresh family ends this long after sign-in, used or not (30 days)."""
        return _seconds(self._get("REFRESH_TOKEN_LIFETIME", 30 * 24 * 3600))

    @property
    def REFRESH_TOKEN_IDLE(self) -> timedelta:
        """A refresh family unused this long ends (7 days)."""
        return _seconds(self._get("REFRESH_TOKEN_IDLE", 7 * 24 * 3600))

    @property
    def REFRESH_REUSE_GRACE(self) -> timedelta:
        """A refresh token presented again this soon after its rotation gets the same
        successor pair (a client retrying a refresh whose answer it lost, two tabs at
        once), not a revoked family (10 s). As short as the client's retry needs
        (RFC 9700 §4.14.2): inside it, a stolen copy is indistinguishable from a retry."""
        return _seconds(self._get("REFRESH_REUSE_GRACE", 10))

    @property
    def BEARER_PATH_PREFIXES(self) -> tuple[str, ...]:
        """Paths where ``Authorization: Bearer`` authenticates: the JSON API's mount
        point by default (``("/api/auth/",)`` when it is included at ``api/auth/``,
        ``("/api/",)`` when it is not included at all). Never the admin, whose staff
        sessions have their own, shorter timeouts."""
        value = self._get("BEARER_PATH_PREFIXES", None)
        return (_api_prefix(),) if value is None else tuple(value)

    @property
    def MAX_JSON_BODY(self) -> int:
        """Largest JSON body the API reads, in bytes (16 KiB)."""
        return int(self._get("MAX_JSON_BODY", 16 * 1024))

    # Sessions.

    @property
    def MAX_SESSIONS(self) -> int:
        """Signed-in sessions (browsers and API clients) one user may have at once (5)."""
        return int(self._get("MAX_SESSIONS", 5))

    @property
    def SESSION_LIMIT_POLICY(self) -> str:
        """Beyond ``MAX_SESSIONS``: ``"end_oldest"`` (default) or ``"refuse"`` the new one."""
        return str(self._get("SESSION_LIMIT_POLICY", "end_oldest"))

    @property
    def SESSION_CACHE(self) -> str:
        """Cache alias that remembers, for every process, whether each session has ended;
        the database row decides (``default``)."""
        return str(self._get("SESSION_CACHE", "default"))

    @property
    def SESSION_IDLE_TIMEOUT(self) -> timedelta:
        """A session unused this long ends (24 hours)."""
        return _seconds(self._get("SESSION_IDLE_TIMEOUT", 24 * 3600))

    @property
    def SESSION_ABSOLUTE_TIMEOUT(self) -> timedelta:
        """A session ends this long after sign-in, used or not (14 days)."""
        return _seconds(self._get("SESSION_ABSOLUTE_TIMEOUT", 14 * 24 * 3600))

    @property
    def STAFF_SESSION_IDLE_TIMEOUT(self) -> timedelta:
        """Idle timeout of staff sessions (30 minutes)."""
        return _seconds(self._get("STAFF_SESSION_IDLE_TIMEOUT", 30 * 60))

    @property
    def STAFF_SESSION_ABSOLUTE_TIMEOUT(self) -> timedelta:
        """Absolute timeout of staff sessions (12 hours)."""
        return _seconds(self._get("STAFF_SESSION_ABSOLUTE_TIMEOUT", 12 * 3600))

    # Step-up (re-authentication).

    @property
    def REAUTHENTICATION_TIMEOUT(self) -> timedelta:
        """How long a fresh proof (a passkey, or an emailed code) lets a session do
        sensitive things, the sign-in itself included (5 minutes)."""
        return _seconds(self._get("REAUTHENTICATION_TIMEOUT", 5 * 60))

    # Passkeys (WebAuthn).

    @property
    def PASSKEYS(self) -> bool:
        """Whether people may add passkeys and sign in or step up with them (True). Off,
        the passkey pages and endpoints answer ``passkeys_off`` and nothing offers them."""
        return bool(self._get("PASSKEYS", True))

    @property
    def PASSKEYS_REQUIRED_FOR_STAFF(self) -> bool:
        """Whether staff reach ``/admin/`` only from a session signed in with a passkey,
        or stepped up with one within ``REAUTHENTICATION_TIMEOUT`` (False). Needs
        ``passwordless.web.staff_passkeys.StaffPasskeyMiddleware``."""
        return bool(self._get("PASSKEYS_REQUIRED_FOR_STAFF", False))

    @property
    def PASSKEY_RP_NAME(self) -> str:
        """The site's name as authenticators show it beside a passkey (``SITE_URL``'s host
        by default)."""
        return str(self._get("PASSKEY_RP_NAME", None) or "")

    # Security notifications.

    @property
    def NOTIFY_NEW_SIGN_IN(self) -> bool:
        """Email the account on every sign-in from a device not seen before (one without
        the account's trusted-device cookie, an API client), except the account's very
        first (True). A sign-in that ends the oldest session (``MAX_SESSIONS``) is told
        either way."""
        return bool(self._get("NOTIFY_NEW_SIGN_IN", True))

    # Changing the email address.

    @property
    def EMAIL_CHANGE_UNDO_PERIOD(self) -> timedelta:
        """How long the old address may undo a confirmed change of the account's address,
        with the link it is mailed at once (7 days)."""
        return _seconds(self._get("EMAIL_CHANGE_UNDO_PERIOD", timedelta(days=7)))

    # The emails (issue 18; docs/customization.md, "The emails").

    @property
    def SITE_NAME(self) -> str:
        """The site's name in the emails' subjects and words, e.g. ``"Example"``
        (``SITE_URL``'s host by default)."""
        value = self._get("SITE_NAME", None)
        if value:
            return str(value)
        return urlsplit(self.SITE_URL or "").hostname or ""

    @property
    def CODE_IN_SUBJECT(self) -> bool:
        """Whether the subject of an email holding a code starts with it ("123456 is your
        sign-in code for Example"), so phones offer it from the notification (True). The
        subject then shows in notification previews and in mail logs: ``False`` keeps
        the code out of it (docs/security.md)."""
        return bool(self._get("CODE_IN_SUBJECT", True))

    @property
    def MESSAGE_ID_DOMAIN(self) -> str:
        """The domain of every email's ``Message-ID`` (``SITE_URL``'s host by default):
        never the worker machine's own name, which Django would put there."""
        value = self._get("MESSAGE_ID_DOMAIN", None)
        if value:
            return str(value)
        return urlsplit(self.SITE_URL or "").hostname or ""

    # Who may sign up (issue 18; ``passwordless.signup``).

    @property
    def SIGNUP_POLICY(self) -> str:
        """Who may create an account by signing in: ``"open"`` (anyone the domain rules
        below let in), ``"invite_only"`` (only the address of an invitation, through its
        link) or ``"closed"`` (nobody). ``"closed"`` when ``SIGNUP_ENABLED`` is False.
        Existing accounts sign in whatever the policy."""
        if not self.SIGNUP_ENABLED:
            return "closed"
        return str(self._get("SIGNUP_POLICY", "open"))

    @property
    def SIGNUP_ALLOWED_DOMAINS(self) -> tuple[str, ...]:
        """Under ``"open"``, only addresses of these domains or of their subdomains may
        sign up (``example.com`` lets in ``mail.example.com``); empty: every domain (none).
        Punycode or Unicode, as ``addresses.normalize_email`` stores them."""
        return _names(self._get("SIGNUP_ALLOWED_DOMAINS", ()))

    @property
    def SIGNUP_BLOCKED_DOMAINS(self) -> tuple[str, ...]:
        """Domains, with their subdomains, whose addresses may not sign up (none). Checked
        after ``SIGNUP_ALLOWED_DOMAINS``: a blocked subdomain of an allowed domain stays out."""
        return _names(self._get("SIGNUP_BLOCKED_DOMAINS", ()))

    @property
    def SIGNUP_BLOCK_DISPOSABLE(self) -> bool:
        """Whether addresses of disposable-mail domains (and their subdomains) may not sign
        up (False). The list ships with the app (``passwordless/data/disposable_domains.txt``,
        from the disposable-email-domains project)."""
        return bool(self._get("SIGNUP_BLOCK_DISPOSABLE", False))

    @property
    def SIGNUP_DISPOSABLE_DOMAINS_FILE(self) -> str | None:
        """Path of a list of disposable-mail domains that replaces the shipped one, one a
        line, ``#`` for comments (``manage.py passwordless_disposable_domains`` writes
        one); unset: the shipped list."""
        value = self._get("SIGNUP_DISPOSABLE_DOMAINS_FILE", None)
        return str(value) if value else None

    @property
    def INVITATION_LIFETIME(self) -> timedelta:
        """How long an invitation's link may start its sign-up (7 days)."""
        return _seconds(self._get("INVITATION_LIFETIME", timedelta(days=7)))

    # Bots on the email form (``forms.LoginForm``, ``passwordless.captcha``).

    @property
    def FORM_MIN_SECONDS(self) -> float:
        """The email form submitted sooner than this after it was shown is taken for a
        bot's: the same answer as everyone's, and no email (2 s; 0 turns it off)."""
        value = self._get("FORM_MIN_SECONDS", 2)
        return value.total_seconds() if isinstance(value, timedelta) else float(value)

    @property
    def CAPTCHA(self) -> str | None:
        """``None`` (no CAPTCHA), ``"turnstile"`` (Cloudflare Turnstile) or ``"hcaptcha"``:
        the email form, and the JSON API's send, then need a CAPTCHA answer that the
        provider's verify endpoint accepts."""
        value = self._get("CAPTCHA", None)
        return str(value) if value else None

    @property
    def CAPTCHA_SITE_KEY(self) -> str:
        """The CAPTCHA's public site key, put in the widget."""
        return str(self._get("CAPTCHA_SITE_KEY", "") or "")

    @property
    def CAPTCHA_SECRET_KEY(self) -> str:
        """The CAPTCHA's secret key, sent only to its verify endpoint."""
        return str(self._get("CAPTCHA_SECRET_KEY", "") or "")

    @property
    def CAPTCHA_VERIFY_URL(self) -> str:
        """The provider's verify endpoint (Turnstile's
        ``https://challenges.cloudflare.com/turnstile/v0/siteverify``, hCaptcha's
        ``https://api.hcaptcha.com/siteverify`` by default)."""
        value = self._get("CAPTCHA_VERIFY_URL", None)
        if value:
            return str(value)
        return _CAPTCHA_VERIFY_URLS.get(self.CAPTCHA or "", "")

    @property
    def CAPTCHA_TIMEOUT(self) -> float:
        """Seconds to wait for the verify endpoint (3); no answer in time refuses the form."""
        value = self._get("CAPTCHA_TIMEOUT", 3)
        return value.total_seconds() if isinstance(value, timedelta) else float(value)


app_settings = AppSettings()
