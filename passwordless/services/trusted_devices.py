"""Trusted devices: a browser that signed in as an address keeps a way in for it.

Address-wide budgets (emails per address, wrong codes per address) stop guessing
across requests, but anyone can spend them: an attacker who floods a victim's
address with sends and wrong codes would leave the victim with "too many
attempts" on every path. After a sign-in, the browser gets a long-lived cookie
holding a random device id and a keyed signature binding it to the address
(OWASP's "device cookies" against lockout). A browser that presents it for that
address has budgets of its own: its sends are counted per device, not per
address, and the codes it types for its own requests are judged by the request's
attempts and the client's rate only. An attacker cannot get the cookie without
signing in as the address, and a device that types too many wrong codes
(``FAILURE_LIMIT`` in an hour) stops being trusted.

A browser that never signed in as the address still shares the address-wide
budgets with everyone else: it cannot be told apart from the attacker.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseBase

from .. import limits
from ..addresses import normalize_email
from ..conf import app_settings
from ..crypto import digests_equal, hash_device

__all__ = [
    "count_failure",
    "device_cookie_name",
    "is_known_device",
    "remember",
    "signed_device",
    "vouched_device",
    "write_cookie",
]

_PENDING = "_passwordless_trusted_device"


def device_cookie_name() -> str:
    # __Host-: only over HTTPS, for this host, path / (no subdomain can set or read it).
    return ("__Host-" if settings.SESSION_COOKIE_SECURE else "") + "passwordless_device"


def vouched_device(request: HttpRequest | None, email: str) -> str | None:
    """The id of this browser's trusted device for ``email``, or ``None`` (no cookie, a
    cookie for another address or with a bad signature, or too many wrong codes)."""
    device_id = signed_device(request, email)
    if device_id is None:
        return None
    return None if limits.device_failures_exhausted(device_id) else device_id


def signed_device(request: HttpRequest | None, email: str) -> str | None:
    """The id of the device this browser's cookie signs for ``email``, or ``None``: the
    signature alone (no Redis), not whether wrong codes suspended the device's trust."""
    if request is None:
        return None
    device_id, _, signature = request.COOKIES.get(device_cookie_name(), "").partition(".")
    if not device_id or not signature:
        return None
    if not digests_equal(hash_device(device_id, email), signature):
        return None
    return device_id


def is_known_device(request: HttpRequest | None, user: AbstractBaseUser) -> bool:
    """Whether this browser signed in to ``user``'s account before: "a device seen before".

    It is if it presents a trusted-device cookie validly signed for the account's current
    address, which only a browser that signed in as that address was given (``remember``)
    and which lasts ``TRUSTED_DEVICE_LIFETIME``. Anything else is a new device: a browser
    without the cookie (another one, a private window, cookies cleared), one whose cookie
    names another address (the account's address changed since), and any client that
    keeps no cookies (an API client's sign-in). Wrong codes typed on the device, which end
    its *trust* for budgets (``vouched_device``), do not make it new: it was seen all the
    same. The check is an HMAC over the cookie, no query and no Redis command.
    """
    if request is None or not request.COOKIES.get(device_cookie_name()):
        return False
    try:
        email = normalize_email(getattr(user, user.get_email_field_name()) or "")
    except ValidationError:
        return False
    return signed_device(request, email) is not None


def remember(request: HttpRequest, email: str) -> None:
    """Trust this browser for ``email``; the cookie is written on the response by
    ``write_cookie`` (``SessionTimeoutMiddleware`` calls it)."""
    device_id = vouched_device(request, email) or secrets.token_urlsafe(16)
    setattr(request, _PENDING, f"{device_id}.{hash_device(device_id, email)}")


def write_cookie(request: HttpRequest, response: HttpResponseBase) -> None:
    value = getattr(request, _PENDING, None)
    if value is None:
        return
    response.set_cookie(
        device_cookie_name(),
        value,
        max_age=int(app_settings.TRUSTED_DEVICE_LIFETIME.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def count_failure(device_id: str) -> None:
    """A wrong code typed on a trusted device: enough of them end its trust."""
    limits.count_device_failure(device_id)
