"""Passkeys (WebAuthn, by py_webauthn): adding one, signing in with one, stepping up with one.

Every ceremony is a begin and a finish. ``begin_*`` stores a ``PasskeyChallenge`` and
returns the options for ``navigator.credentials.create()`` or ``.get()``; ``finish_*``
takes the challenge up once and verifies the browser's answer against it.

A challenge is single use (its ``used_at`` set by one conditional ``UPDATE``, committed
before the answer is even looked at, so a failed try burns it too), lives
``CHALLENGE_LIFETIME``, and is bound to whoever asked: ``BROWSER``, the keyed hash of the
browser session's key (created first if the session has none; ``login()`` cycles it only
after the challenge is spent), or ``TOKENS``, the keyed hash of the challenge's own id and
of the token session that asked, for an API client, which sends the id back. A challenge
of one purpose never serves another.

The relying party is ``SITE_URL``: its host is the rp id, its origin the one origin
accepted. Credentials must be discoverable and user-verified. No user handle is stored:
it is derived (``user_handle``), and the one an authenticator returns must be its
owner's. A credential whose sign count is nonzero and does not grow is refused as a
possible clone, with an audit event. Adding and removing need a fresh step-up
(``reauthentication``); a sign-in is one, for ``REAUTHENTICATION_TIMEOUT``.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .. import audit, clock, limits, signals
from ..adapter import get_adapter
from ..client import user_agent
from ..conf import app_settings
from ..crypto import digests_equal
from ..devices import describe_user_agent
from ..errors import SignInError
from ..models import AuthEvent, Passkey, PasskeyChallenge, UserSession, is_public_id
from . import reauthentication
from .signin import sign_in, sign_in_with_tokens
from .tokens import TokenPair

__all__ = [
    "BROWSER",
    "CHALLENGE_LIFETIME",
    "OFFER_COOKIE",
    "TOKENS",
    "Ceremony",
    "PasskeySignIn",
    "begin_authentication",
    "begin_reauthentication",
    "begin_registration",
    "find",
    "finish_authentication",
    "finish_reauthentication",
    "finish_registration",
    "has_passkeys",
    "passkeys_of",
    "relying_party",
    "remove",
    "rename",
    "staff_may_enter",
    "user_handle",
]

#: Who a challenge is bound to: the browser session, or the API client holding its id.
BROWSER, TOKENS = "browser", "tokens"
CHALLENGE_LIFETIME = timedelta(minutes=5)
#: The browser session's record of its last passkey step-up (``staff_may_enter``).
SESSION_PASSKEY_PROOF_KEY = "passwordless_passkey_proof"
#: The cookie that remembers, per browser, that it was offered a passkey (pages only).
OFFER_COOKIE = "passwordless_passkey_offer"
#: The challenge the browser session last asked for (also makes an empty session savable).
SESSION_CHALLENGE_KEY = "passwordless_passkey_challenge"
NAME_LENGTH = Passkey._meta.get_field("name").max_length or 64
#: A credential id as the browser sends it (``toJSON()``: unpadded base64url) and as stored.
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,1400}")
Purpose = PasskeyChallenge.Purpose


@dataclass(frozen=True)
class Ceremony:
    """What the client needs to run one ceremony: the challenge's id, to send back with
    the answer, and the WebAuthn options as JSON (base64url for every byte string)."""

    challenge_id: str
    options: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"challenge_id": self.challenge_id, "options": self.options}


@dataclass(frozen=True)
class PasskeySignIn:
    """A passkey sign-in: the account, and its token pair for an API client (else None)."""

    user: AbstractBaseUser
    passkey: Passkey
    tokens: TokenPair | None


def relying_party() -> tuple[str, str]:
    """The rp id (``SITE_URL``'s host) and the one accepted origin (scheme, host, port)."""
    parts = urlsplit(app_settings.SITE_URL or "")
    host = parts.hostname
    if not host:
        raise SignInError("passkeys_off")
    # As a browser serializes its origin: lowercase, no userinfo, no default port.
    port = parts.port
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}.get(parts.scheme):
        netloc = f"{netloc}:{port}"
    return host, f"{parts.scheme}://{netloc}"


def user_handle(user: AbstractBaseUser) -> bytes:
    """The WebAuthn user handle of ``user``: 32 bytes keyed from its pk, never stored and
    never the address, so a credential tells nothing about its account."""
    return salted_hmac(
        "passwordless.passkey.user",
        str(user.pk),
        secret=app_settings.HASH_KEY,
        algorithm="sha256",
    ).digest()


def has_passkeys(user: AbstractBaseUser) -> bool:
    return Passkey.objects.filter(user_id=user.pk).exists()


def passkeys_of(user: AbstractBaseUser) -> list[Passkey]:
    return list(Passkey.objects.filter(user_id=user.pk).order_by("-created_at", "-pk"))


def find(user: AbstractBaseUser, passkey_id: object) -> Passkey | None:
    """One of the user's passkeys by its id as the pages and the API show it."""
    text = str(passkey_id) if isinstance(passkey_id, str | int) else ""
    # ASCII digits only: "²" is a digit to isdigit(), and no number to int().
    if not (text.isascii() and text.isdigit()):
        return None
    if len(text) > 18:
        return None
    return Passkey.objects.filter(user_id=user.pk, pk=int(text)).first()


# Ceremonies.


def begin_registration(
    request: HttpRequest, user_session: UserSession | None, *, client: str
) -> Ceremony:
    """Options to create a discoverable, user-verified passkey for the session's user,
    excluding the ones it has. Needs a fresh step-up (``reauthentication_required``)."""
    user = _fresh_session(request, user_session, "add_passkey").user
    rp_id, _ = relying_party()
    challenge = _new_challenge(request, Purpose.REGISTER, client, user_session, user)
    email = str(getattr(user, user.get_email_field_name()) or user.pk)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=app_settings.PASSKEY_RP_NAME or rp_id,
        user_name=email,
        user_id=user_handle(user),
        user_display_name=email,
        challenge=bytes(challenge.challenge),
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(user),
    )
    return Ceremony(challenge.public_id, json.loads(options_to_json(options)))


def finish_registration(
    request: HttpRequest,
    user_session: UserSession | None,
    *,
    client: str,
    challenge_id: str,
    credential: object,
    name: str = "",
) -> Passkey:
    """Verify the new credential against its challenge and store its public key."""
    user_session = _fresh_session(request, user_session, "add_passkey")
    challenge = _take(request, challenge_id, Purpose.REGISTER, client, user_session)
    if challenge.user_id != user_session.user_id:
        raise SignInError("passkey_challenge_invalid")
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(
            credential=_credential_dict(credential),
            expected_challenge=bytes(challenge.challenge),
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
    except Exception as exc:  # untrusted CBOR and JSON: any parse error is a bad answer
        _refused(request, user_session.user, "passkey_invalid")
        raise SignInError("passkey_invalid") from exc
    try:
        passkey = Passkey.objects.create(
            user_id=user_session.user_id,
            name=_clean_name(name) or describe_user_agent(user_agent(request))[:NAME_LENGTH],
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=_transports(credential),
            aaguid=verified.aaguid,
            backed_up=verified.credential_backed_up,
        )
    except IntegrityError as exc:
        raise SignInError("passkey_exists") from exc
    audit.record(
        AuthEvent.Kind.PASSKEY_ADDED, request=request, user=user_session.user, method="passkey"
    )
    signals.passkey_added.send(Passkey, passkey=passkey, request=request)
    return passkey


def begin_authentication(request: HttpRequest, *, client: str) -> Ceremony:
    """Options to sign in with any discoverable passkey of this site (none listed)."""
    rp_id, _ = relying_party()
    challenge = _new_challenge(request, Purpose.AUTHENTICATE, client, None, None)
    return _assertion_options(challenge, rp_id, [])


def finish_authentication(
    request: HttpRequest, *, client: str, challenge_id: str, credential: object, tokens: bool
) -> PasskeySignIn:
    """Verify the assertion and sign its passkey's owner in: the browser (``login()``), or
    with a token pair (``tokens=True``), through the sign-in step of every method."""
    challenge = _take(request, challenge_id, Purpose.AUTHENTICATE, client, None)
    data = _credential_dict(credential)
    with transaction.atomic():
        passkey = _locked_passkey(data, None)
        user = passkey.user
        # A discoverable credential always returns its handle (no allowCredentials sent).
        _check_user_handle(request, data, user, required=True)
        if not get_adapter().can_sign_in(user):
            raise SignInError("account_disabled")
        clone = _verify_assertion(request, passkey, challenge, data)
        if not clone:
            pair = None
            if tokens:
                pair = sign_in_with_tokens(request, user, None, "passkey")
            else:
                sign_in(request, user, None, "passkey")
            return PasskeySignIn(user, passkey, pair)
    raise _clone_refused(request, passkey)


def begin_reauthentication(
    request: HttpRequest, user_session: UserSession | None, *, client: str
) -> Ceremony:
    """Options to step up with one of the session's user's own passkeys."""
    if user_session is None or user_session.ended_at is not None:
        raise SignInError("not_authenticated")
    rp_id, _ = relying_party()
    descriptors = _descriptors(user_session.user)
    if not descriptors:
        raise SignInError("passkey_none")
    challenge = _new_challenge(
        request, Purpose.REAUTHENTICATE, client, user_session, user_session.user
    )
    return _assertion_options(challenge, rp_id, descriptors)


def finish_reauthentication(
    request: HttpRequest,
    user_session: UserSession | None,
    *,
    client: str,
    challenge_id: str,
    credential: object,
) -> Passkey:
    """Verify an assertion by one of the user's own passkeys, for the session that asked,
    and record the step-up on that session (``reauthentication.record_proof``)."""
    if user_session is None or user_session.ended_at is not None:
        raise SignInError("not_authenticated")
    challenge = _take(request, challenge_id, Purpose.REAUTHENTICATE, client, user_session)
    if challenge.user_id != user_session.user_id:
        raise SignInError("passkey_challenge_invalid")
    data = _credential_dict(credential)
    with transaction.atomic():
        # Another account's passkey is "unknown" here: it proves nothing about this one.
        passkey = _locked_passkey(data, user_session.user_id)
        _check_user_handle(request, data, passkey.user, required=False)
        clone = _verify_assertion(request, passkey, challenge, data)
    if clone:
        raise _clone_refused(request, passkey)
    reauthentication.record_proof(user_session, "passkey", request)
    if client == BROWSER and hasattr(request, "session"):
        request.session[SESSION_PASSKEY_PROOF_KEY] = clock.now().timestamp()
    return passkey


# Managing.


def rename(user: AbstractBaseUser, passkey: Passkey, name: str) -> Passkey:
    cleaned = _clean_name(name)
    if not cleaned:
        raise SignInError("field_invalid", field="name", reason="a name of 1 to 64 characters.")
    Passkey.objects.filter(pk=passkey.pk, user_id=user.pk).update(name=cleaned)
    passkey.name = cleaned
    return passkey


def remove(
    request: HttpRequest | None, user_session: UserSession | None, passkey: Passkey
) -> None:
    """Delete one of the session's user's passkeys; needs a fresh step-up."""
    user_session = _fresh_session(request, user_session, "remove_passkey")
    deleted, _ = Passkey.objects.filter(pk=passkey.pk, user_id=user_session.user_id).delete()
    if not deleted:
        raise SignInError("not_found")
    audit.record(
        AuthEvent.Kind.PASSKEY_REMOVED,
        request=request,
        user=user_session.user,
        method="passkey",
    )
    signals.passkey_removed.send(
        Passkey, user=user_session.user, name=passkey.name, request=request
    )


def staff_may_enter(request: HttpRequest, user_session: UserSession | None) -> bool:
    """``PASSKEYS_REQUIRED_FOR_STAFF``: whether this browser session signed in with a
    passkey, or stepped up with one within ``REAUTHENTICATION_TIMEOUT``."""
    if user_session is None or user_session.ended_at is not None:
        return False
    if user_session.method == "passkey":
        return True
    proof = request.session.get(SESSION_PASSKEY_PROOF_KEY)
    if not isinstance(proof, float | int):
        return False
    age = clock.now().timestamp() - proof
    return 0 <= age < app_settings.REAUTHENTICATION_TIMEOUT.total_seconds()


# Challenges.


def _new_challenge(
    request: HttpRequest,
    purpose: str,
    client: str,
    user_session: UserSession | None,
    user: AbstractBaseUser | None,
) -> PasskeyChallenge:
    if not app_settings.PASSKEYS:
        raise SignInError("passkeys_off")
    # Each begin writes a row: counted like a waiting page's polls, per client address.
    limits.check_poll(request)
    now = clock.now()
    row = PasskeyChallenge(
        purpose=purpose,
        challenge=secrets.token_bytes(32),
        user_id=getattr(user, "pk", None),
        created_at=now,
        expires_at=now + CHALLENGE_LIFETIME,
    )
    if client == BROWSER:
        request.session[SESSION_CHALLENGE_KEY] = row.public_id
    binding = _binding_hash(request, row.public_id, client, user_session)
    if binding is None:
        raise SignInError("passkey_challenge_invalid")
    row.binding_hash = binding
    row.save()
    return row


def _binding_hash(
    request: HttpRequest,
    public_id: str,
    client: str,
    user_session: UserSession | None,
    *,
    create: bool = True,
) -> str | None:
    """The keyed hash of what the asker holds: its session's key, or the challenge's id
    (with the token session that asked, if any). ``None``: a browser without a session."""
    if client == BROWSER:
        session = getattr(request, "session", None)
        if session is None:
            return None
        if session.session_key is None:
            if not create:
                return None
            session.save()  # a session never saved has no key yet: make it the one asked
        value = f"browser:{session.session_key}:{public_id}"
    else:
        value = f"tokens:{public_id}:{user_session.public_id if user_session else ''}"
    return salted_hmac(
        "passwordless.passkey.challenge", value, secret=app_settings.HASH_KEY, algorithm="sha256"
    ).hexdigest()


def _take(
    request: HttpRequest,
    challenge_id: str,
    purpose: str,
    client: str,
    user_session: UserSession | None,
) -> PasskeyChallenge:
    """Spend the challenge if this asker may: once, unexpired, of this purpose.

    The ``UPDATE`` commits on its own, before the answer is verified: a challenge is
    spent by any try, and of two concurrent tries exactly one gets it."""
    if not app_settings.PASSKEYS:
        raise SignInError("passkeys_off")
    limits.check_verify(request)  # an answer counts like a code or a link submitted
    row = None
    if is_public_id(challenge_id):
        row = PasskeyChallenge.objects.filter(public_id=challenge_id).first()
    if row is None or row.purpose != purpose:
        raise SignInError("passkey_challenge_invalid")
    expected = _binding_hash(request, row.public_id, client, user_session, create=False)
    if expected is None or not digests_equal(row.binding_hash, expected):
        raise SignInError("passkey_challenge_invalid")
    now = clock.now()
    if row.used_at is not None:
        raise SignInError("passkey_challenge_used")
    if row.expires_at <= now:
        raise SignInError("passkey_challenge_expired")
    with transaction.atomic():
        spent = PasskeyChallenge.objects.filter(
            pk=row.pk, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
    if not spent:
        raise SignInError("passkey_challenge_used")
    return row


# Assertions.


def _assertion_options(
    challenge: PasskeyChallenge, rp_id: str, allow: list[PublicKeyCredentialDescriptor]
) -> Ceremony:
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=bytes(challenge.challenge),
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Ceremony(challenge.public_id, json.loads(options_to_json(options)))


def _locked_passkey(data: dict[str, Any], owner_id: int | str | None) -> Passkey:
    credential_id = data.get("id")
    # Base64url, as stored: a NUL or a lone surrogate would fail in the database's query.
    if not isinstance(credential_id, str) or not _CREDENTIAL_ID.fullmatch(credential_id):
        raise SignInError("passkey_invalid")
    rows = Passkey.objects.select_for_update(of=("self",)).select_related("user")
    if owner_id is not None:
        rows = rows.filter(user_id=owner_id)
    passkey = rows.filter(credential_id=credential_id).first()
    if passkey is None:
        raise SignInError("passkey_unknown")
    return passkey


def _check_user_handle(
    request: HttpRequest, data: dict[str, Any], user: AbstractBaseUser, *, required: bool
) -> None:
    """The handle the authenticator returns must be the one derived for the owner."""
    response = data.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if handle is None and not required:
        return  # optional when the credentials were listed: the id named the owner
    try:
        returned = base64url_to_bytes(handle) if isinstance(handle, str) else b""
    except ValueError:
        returned = b""
    if not digests_equal(returned.hex(), user_handle(user).hex()):
        _refused(request, user, "user_handle")
        raise SignInError("passkey_invalid")


def _verify_assertion(
    request: HttpRequest, passkey: Passkey, challenge: PasskeyChallenge, data: dict[str, Any]
) -> bool:
    """Verify the signature, then the count; update the passkey. True: a possible clone."""
    rp_id, origin = relying_party()
    try:
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=bytes(challenge.challenge),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=0,  # judged below, once the signature is good
            require_user_verification=True,
        )
    except Exception as exc:  # untrusted input all the way down: any failure is a refusal
        _refused(request, passkey.user, "passkey_invalid")
        raise SignInError("passkey_invalid") from exc
    count = verified.new_sign_count
    if (count or passkey.sign_count) and count <= passkey.sign_count:
        return True
    passkey.sign_count = count
    passkey.last_used_at = clock.now()
    passkey.backed_up = verified.credential_backed_up
    passkey.save(update_fields=["sign_count", "last_used_at", "backed_up"])
    return False


def _clone_refused(request: HttpRequest, passkey: Passkey) -> SignInError:
    """A nonzero count that did not grow: two authenticators may hold this key."""
    _refused(request, passkey.user, "passkey_counter")
    return SignInError("passkey_counter")


def _refused(request: HttpRequest | None, user: AbstractBaseUser | None, reason: str) -> None:
    audit.record(
        AuthEvent.Kind.FAILED, request=request, user=user, method="passkey", reason=reason
    )


# Helpers.


def _fresh_session(
    request: HttpRequest | None, user_session: UserSession | None, action: str
) -> UserSession:
    if not app_settings.PASSKEYS:
        raise SignInError("passkeys_off")
    if user_session is None or user_session.ended_at is not None:
        raise SignInError("not_authenticated")
    if reauthentication.step_up_needed(request, user_session, action):
        raise SignInError("reauthentication_required")
    return user_session


def _descriptors(user: AbstractBaseUser) -> list[PublicKeyCredentialDescriptor]:
    rows = Passkey.objects.filter(user_id=user.pk).values_list("credential_id", "transports")
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(credential_id), transports=_known_transports(transports)
        )
        for credential_id, transports in rows
    ]


def _known_transports(values: object) -> list[AuthenticatorTransport] | None:
    if not isinstance(values, list):
        return None
    known = {t.value for t in AuthenticatorTransport}
    return [AuthenticatorTransport(v) for v in values if v in known] or None


def _transports(credential: object) -> list[str]:
    response = credential.get("response") if isinstance(credential, dict) else None
    values = response.get("transports") if isinstance(response, dict) else None
    known = {t.value for t in AuthenticatorTransport}
    return [v for v in values if v in known][:8] if isinstance(values, list) else []


def _credential_dict(credential: object) -> dict[str, Any]:
    if not isinstance(credential, dict):
        raise SignInError("passkey_invalid")
    return credential


def _clean_name(name: str) -> str:
    # Control characters (a NUL, which PostgreSQL refuses in text) are no part of a name.
    text = "".join(ch for ch in str(name or "") if ch.isprintable() or ch.isspace())
    return " ".join(text.split())[:NAME_LENGTH]
