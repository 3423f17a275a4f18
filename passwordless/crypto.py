"""Minting and hashing of codes and link tokens.

Secrets come from ``secrets`` only. At rest they are HMAC-SHA256 digests under
a server key (see ``PASSWORDLESS_HASH_KEY``), bound to a purpose and, for
codes, to their request: a database dump alone cannot test a guess offline,
and a code from one request never completes another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from django.utils.crypto import salted_hmac

from .conf import app_settings

__all__ = [
    "digests_equal",
    "hash_binding",
    "hash_code",
    "hash_device",
    "hash_token",
    "is_code_challenge",
    "is_code_verifier",
    "mint_code",
    "mint_token",
    "pkce_matches",
]

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


def hash_device(device_id: str, email: str) -> str:
    """The signature of a trusted-device cookie: its random id, bound to one address."""
    return _digest("device", f"{len(device_id)}:{device_id}:{email}")


def digests_equal(expected_digest: str, candidate_digest: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(expected_digest, candidate_digest)


#: RFC 7636 §4.1: a verifier is 43 to 128 unreserved characters; §4.2: its S256
#: challenge is the unpadded base64url of its SHA-256, always 43 characters.
#: Matched whole (``fullmatch``): ``$`` would let a trailing newline through.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def is_code_verifier(value: str) -> bool:
    return bool(_VERIFIER.fullmatch(value))


def is_code_challenge(value: str) -> bool:
    return bool(_CHALLENGE.fullmatch(value))


def pkce_matches(challenge: str, verifier: str) -> bool:
    """Whether ``verifier`` is the one whose S256 challenge is ``challenge`` (RFC 7636 §4.6),
    compared in constant time. ``plain`` is not supported: it would put the proof itself
    on the wire at the start."""
    if not challenge or not is_code_verifier(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    derived = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(challenge, derived)
