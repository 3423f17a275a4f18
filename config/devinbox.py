"""A development inbox: mail is kept as .eml files under var/inbox/ and listed at /dev/inbox/.

It lets a newcomer sign in on a fresh clone without any mail server. The pages
exist only when DEBUG is on.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
import time
from collections.abc import Sequence
from email.message import EmailMessage as ParsedMessage
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

_NAME = re.compile(r"^[0-9]+-[0-9a-f]{8}$")


def _inbox() -> Path:
    return Path(settings.DEV_INBOX_DIR)


class DevInboxBackend(BaseEmailBackend):
    """Write each message to its own .eml file."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        inbox = _inbox()
        inbox.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            name = f"{time.time_ns()}-{secrets.token_hex(4)}.eml"
            (inbox / name).write_bytes(message.message().as_bytes())
        return len(email_messages)


def _read(name: str) -> ParsedMessage:
    if not _NAME.match(name) or not (_inbox() / f"{name}.eml").is_file():
        raise Http404("No such message.")
    data = (_inbox() / f"{name}.eml").read_bytes()
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, ParsedMessage)  # noqa: S101  (the default policy's class)
    return parsed


def _part(message: ParsedMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    return str(body.get_content()) if body is not None else ""


def _require_debug() -> None:
    if not settings.DEBUG:
        raise Http404


def inbox_view(request: HttpRequest) -> HttpResponse:
    _require_debug()
    names = sorted((p.stem for p in _inbox().glob("*.eml")), reverse=True)[:50]
    messages = []
    for name in names:
        parsed = _read(name)
        messages.append(
            {
                "name": name,
                "to": parsed["To"],
                "subject": parsed["Subject"],
                "date": parsed["Date"],
            }
        )
    return render(request, "devinbox/inbox.html", {"messages_list": messages})


def message_view(request: HttpRequest, name: str) -> HttpResponse:
    _require_debug()
    parsed = _read(name)
    context = {
        "name": name,
        "to": parsed["To"],
        "subject": parsed["Subject"],
        "date": parsed["Date"],
        "text": _part(parsed, "plain"),
        "has_html": bool(_part(parsed, "html")),
    }
    return render(request, "devinbox/message.html", context)


def message_html_view(request: HttpRequest, name: str) -> HttpResponse:
    """The HTML part as the recipient would see it, in a sandbox: no scripts, no forms."""
    _require_debug()
    response = HttpResponse(_part(_read(name), "html"))
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "sandbox allow-top-navigation-by-user-activation allow-popups"
    )
    return response


urlpatterns = [
    path("", inbox_view, name="dev-inbox"),
    path("<str:name>/", message_view, name="dev-inbox-message"),
    path("<str:name>/html/", message_html_view, name="dev-inbox-html"),
]
