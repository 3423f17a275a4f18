"""Access and refresh tokens for API clients.

Access tokens are short-lived JWTs (EdDSA, one algorithm pinned) that other
services verify with the JWKS. Refresh tokens are opaque random strings stored
only as keyed hashes; they rotate on every use, and a rotated one presented
again revokes its family, unless it comes back within a short grace window
(two tabs refreshing at once), when it gets the very same successor pair. A
reuse past that window is audited (``refresh_reused``) and logged, with the
user but never the token. Staff families get the staff session timeouts.

Revocation reaches access tokens at once through a denylist in the cache,
by token (``jti``) and by family, for as long as a token could still live.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

import jwt
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import caches
from django.db import transaction
from django.http import HttpRequest

from .. import audit, clock, keys
from ..adapter import get_adapter
from ..conf import app_settings
from ..errors import SignInError
from ..models import AuthEvent, RefreshToken, TokenFamily, UserSession

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
    idle, absolute = family_timeouts(user)
    return now < family.created_at + absolute and now < family.last_used_at + idle


def revoke_family(family: TokenFamily, reason: str) -> None:
    """End a family: its refresh tokens fail, and so, at once, do its access tokens."""
    now = clock.now()
    TokenFamily.objects.filter(pk=family.pk, revoked_at=None).update(
        revoked_at=now, revoked_reason=reason
    )
    UserSession.objects.filter(family=family, ended_at=None).update(
        ended_at=now, ended_reason=reason
    )
    _deny(f"fam:{family.public_id}")


def revoke_user(user: AbstractBaseUser, reason: str) -> int:
    """End every family of a user (sign out everywhere, deactivation)."""
    families = list(TokenFamily.objects.filter(user_id=user.pk, revoked_at=None))
    for family in families:
        revoke_family(family, reason)
    return len(families)


def revoke_access_token(claims: dict[str, Any]) -> None:
    """Deny one access token for the rest of its life."""
    _deny(f"jti:{claims['jti']}")


def _deny(key: str) -> None:
    ttl = int((app_settings.ACCESS_TOKEN_LIFETIME + app_settings.JWT_LEEWAY).total_seconds())
    caches[app_settings.TOKEN_CACHE].set(f"passwordless:deny:{key}", 1, timeout=ttl + 1)


def authenticate_access_token(token: str) -> tuple[AbstractBaseUser, dict[str, Any]]:
    """The user and claims of a valid, unrevoked access token, or ``token_invalid``.

    Only ``EdDSA`` is accepted, the key is chosen by ``kid`` among ours (never
    from ``jku``/``x5u``/``jwk`` headers), ``iss`` and ``aud`` must match
    exactly, and the token must say it is an access token. We issue no ``crit``
    header, so a token with one is refused (RFC 7515 §4.1.11: an extension we do
    not understand must not be ignored).
    """
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != ACCESS_TYPE or {"jku", "x5u", "jwk", "x5c", "crit"} & set(header):
            raise SignInError("token_invalid")
        key = keys.verification_key(header.get("kid"))
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
    denied = caches[app_settings.TOKEN_CACHE].get_many(
        [f"passwordless:deny:jti:{claims['jti']}", f"passwordless:deny:fam:{claims['fam']}"]
    )
    if denied:
        raise SignInError("token_invalid")
    user = get_user_model()._default_manager.filter(pk=claims["sub"]).first()
    if user is None or not getattr(user, "is_active", True):
        raise SignInError("token_invalid")
    return user, claims


def family_of(claims: dict[str, Any]) -> TokenFamily | None:
    return TokenFamily.objects.filter(public_id=claims.get("fam")).first()


def family_of_refresh(raw_refresh: str) -> TokenFamily | None:
    row = RefreshToken.objects.select_related("family").filter(token_hash=_hash(raw_refresh))
    found = row.first()
    return found.family if found else None
