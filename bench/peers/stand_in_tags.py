"""``{% load passkeys %}`` for the bare peer, which has no passwordless app: the project's
home page loads that library, and in bare Django its tags render nothing (no passkeys)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def passkeys_enabled() -> bool:
    return False


@register.simple_tag
def passkey_offer() -> str:
    return ""
