"""A development inbox: mail is kept as .eml files under var/inbox/ and listed at /dev/inbox/.

It lets a newcomer sign in on a fresh clone without any mail server. Every code and link
sent is readable there, so the pages answer only when DEBUG is on *and* the request comes
from this machine: its peer address (REMOTE_ADDR) is loopback and no proxy relayed it.
Anything else gets a 404. The Host header and X-Forwarded-For are written by the client,
so neither can open the inbox.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
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

__all__ = ["DevInboxBackend", "is_local", "urlpatterns"]

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


#: Headers a proxy adds when it relays a request. A proxy on this machine (nginx in front of
#: runserver or gunicorn) makes every visitor's peer address loopback, so a request that
#: carries one of them is not taken to come from this machine.
_RELAYED = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def is_local(request: HttpRequest) -> bool:
    """Whether the request's peer is this machine: REMOTE_ADDR on loopback, not relayed."""
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket
    return peer.is_loopback and not any(request.META.get(h) for h in _RELAYED)


def _require_local_debug(request: HttpRequest) -> None:
    # 404, not 403: a server that does not offer the inbox to this client says nothing of it.
    if not settings.DEBUG or not is_local(request):
        raise Http404


def inbox_view(request: HttpRequest) -> HttpResponse:
    _require_local_debug(request)
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
    _require_local_debug(request)
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
    _require_local_debug(request)
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
