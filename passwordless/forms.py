"""Input schemas, shared by the HTML pages and the JSON API."""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .addresses import MAX_EMAIL_LENGTH, normalize_email
from .conf import app_settings

__all__ = ["CodeForm", "LoginForm", "stamp_form"]

#: Signs the time the email form was shown; a signature for nothing else.
_FORM_SALT = "passwordless.forms.LoginForm.shown_at"


def stamp_form() -> str:
    """The signed wall-clock time now, for the email form's ``shown_at``: the wall clock,
    not ``clock.now()``, because it measures a person's seconds between two requests."""
    return signing.dumps(time.time(), salt=_FORM_SALT)


class LoginForm(forms.Form):
    email = forms.CharField(
        label=_("Email address"),
        strip=False,
        widget=forms.EmailInput(
            attrs={
                "autocomplete": "email",
                "autofocus": True,
                "maxlength": MAX_EMAIL_LENGTH,
                "spellcheck": "false",
            }
        ),
        error_messages={"required": _("Enter your email address.")},
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)
    # issue 18, bots: a honeypot people never see and a signed time the form was shown
    # (``bot_suspicion``). Not required: the JSON API shares this form and has neither.
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )
    shown_at = forms.CharField(required=False, widget=forms.HiddenInput, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["shown_at"].initial = stamp_form()

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def bot_suspicion(self) -> str:
        """Why this valid form looks like a bot's, or ``""``: its honeypot filled in
        (``"honeypot"``), or sent back sooner than ``FORM_MIN_SECONDS`` after it was shown
        (``"too_fast"``), or with a time that is not ours (``"tampered"``). A form sent
        without the time at all (a script that posts only the address) is judged by the
        honeypot and the CAPTCHA alone. The HTML page asks; the JSON API does not."""
        if self.cleaned_data.get("website"):
            return "honeypot"
        shown_at = self.cleaned_data.get("shown_at") or ""
        if not shown_at or app_settings.FORM_MIN_SECONDS <= 0:
            return ""
        try:
            shown = float(signing.loads(shown_at, salt=_FORM_SALT))
        except (signing.BadSignature, TypeError, ValueError):
            return "tampered"
        return "too_fast" if time.time() - shown < app_settings.FORM_MIN_SECONDS else ""


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "spellcheck": "false",
            }
        ),
        error_messages={"required": _("Enter the code from the email.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        length = app_settings.CODE_LENGTH
        attrs: dict[str, object] = {"maxlength": length + 2, "size": length + 2}
        if not app_settings.CODE_ALPHABET.isdigit():
            attrs["inputmode"] = "text"  # a phone keyboard with letters
        self.fields["code"].widget.attrs.update(attrs)

    def clean_code(self) -> str:
        """Accept ``123 456`` or ``123-456`` as typed, letters in either case; any symbol
        outside ``CODE_ALPHABET`` is an error."""
        length, alphabet = app_settings.CODE_LENGTH, app_settings.CODE_ALPHABET
        code = "".join(ch for ch in self.cleaned_data["code"] if ch not in " -")
        if alphabet.upper() == alphabet:
            code = code.upper()
        if len(code) != length or any(ch not in alphabet for ch in code):
            raise ValidationError(
                _("Enter the %(length)d-digit code from the email.")
                if alphabet.isdigit()
                else _("Enter the %(length)d-character code from the email."),
                code="malformed_code",
                params={"length": length},
            )
        return code
