"""The signing keys of access tokens, and the JWKS that publishes their public halves.

Keys are Ed25519 (``EdDSA``), PEM, from ``PASSWORDLESS_JWT_PRIVATE_KEYS``: the
first signs, all verify. Each key's ``kid`` is its RFC 7638 thumbprint, so
nothing needs to be configured beside the PEM, and a ``kid`` always names one key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from django.core.exceptions import ImproperlyConfigured

from .conf import app_settings

__all__ = ["ALGORITHM", "SigningKey", "jwks", "signing_key", "verification_key"]

#: The one algorithm tokens are signed and checked with; nothing else is accepted.
ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64(self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@lru_cache(maxsize=4)
def _load(pems: tuple[str, ...]) -> tuple[SigningKey, ...]:
    keys = []
    for pem in pems:
        private_key = load_pem_private_key(pem.encode(), password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ImproperlyConfigured("PASSWORDLESS_JWT_PRIVATE_KEYS must hold Ed25519 keys.")
        public_key = private_key.public_key()
        x = _b64(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))
        thumbprint = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True
        )
        kid = _b64(hashlib.sha256(thumbprint.encode()).digest())
        keys.append(SigningKey(kid=kid, private_key=private_key, public_key=public_key))
    return tuple(keys)


def _keys() -> tuple[SigningKey, ...]:
    keys = _load(app_settings.JWT_PRIVATE_KEYS)
    if not keys:
        raise ImproperlyConfigured("Set PASSWORDLESS_JWT_PRIVATE_KEYS to use JWT sign-in.")
    return keys


def signing_key() -> SigningKey:
    return _keys()[0]


def verification_key(kid: Any) -> Ed25519PublicKey | None:
    """The public key a token names by ``kid``, if it is one of ours."""
    for key in _keys():
        if key.kid == kid:
            return key.public_key
    return None


def jwks() -> dict[str, list[dict[str, str]]]:
    return {"keys": [key.jwk() for key in _keys()]}
