"""Access and refresh tokens for API clients.

Access tokens are short-lived JWTs (EdDSA, one algorithm pinned) that other
services verify with the JWKS. Refresh tokens are opaque random strings stored
only as keyed hashes; they rotate on every use, and a rotated one presented
again revokes its family, unless it comes back within a short grace window
(two tabs refreshing at once), when it gets the very same successor pair. A
reuse past that window is audited (``refresh_reused``) and logged, with the
user but never the token. Staff families get the staff session timeouts.

Revocation reaches access tokens at once: every request reads the token's family
from the database, in the statement that loads the user, so a revoked family refuses
its access tokens from their next request on, on every process, whatever a cache holds.
What this process already verified of a token (signature and claims) it remembers by
the token's exact text, so a repeated token skips the signature check.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

import jwt
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import transaction
from django.http import HttpRequest

from .. import audit, clock, keys
from ..adapter import get_adapter
from ..conf import app_settings
from ..errors import SignInError
from ..models import AuthEvent, RefreshToken, TokenFamily, UserSession
from ..rawsql import Names, NotApplicable, UserStatement

__all__ = [
    "TokenPair",
    "authenticate_access_token",
    "family_is_live",
    "family_of",
    "family_of_refresh",
    "family_timeouts",
    "issue_family",
    "issue_pair",
    "refresh",
    "revoke_access_token",
    "revoke_family",
    "revoke_user",
]

ACCESS_TYPE = "at+jwt"
_REFRESH_PREFIX = "rt_"

logger = logging.getLogger("passwordless")


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int

    def as_json(self) -> dict[str, Any]:
        return {
            "access": self.access,
            "refresh": self.refresh,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def _hash(refresh_token: str) -> str:
    return hmac.new(_key(b"refresh"), refresh_token.encode(), sha256).hexdigest()


def _successor_of(refresh_token: str) -> str:
    # Derived, not stored: the same duplicate refresh can be answered with the same
    # successor, while the database still holds hashes only.
    digest = hmac.new(_key(b"successor"), refresh_token.encode(), sha256).digest()
    return _REFRESH_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _key(purpose: bytes) -> bytes:
    return sha256(b"passwordless.tokens." + purpose + app_settings.HASH_KEY.encode()).digest()


def _access_token(family: TokenFamily, user_id: Any, jti: str, issued_at: datetime) -> str:
    lifetime = app_settings.ACCESS_TOKEN_LIFETIME
    claims = {
        "iss": app_settings.JWT_ISSUER,
        "aud": app_settings.JWT_AUDIENCE,
        "sub": str(user_id),
        "iat": int(issued_at.timestamp()),
        "nbf": int(issued_at.timestamp()),
        "exp": int((issued_at + lifetime).timestamp()),
        "jti": jti,
        "fam": family.public_id,
    }
    key = keys.signing_key()
    return jwt.encode(
        claims,
        key.private_key,
        algorithm=keys.ALGORITHM,
        headers={"kid": key.kid, "typ": ACCESS_TYPE},
    )


def _pair(family: TokenFamily, row: RefreshToken, raw_refresh: str) -> TokenPair:
    access = _access_token(family, family.user_id, row.access_jti, row.issued_at)
    lifetime = int(app_settings.ACCESS_TOKEN_LIFETIME.total_seconds())
    return TokenPair(access=access, refresh=raw_refresh, expires_in=lifetime)


def _new_row(family: TokenFamily, raw: str, now: datetime) -> RefreshToken:
    return RefreshToken.objects.create(
        family=family, token_hash=_hash(raw), access_jti=secrets.token_hex(16), issued_at=now
    )


def issue_pair(user: AbstractBaseUser) -> TokenPair:
    """A new family for a sign-in, with its first access and refresh tokens."""
    return issue_family(user)[0]


def issue_family(user: AbstractBaseUser) -> tuple[TokenPair, TokenFamily]:
    """A new family for a sign-in and its first pair (``signin.sign_in_with_tokens``)."""
    now = clock.now()
    family = TokenFamily.objects.create(user_id=user.pk, created_at=now, last_used_at=now)
    raw = _REFRESH_PREFIX + secrets.token_urlsafe(32)
    return _pair(family, _new_row(family, raw, now), raw), family


def refresh(raw_refresh: str, request: HttpRequest | None = None) -> TokenPair:
    """Rotate a refresh token. Raises ``token_invalid`` or ``refresh_reused`` (401).

    ``request``, when given, puts the client's address and agent on the audit event
    of a reuse.
    """
    if not isinstance(raw_refresh, str) or not raw_refresh.startswith(_REFRESH_PREFIX):
        raise SignInError("token_invalid")
    now = clock.now()
    reused = ""
    with transaction.atomic():
        row = (
            RefreshToken.objects.select_for_update().filter(token_hash=_hash(raw_refresh)).first()
        )
        if row is None:
            raise SignInError("token_invalid")
        family = (
            TokenFamily.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=row.family_id)
        )
        if not family_is_live(family, family.user, now):
            raise SignInError("token_invalid")
        if not get_adapter().can_sign_in(family.user):
            raise SignInError("token_invalid")
        if row.used_at is not None:
            # The same pair again only for a duplicate of the rotation that just
            # happened: once the successor was itself used, this is a replay.
            successor = row.successor
            late = now - row.used_at > app_settings.REFRESH_REUSE_GRACE
            if successor is not None and successor.used_at is None and not late:
                return _pair(family, successor, _successor_of(raw_refresh))
            reused = "after_grace" if late else "successor_used"
        else:
            successor_raw = _successor_of(raw_refresh)
            successor = _new_row(family, successor_raw, now)
            row.used_at = now
            row.successor = successor
            row.save(update_fields=["used_at", "successor"])
            family.last_used_at = now
            family.save(update_fields=["last_used_at"])
            UserSession.objects.filter(family=family).update(last_seen_at=now)
            return _pair(family, successor, successor_raw)
    if reused:
        # A stolen copy and the real client both hold it: end the whole family, and
        # say so, since one of the two is an attacker (the family id, never the token).
        revoke_family(family, reason="refresh_reused")
        audit.record(
            AuthEvent.Kind.REFRESH_REUSED, request=request, user=family.user, reason=reused
        )
        logger.warning(
            "refresh token reused (%s): token family %s revoked, user_id=%s",
            reused,
            family.public_id,
            family.user_id,
        )
    raise SignInError("refresh_reused")


def family_timeouts(user: object) -> tuple[timedelta, timedelta]:
    """The idle and absolute lifetimes of ``user``'s token families.

    Staff get the staff session timeouts (30 minutes, 12 hours), as in the browser: an
    API client must not be the long-lived way into a staff account.
    """
    idle, absolute = app_settings.REFRESH_TOKEN_IDLE, app_settings.REFRESH_TOKEN_LIFETIME
    if getattr(user, "is_staff", False):
        staff_idle = app_settings.STAFF_SESSION_IDLE_TIMEOUT
        return min(idle, staff_idle), min(absolute, app_settings.STAFF_SESSION_ABSOLUTE_TIMEOUT)
    return idle, absolute


def family_is_live(family: TokenFamily, user: object, now: datetime) -> bool:
    """Whether ``family`` (of ``user``) may still refresh: not revoked, neither idle nor old.

    The one rule, for ``refresh`` and for the list of sessions alike.
    """
    if family.revoked_at is not None:
        return False
    return _is_live(family.created_at, family.last_used_at, user, now)


def _is_live(created_at: datetime, last_used_at: datetime, user: object, now: datetime) -> bool:
    """An unrevoked family's idle and absolute limits (``family_timeouts``) at ``now``."""
    idle, absolute = family_timeouts(user)
    return now < created_at + absolute and now < last_used_at + idle


def revoke_family(family: TokenFamily, reason: str) -> None:
    """End a family: its refresh tokens fail, and so, at once, do its access tokens.

    ``revoked_at`` is what refuses them: ``authenticate_access_token`` reads the family's
    row on every request, in the statement that loads the user.
    """
    now = clock.now()
    TokenFamily.objects.filter(pk=family.pk, revoked_at=None).update(
        revoked_at=now, revoked_reason=reason
    )
    UserSession.objects.filter(family=family, ended_at=None).update(
        ended_at=now, ended_reason=reason
    )


def revoke_user(user: AbstractBaseUser, reason: str) -> int:
    """End every family of a user (sign out everywhere, deactivation)."""
    families = list(TokenFamily.objects.filter(user_id=user.pk, revoked_at=None))
    for family in families:
        revoke_family(family, reason)
    return len(families)


def revoke_access_token(claims: dict[str, Any], reason: str = "logout") -> None:
    """Refuse an access token from its next request on, by revoking its whole family.

    There is no denial of one token alone: the check of every request reads families
    (``authenticate_access_token``). The one caller, logout, ends that family anyway.
    """
    family = family_of(claims)
    if family is not None:
        revoke_family(family, reason)


def authenticate_access_token(token: str) -> tuple[AbstractBaseUser, dict[str, Any]]:
    """The user and claims of a valid, unrevoked access token, or ``token_invalid``.

    Only ``EdDSA`` is accepted, the key is chosen by ``kid`` among ours (never
    from ``jku``/``x5u``/``jwk`` headers), ``iss`` and ``aud`` must match
    exactly, and the token must say it is an access token. We issue no ``crit``
    header, so a token with one is refused (RFC 7515 §4.1.11: an extension we do
    not understand must not be ignored).

    Revocation is read from the database on every request, in the one statement that
    loads the user (``_user_of``): the token's family must exist, be the user's, be
    unrevoked and still live (``family_is_live``: its idle and absolute limits, the
    staff ones for staff). Nothing about it is in a cache, so no flush or restart of
    one can bring a revoked token back. A token verified before by this process is
    found by its exact text (``_VerifiedTokens``) and skips the signature check only.
    """
    now = clock.now()
    claims = _verified.claims(token, now)
    if claims is None:
        claims = _verify(token, now)
    user = _user_of(claims, now)
    if user is None or not getattr(user, "is_active", True):
        raise SignInError("token_invalid")
    return user, claims


def _verify(token: str, now: datetime) -> dict[str, Any]:
    """Full verification: header, signature and claims; remembered when it passes."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != ACCESS_TYPE or {"jku", "x5u", "jwk", "x5c", "crit"} & set(header):
            raise SignInError("token_invalid")
        kid = header.get("kid")
        key = keys.verification_key(kid)
        if key is None:
            raise SignInError("token_invalid")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[keys.ALGORITHM],
            audience=app_settings.JWT_AUDIENCE,
            # A list, compared by equality: PyJWT 2.10.0 checked a string issuer with
            # ``in``, so a substring of it passed (CVE-2024-53861).
            issuer=[app_settings.JWT_ISSUER],
            leeway=app_settings.JWT_LEEWAY,
            options={"require": ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "fam"]},
        )
    except jwt.PyJWTError as exc:
        raise SignInError("token_invalid") from exc
    # PyJWT checked that sub and jti are strings. Neither id may hold a NUL, which
    # PostgreSQL refuses in a string (an error, where a lookup should find nothing).
    if not isinstance(claims["fam"], str) or "\x00" in claims["fam"] + claims["sub"]:
        raise SignInError("token_invalid")
    # PyJWT checked the time claims against the system clock; the app's clock (what
    # tests move) must agree, here as on a hit of the memo.
    verified = _Verified(
        claims, key, kid, int(claims["iat"]), int(claims["nbf"]), int(claims["exp"])
    )
    if not verified.in_time(now.timestamp()):
        raise SignInError("token_invalid")
    _verified.remember(token, verified)
    return dict(claims)


@dataclass(frozen=True, slots=True)
class _Verified:
    """What a full verification of one token's text found (PyJWT's ``int()`` times)."""

    claims: dict[str, Any]
    key: Any  # the Ed25519PublicKey that verified it
    kid: Any
    iat: int
    nbf: int
    exp: int

    def in_time(self, now: float) -> bool:
        """PyJWT's rules at ``now``: ``iat`` and ``nbf`` not in the future, ``exp`` not
        past, each with the leeway."""
        leeway = app_settings.JWT_LEEWAY.total_seconds()
        return self.iat <= now + leeway and self.nbf <= now + leeway and now - leeway < self.exp


class _VerifiedTokens:
    """Access tokens whose header, signature and claims this process verified, by their
    exact text, so that a client presenting the same token again skips the signature
    check (EdDSA, ~140 µs; a hit costs a dict lookup and the checks below).

    A hit is taken only if the time claims still pass (``exp``, ``nbf``, ``iat`` with the
    configured leeway, against the app's clock and the system clock, as a full
    verification checks both) and the key that verified the token is still the one its
    ``kid`` names among the configured keys (a key removed, or the keys reloaded, takes
    effect at once); otherwise the entry is dropped and the token is verified in full.
    Any other text, a forged or altered token, is another key: a miss, so a full
    verification. Failures are never remembered, so only tokens signed with our keys can
    fill it. Revocation and the user are not in it: they are read on every request.

    Bounded: at most ``MAX`` entries (measured: ~1.3 KB of claims and entry beside the
    ~0.5 KB text of the token, so ~7.5 MB per process when full, which takes 4096
    distinct live tokens presented to one process within a token's lifetime), the oldest
    inserted evicted first, which for tokens of one fixed lifetime is about the first to
    expire. Thread-safe (the dev server and gthread workers run requests in
    threads): a lookup is one ``dict.get`` (atomic under the GIL, and on free-threaded
    builds, whose dicts lock themselves); every change (insert, evict, drop, clear) holds
    one lock, so the eviction's ``next(iter(...))`` never sees the dict change under it.
    Cleared when a test changes a setting (``setting_changed``): keys, issuer, audience.
    """

    MAX = 4096

    def __init__(self) -> None:
        self._entries: dict[str, _Verified] = {}
        self._lock = threading.Lock()

    def claims(self, token: str, now: datetime) -> dict[str, Any] | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if (
            keys.verification_key(entry.kid) is entry.key
            and entry.in_time(now.timestamp())
            and entry.in_time(time.time())
        ):
            return dict(entry.claims)  # a copy: the caller's to keep or change
        with self._lock:
            if self._entries.get(token) is entry:
                del self._entries[token]
        return None

    def remember(self, token: str, entry: _Verified) -> None:
        with self._lock:
            self._entries.pop(token, None)
            while len(self._entries) >= self.MAX:
                del self._entries[next(iter(self._entries))]
            self._entries[token] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries


_verified = _VerifiedTokens()

#: The extra columns of ``_user_of``'s statement (``RawQuerySet`` sets them on the user,
#: whence they are popped): the family's times, that ``family_is_live`` judges.
_FAMILY_TIMES = {
    "created_at": "passwordless_family_created_at",
    "last_used_at": "passwordless_family_last_used_at",
}


def _user_of(claims: dict[str, Any], now: datetime) -> AbstractBaseUser | None:
    """The token's user, if its family is the user's, unrevoked and live: one statement.

    The statement reads the user's row joined to the family's, unrevoked, with the
    family's times, which ``_is_live`` then judges as ``family_is_live`` does (the staff
    limits for staff). It is written once per process from the models' ``_meta`` and run
    raw, because the ORM's compilation costs more than the read. Measured per call, on
    PostgreSQL on the (slow, shared) development box, where an EdDSA verification took
    175 µs: this statement through ``raw()`` 330-360 µs (without the family's two times
    240-290 µs); the same join through the ORM, ``.filter(pk=...,
    token_families__public_id=..., token_families__revoked_at=None).first()``, 710-880 µs,
    of which compiling it 210-240 µs; the former ORM read of the user alone, 450-500 µs.
    """
    try:
        found = _USER_AND_FAMILY.load(claims["sub"], lambda pk: [pk, claims["fam"]])
    except NotApplicable:
        return _user_of_orm(claims, now)
    if found is None:
        return None  # no such user or family, or a sub that is no primary key
    user, times = found
    created_at, last_used_at = (times[alias] for alias in _FAMILY_TIMES.values())
    return user if _is_live(created_at, last_used_at, user, now) else None


def _user_of_orm(claims: dict[str, Any], now: datetime) -> AbstractBaseUser | None:
    """``_user_of`` in two ORM reads, where one plain statement cannot stand for them."""
    try:
        user = get_user_model()._default_manager.filter(pk=claims["sub"]).first()
    except (TypeError, ValueError, ValidationError):
        return None
    if user is None:
        return None
    family = TokenFamily.objects.filter(public_id=claims["fam"], user_id=user.pk).first()
    return user if family is not None and family_is_live(family, user, now) else None


def _write(names: Names) -> str:
    """The user's row and the family's times, if the token's family is the user's and
    unrevoked."""
    family = names.column
    q = names.connection.ops.quote_name
    columns = names.columns + [
        f"{family(TokenFamily, name)} AS {q(alias)}" for name, alias in _FAMILY_TIMES.items()
    ]
    families = q(TokenFamily._meta.db_table)
    join = f"{names.users} INNER JOIN {families} ON {family(TokenFamily, 'user')} = {names.pk}"
    where = (
        f"{names.pk} = %s AND {family(TokenFamily, 'public_id')} = %s"
        f" AND {family(TokenFamily, 'revoked_at')} IS NULL"
    )
    return f"SELECT {', '.join(columns)} FROM {join} WHERE {where}"  # noqa: S608


_USER_AND_FAMILY = UserStatement(
    _write, beside=TokenFamily, extra={alias: name for name, alias in _FAMILY_TIMES.items()}
)


def _forget(**kwargs: Any) -> None:
    """A test changed the keys, the issuer, the audience or the user model."""
    setting = str(kwargs.get("setting", ""))
    if setting.startswith("PASSWORDLESS_") or setting in ("AUTH_USER_MODEL", "DATABASES"):
        _verified.clear()


setting_changed.connect(_forget, dispatch_uid="passwordless.services.tokens.forget")


def family_of(claims: dict[str, Any]) -> TokenFamily | None:
    return TokenFamily.objects.filter(public_id=claims.get("fam")).first()


def family_of_refresh(raw_refresh: str) -> TokenFamily | None:
    row = RefreshToken.objects.select_related("family").filter(token_hash=_hash(raw_refresh))
    found = row.first()
    return found.family if found else None
