"""Minting and hashing of codes and link tokens.

Secrets come from ``secrets`` only. At rest they are HMAC-SHA256 digests under
a server key (see ``PASSWORDLESS_HASH_KEY``), bound to a purpose and, for
codes, to their request: a database dump alone cannot test a guess offline,
and a code from one request never completes another.
"""

from __future__ import annotations

import hmac
import secrets

from django.utils.crypto import salted_hmac

from .conf import app_settings

__all__ = ["codes_match", "hash_binding", "hash_code", "hash_token", "mint_code", "mint_token"]

#: Bytes of randomness in a link token: 256 bits, well above ASVS's 128.
TOKEN_BYTES = 32


def mint_code(length: int | None = None) -> str:
    """A code of ``CODE_LENGTH`` symbols of ``CODE_ALPHABET``, each drawn uniformly with
    ``secrets.choice`` (never ``random``); with digits, leading zeros included."""
    alphabet = app_settings.CODE_ALPHABET
    return "".join(secrets.choice(alphabet) for _ in range(length or app_settings.CODE_LENGTH))


def mint_token() -> str:
    """A URL-safe link token of 256 random bits."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _digest(purpose: str, value: str) -> str:
    return salted_hmac(
        f"passwordless.{purpose}", value, secret=app_settings.HASH_KEY, algorithm="sha256"
    ).hexdigest()


def hash_code(request_public_id: str, code: str) -> str:
    """Digest of a code, bound to the request it was minted for."""
    return _digest("code", f"{request_public_id}:{code}")


def hash_token(token: str) -> str:
    """Digest of a link token; unique, so it is also the lookup key."""
    return _digest("link", token)


def hash_binding(binding: str) -> str:
    """Digest of the browser-binding secret held in the cookie of the browser that asked."""
    return _digest("binding", binding)


def codes_match(expected_digest: str, candidate_digest: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(expected_digest, candidate_digest)
