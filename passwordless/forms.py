"""Input schemas, shared by the HTML pages and the JSON API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .addresses import MAX_EMAIL_LENGTH, normalize_email
from .conf import app_settings

__all__ = ["CodeForm", "LoginForm"]


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

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


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
