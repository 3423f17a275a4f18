import re
from pathlib import Path
from typing import Any

import pytest
from django.core.mail import EmailMultiAlternatives
from django.test import Client


@pytest.fixture
def inbox(settings: Any, tmp_path: Path) -> Path:
    settings.DEV_INBOX_DIR = tmp_path
    settings.EMAIL_BACKEND = "config.devinbox.DevInboxBackend"
    return tmp_path


def _send() -> None:
    message = EmailMultiAlternatives(
        "Your sign-in code and link",
        "Open http://testserver/auth/link/abc/ to sign in.",
        to=["alice@example.org"],
    )
    message.attach_alternative("<p>hello <a href='x'>link</a></p>", "text/html")
    message.send()


def test_dev_inbox_lists_and_shows_mail_when_debug(
    inbox: Path, settings: Any, client: Client
) -> None:
    settings.DEBUG = True
    _send()
    assert len(list(inbox.glob("*.eml"))) == 1
    listing = client.get("/dev/inbox/")
    assert listing.status_code == 200
    name = re.search(r"/dev/inbox/([0-9]+-[0-9a-f]{8})/", listing.content.decode())
    assert name
    message = client.get(f"/dev/inbox/{name.group(1)}/")
    assert b'<a href="http://testserver/auth/link/abc/"' in message.content
    html = client.get(f"/dev/inbox/{name.group(1)}/html/")
    assert b"<p>hello" in html.content
    assert "sandbox" in html["Content-Security-Policy"]


def test_dev_inbox_is_hidden_without_debug(inbox: Path, settings: Any, client: Client) -> None:
    settings.DEBUG = False
    _send()
    assert client.get("/dev/inbox/").status_code == 404


def test_dev_inbox_refuses_odd_names(inbox: Path, settings: Any, client: Client) -> None:
    settings.DEBUG = True
    assert client.get("/dev/inbox/..%2F..%2Fetc%2Fpasswd/").status_code == 404
