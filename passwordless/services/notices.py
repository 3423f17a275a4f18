"""Security notices: an email telling a person what was just done to their account.

One mechanism for every kind (``KINDS``): ``services.mail.queue_security_notice`` queues
the task ``passwordless.send_security_notice`` after commit, with the account's id, the id
of the session it was done from, the time and a few details that are not secrets (a
passkey's id, or a removed passkey's name); the worker, or the request itself with
``MAIL_QUEUE = "sync"``, calls ``send_notice``, which loads the rows, builds the context
every notice gets and hands it to the adapter's ``send_security_notice``. The adapter
renders ``passwordless/email/<kind>_subject.txt``, ``_body.txt`` and ``_body.html``.

Every notice says what happened and when, from which device and network (the session's
own description: a browser and system, a masked network), and links to the sessions page,
built from ``SITE_URL``, never from a request's Host, which an attacker controls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from .. import clock, languages
from ..adapter import get_adapter
from ..addresses import mask_email
from ..conf import app_settings
from ..models import Passkey, UserSession
from .undo_links import undo_details

__all__ = [
    "KINDS",
    "check_details",
    "notice_context",
    "notice_language",
    "send_notice",
    "sessions_url",
]

#: The notices: a sign-in from a new device (or one that ended the oldest session), a
#: passkey added or removed, and the address changed (sent to the old address).
KINDS = ("new_sign_in", "passkey_added", "passkey_removed", "email_changed")

#: The longest text a detail may hold: a passkey's name is at most 64 characters.
_MAX_DETAIL = 200


def check_details(kind: str, details: dict[str, Any] | None) -> dict[str, Any]:
    """The details of a notice, checked before they travel: a known ``kind``, names that
    are identifiers, and values that are ``None``, booleans, integers or short strings
    (never a secret: they are on the broker, and in its monitoring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown security notice: {kind!r}")
    checked = dict(details or {})
    for key, value in checked.items():
        text_ok = isinstance(value, str) and len(value) <= _MAX_DETAIL
        if not key.isidentifier() or not (value is None or isinstance(value, int) or text_ok):
            raise ValueError(f"a notice's detail must be a short plain value: {key!r}")
    return checked


def send_notice(
    kind: str,
    user_id: Any,
    *,
    user_session_id: int | None = None,
    details: dict[str, Any] | None = None,
    occurred_at: str | None = None,
    to: str | None = None,
    locale: str | None = None,
) -> bool:
    """Send one notice to the account's address, or to ``to`` (the old address of an
    ``email_changed``). ``False`` when there is nobody to tell (the account is gone, or
    has no address). Raises what the adapter's sending raises. ``locale`` is the language
    of the request that caused it (``notice_language``)."""
    details = check_details(kind, details)
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is None:
        return False
    address = to or getattr(user, user.get_email_field_name()) or ""
    if not address:
        return False
    # Only a session of this account: a message naming another's would show its device.
    session = (
        UserSession.objects.filter(pk=user_session_id, user_id=user.pk).first()
        if user_session_id is not None
        else None
    )
    when = datetime.fromisoformat(occurred_at) if occurred_at else None
    context = notice_context(kind, user, session, details, when)
    # issue 18, languages: rendered in the owner's language (``notice_language``).
    with translation.override(notice_language(user, locale)):
        get_adapter().send_security_notice(kind, user, context, to=address)
    return True


def notice_language(user: AbstractBaseUser, locale: str | None = None) -> str:
    """The language of a notice: the account's choice (the adapter's
    ``get_user_language``), since a notice is for the account's owner, who may not be the
    one who acted; else ``locale``, the language of the request that caused it; else
    ``LANGUAGE_CODE``."""
    chosen = languages.supported(get_adapter().get_user_language(user))
    return chosen or languages.supported(locale) or settings.LANGUAGE_CODE


def notice_context(
    kind: str,
    user: AbstractBaseUser,
    session: UserSession | None,
    details: dict[str, Any],
    when: datetime | None = None,
) -> dict[str, Any]:
    """What every notice template gets: ``kind``, ``when``, ``device`` and ``network``
    (empty when no session is known), ``masked_email`` (the account's address now),
    ``site_url``, ``sessions_url`` (``None`` when the pages are not mounted), and the
    notice's details (``ended_sessions`` and ``new_device`` for a sign-in, ``name`` for a
    passkey, ``undo_token`` and ``undo_days`` for an address change)."""
    context = dict(details)
    if kind == "passkey_added":
        # The id travelled, not the name: read it now (gone if removed since).
        passkey_id = details.get("passkey_id")
        passkey = (
            Passkey.objects.filter(pk=passkey_id, user_id=user.pk).first()
            if isinstance(passkey_id, int)
            else None
        )
        context["name"] = passkey.name if passkey is not None else ""
    if kind == "email_changed":
        # A secret never travels: the undo link's token is minted here, in the worker.
        context.update(undo_details(details.get("email_change_id")))
    if when is None:
        when = session.created_at if session is not None else clock.now()
    context.update(
        kind=kind,
        when=when,
        device=session.device if session is not None else "",
        network=session.network if session is not None else "",
        masked_email=mask_email(getattr(user, user.get_email_field_name()) or ""),
        site_url=app_settings.SITE_URL,
        sessions_url=sessions_url(),
    )
    return context


def sessions_url() -> str | None:
    """The absolute URL of the sessions page, from ``SITE_URL``; ``None`` when the
    project does not mount the app's pages."""
    try:
        path = reverse("passwordless:sessions")
    except NoReverseMatch:
        return None
    return f"{app_settings.SITE_URL}{path}"
