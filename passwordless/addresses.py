"""Email addresses: the single canonical form used for lookups, and masking for display."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

__all__ = ["MAX_EMAIL_LENGTH", "mask_email", "normalize_email"]

#: RFC 5321 limits a forward path to 256 octets, so an address to 254 characters.
MAX_EMAIL_LENGTH = 254

_validate = EmailValidator()


def normalize_email(value: str) -> str:
    """Return the canonical form of an address, or raise ``ValidationError``.

    NFKC folds look-alike compatibility characters (the Kelvin sign becomes
    ``K``) and the whole address is lower-cased, so one mailbox has one row.
    Mail is only ever sent to a stored canonical address, never to what was
    typed (the lesson of Django's CVE-2019-19844).
    """
    email = unicodedata.normalize("NFKC", value)
    # Control characters anywhere, even a trailing newline, refuse the address:
    # CR/LF is how header injection starts. Only plain spaces around it are trimmed.
    if any(unicodedata.category(ch)[0] == "C" for ch in email):
        raise ValidationError(_("Enter a valid email address."), code="invalid")
    email = email.strip(" ").lower()
    if not email:
        raise ValidationError(_("Enter your email address."), code="required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValidationError(
            _("An email address has at most %(limit)d characters."),
            code="max_length",
            params={"limit": MAX_EMAIL_LENGTH},
        )
    if any(unicodedata.category(ch)[0] == "Z" for ch in email):
        raise ValidationError(_("Enter a valid email address."), code="invalid")
    _validate(email)
    return email


def mask_email(email: str) -> str:
    """``alice@example.org`` becomes ``a***@example.org``: enough to recognise, not to harvest."""
    local, _, domain = email.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"
