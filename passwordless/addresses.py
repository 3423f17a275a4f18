"""Email addresses: the single canonical form used for lookups, and masking for display."""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

__all__ = ["MAX_EMAIL_LENGTH", "MAX_INPUT_LENGTH", "mask_email", "normalize_email"]

#: RFC 5321 limits a forward path to 256 octets, so an address to 254 characters.
MAX_EMAIL_LENGTH = 254
#: What is read at all, before normalisation: NFKC can make one character eighteen
#: (U+FDFA), so a long input is refused before it is expanded. 320 is the old
#: 64 + 1 + 255 bound, room for quotes and spaces that canonicalisation removes.
MAX_INPUT_LENGTH = 320

_validate = EmailValidator()
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)

#: UTS #39 "Highly Restrictive": besides one script, these mixes are how Japanese,
#: Chinese and Korean names are written, and are not confusable with each other.
_SCRIPT_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
#: Character names that do not start with their script's name.
_SCRIPT_ALIASES = {
    "CJK": "HAN",
    "IDEOGRAPHIC": "HAN",
    "KATAKANA-HIRAGANA": "KATAKANA",
    "ARABIC-INDIC": "ARABIC",
}


def normalize_email(value: str) -> str:
    """Return the canonical form of an address, or raise ``ValidationError``.

    NFKC folds look-alike compatibility characters (the Kelvin sign becomes
    ``K``) and the whole address is lower-cased, so one mailbox has one row.
    Mail is only ever sent to a stored canonical address, never to what was
    typed (the lesson of Django's CVE-2019-19844).

    Other spellings of one mailbox are folded too, or refused, so that none
    can become a second account:

    * A quoted local part names the same mailbox as the unquoted one
      (RFC 5321 §4.1.2): ``"alice"@example.org`` becomes ``alice@example.org``.
      One that needs its quotes (``"al ice"``, ``"a,b"``) is refused.
    * An address literal (``alice@[192.0.2.1]``) is refused: it is one more name
      for a mailbox that has a domain.
    * A domain's punycode labels (``xn--bcher-kva``) are decoded, so the stored
      form is the one people read (``bücher``) whichever was typed.
    * A non-ASCII domain label is accepted only if it is valid IDNA and already in
      its canonical form (``ß`` or a final ``ς`` are mapped to other letters by
      IDNA 2003 and kept by UTS #46: two standards, two domains, so refused), made
      of letters, marks, digits and hyphens, and written in one script (or a
      UTS #39 "Highly Restrictive" mix: Latin with Han and kana, Bopomofo or
      Hangul). ``ex\u0430mple.org``, with a Cyrillic ``a``, is refused. A label wholly
      in one other script that happens to look Latin (all Cyrillic) passes: it is
      another real domain, and keeping those apart is its registry's rule.
    """
    if len(value) > MAX_INPUT_LENGTH:
        raise _too_long()
    email = unicodedata.normalize("NFKC", value)
    # Control characters anywhere, even a trailing newline, refuse the address:
    # CR/LF is how header injection starts. Only plain spaces around it are trimmed.
    if any(unicodedata.category(ch)[0] == "C" for ch in email):
        raise _invalid()
    email = email.strip(" ").lower()
    if not email:
        raise ValidationError(_("Enter your email address."), code="required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise _too_long()
    if any(unicodedata.category(ch)[0] == "Z" for ch in email):
        raise _invalid()
    local, at, domain = email.rpartition("@")
    if at and local and domain:
        email = f"{_unquoted(local)}@{_canonical_domain(domain)}"
    _validate(email)
    return email


def _too_long() -> ValidationError:
    return ValidationError(
        _("An email address has at most %(limit)d characters."),
        code="max_length",
        params={"limit": MAX_EMAIL_LENGTH},
    )


def _invalid() -> ValidationError:
    return ValidationError(_("Enter a valid email address."), code="invalid")


def _unquoted(local: str) -> str:
    """The local part without quotes that change nothing; quotes that matter are refused."""
    if not local.startswith('"'):
        return local
    if len(local) < 2 or not local.endswith('"'):
        raise _invalid()
    inner = _QUOTED_PAIR.sub(r"\1", local[1:-1])
    if inner.startswith('"') or not _validate.user_regex.match(inner):
        raise _invalid()
    return inner


def _canonical_domain(domain: str) -> str:
    if domain.startswith("["):
        raise _invalid()
    canonical = ".".join(_canonical_label(label) for label in domain.split("."))
    try:
        too_long = len(canonical.encode("idna")) > 253
    except UnicodeError:  # an empty label, or one over 63 octets once encoded
        raise _invalid() from None
    if too_long:
        raise _invalid()
    return canonical


def _canonical_label(label: str) -> str:
    if label.startswith("xn--"):
        try:
            label = label.encode("ascii").decode("idna")
        except UnicodeError:
            raise _invalid() from None
        if label.isascii():  # punycode of plain ASCII is not how a domain is written
            raise _invalid()
    if label.isascii():
        return label
    try:
        round_trip = label.encode("idna").decode("idna")
    except UnicodeError:
        raise _invalid() from None
    if round_trip != label or not _one_script(label):
        raise _invalid()
    return label


def _one_script(label: str) -> bool:
    scripts = set()
    for ch in label:
        if ch.isascii():
            if ch.isalpha():
                scripts.add("LATIN")
            continue  # ASCII digits and the hyphen belong to every script
        category = unicodedata.category(ch)
        if category[0] == "M":
            continue  # combining marks take the script of the letter they follow
        if category[0] != "L" and category != "Nd":
            return False  # symbols and punctuation (``。`` is a dot to IDNA 2003)
        name = unicodedata.name(ch, "")
        if not name:
            return False
        first = name.split(" ", 1)[0]
        scripts.add(_SCRIPT_ALIASES.get(first, first))
    return len(scripts) <= 1 or any(scripts <= mix for mix in _SCRIPT_MIXES)


def mask_email(email: str) -> str:
    """``alice@example.org`` becomes ``a***@example.org``: enough to recognise, not to harvest."""
    local, _, domain = email.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"
