"""A software WebAuthn authenticator for tests: real answers, every field open to tampering.

One ``SoftAuthenticator`` holds one discoverable credential, an EC P-256 key (ES256), and
answers like a browser's ``navigator.credentials.create()`` (attestation ``none``) and
``.get()`` in their JSON form (base64url byte strings, as ``PublicKeyCredential.toJSON()``
gives them). Each keyword of ``register`` and ``assert_`` changes one thing the server
checks: the origin, the rp id, the challenge, the counter, the flags, the user handle.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["FLAG_AT", "FLAG_UP", "FLAG_UV", "SoftAuthenticator", "b64url", "from_b64url"]

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()


@dataclass
class SoftAuthenticator:
    """One passkey for ``rp_id`` at ``origin``; ``sign_count`` grows by one per use."""

    origin: str
    rp_id: str = "localhost"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    user_handle: bytes = b""
    sign_count: int = 0

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _auth_data(self, rp_id: str, flags: int, count: int, attested: bool) -> bytes:
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", count)
        if attested:
            data += bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
            data += self._cose_key()
        return data

    def register(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        flags: int = FLAG_UP | FLAG_UV | FLAG_AT,
        kind: str = "webauthn.create",
    ) -> dict[str, Any]:
        """The answer to ``navigator.credentials.create({publicKey: options})``."""
        self.user_handle = from_b64url(options["user"]["id"])
        client_data = _client_data(kind, challenge or options["challenge"], origin or self.origin)
        auth_data = self._auth_data(rp_id or self.rp_id, flags, self.sign_count, attested=True)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
        }

    def assert_(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        flags: int = FLAG_UP | FLAG_UV,
        sign_count: int | None = None,
        user_handle: bytes | None = None,
        kind: str = "webauthn.get",
    ) -> dict[str, Any]:
        """The answer to ``navigator.credentials.get({publicKey: options})``; the counter
        moves on by one unless ``sign_count`` says what to report."""
        if sign_count is None:
            self.sign_count += 1
            sign_count = self.sign_count
        client_data = _client_data(kind, challenge or options["challenge"], origin or self.origin)
        auth_data = self._auth_data(rp_id or self.rp_id, flags, sign_count, attested=False)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        handle = self.user_handle if user_handle is None else user_handle
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(handle),
            },
        }
