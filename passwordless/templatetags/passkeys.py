"""``{% load passkeys %}``: passkeys in any template of the project.

``{% passkey_offer %}``
    After an email sign-in, the dismissible offer to add a passkey on this device; nothing
    otherwise. Shown while this browser session was signed in by code, link or approval
    and the browser has no ``OFFER_COOKIE`` (set by "Not now" and by adding a passkey here:
    remembered per device, across sign-ins, for a year).
``{{ user|has_passkeys }}``
    Whether the user has a passkey (for the step-up page, say).
``{% passkeys_enabled %}``
    ``PASSWORDLESS_PASSKEYS``.
``{{ form.email|webauthn_autofill }}``
    The email field, with ``autocomplete="username webauthn"`` when passkeys are on, so the
    browser offers saved passkeys in its autofill (conditional UI).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.forms import BoundField

from ..conf import app_settings
from ..services import passkeys
from ..services.sessions import SESSION_METHOD_KEY

register = template.Library()

#: The sign-ins after which the offer is made: every way in that is not a passkey.
EMAIL_METHODS = ("code", "link", "approval")


@register.simple_tag
def passkeys_enabled() -> bool:
    return app_settings.PASSKEYS


@register.filter
def has_passkeys(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and passkeys.has_passkeys(user)


@register.filter
def webauthn_autofill(field: BoundField) -> BoundField:
    if app_settings.PASSKEYS:
        # The form's fields are its own copies: this changes this one form only.
        field.field.widget.attrs["autocomplete"] = "username webauthn"
    return field


@register.inclusion_tag("passwordless/_passkey_offer.html", takes_context=True)
def passkey_offer(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    return {"offer": request is not None and _should_offer(request), "request": request}


def _should_offer(request: Any) -> bool:
    user = getattr(request, "user", None)
    if not app_settings.PASSKEYS or user is None or not user.is_authenticated:
        return False
    if passkeys.OFFER_COOKIE in request.COOKIES:
        return False
    return request.session.get(SESSION_METHOD_KEY) in EMAIL_METHODS
