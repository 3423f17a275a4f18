"""The language of a sign-in: which of ``settings.LANGUAGES`` a request or a client named.

A sign-in keeps the language the person used when they asked (``LoginRequest.locale``),
and the worker writes its email in it, so the page, the code's email and the link's page
agree (docs/customization.md, "Languages"). Codes are Django's: ``"de"``, ``"pt-br"``.
"""

from __future__ import annotations

from django.utils import translation

__all__ = ["current", "supported"]

#: The longest language tag taken from a client (``LoginRequest.locale`` holds 16).
MAX_LENGTH = 16


def supported(tag: object) -> str:
    """The code in ``settings.LANGUAGES`` that ``tag`` names ("de-DE" and "de" give
    "de" when "de" is offered), or ``""`` when it names none of them."""
    if not isinstance(tag, str) or not 0 < len(tag) <= MAX_LENGTH:
        return ""
    try:
        return translation.get_supported_language_variant(tag.strip().lower())
    except LookupError:
        return ""


def current() -> str:
    """The supported code of the language active now (``LocaleMiddleware`` chose it for a
    request), or ``""`` when translation is off."""
    return supported(translation.get_language())
