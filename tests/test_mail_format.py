"""The emails as a mail client and a phone read them: every kind is sent through the
worker's own paths to a real SMTP server on loopback (``tests.stack.SMTPServer``) and
parsed back with the standard library's ``email`` parser.

Each is multipart/alternative, text then HTML, in UTF-8, with ``Auto-Submitted``,
``X-Auto-Response-Suppress`` and a ``Message-ID`` on the site's domain; a hidden preheader
opens the HTML part; a mail with a code says it in its subject (``CODE_IN_SUBJECT``) and
ends its text part with the origin-bound line (``@host #code``) that Safari and Chrome
read; and no header holds a secret beyond that subject.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from passwordless import clock
from passwordless.forms import CodeForm
from passwordless.models import EmailChange, LoginRequest
from passwordless.services import deliver_login_email
from passwordless.services.notices import send_notice
from tests.factories import LoginRequestFactory, UserFactory
from tests.stack import SMTPServer

pytestmark = pytest.mark.django_db

SITE = "https://login.example.com"
ALICE = "alice@example.org"
NEW = "alice.new@example.org"
#: The kinds whose email holds a code and a link (or only a code, for a step-up).
CODE_KINDS = ("login", "reauthenticate", "change_email")
NOTICE_KINDS = ("new_sign_in", "passkey_added", "passkey_removed", "email_changed")
SUBJECTS_WITH_CODE = {
    "login": "{code} is your sign-in code for {site}",
    "reauthenticate": "{code} is your code to confirm it's you on {site}",
    "change_email": "{code} is your code to confirm your new email address on {site}",
}
SUBJECTS_WITHOUT_CODE = {
    "login": "Your sign-in code and link",
    "reauthenticate": "Your code to confirm it's you",
    "change_email": "Confirm your new email address",
}
_CODE = re.compile(r"^[ \t]+(\S{6,})[ \t]*$", re.MULTILINE)
_LINK = re.compile(r"(https://login\.example\.com/\S+/)")


@pytest.fixture
def sink(settings: Any) -> Iterator[SMTPServer]:
    """Django's SMTP backend delivering to a real server on loopback."""
    with SMTPServer() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        settings.PASSWORDLESS_SITE_URL = SITE
        settings.PASSWORDLESS_SITE_NAME = "Example"
        yield smtp


def _user() -> User:
    return UserFactory.create(email=ALICE)


def _code_mail(purpose: str) -> None:
    user = _user()
    email = NEW if purpose == "change_email" else ALICE
    login_request = LoginRequestFactory.create(email=email, user=user, purpose=purpose)
    assert deliver_login_email(login_request.pk) == LoginRequest.Delivery.SENT


def _notice(kind: str) -> None:
    user = _user()
    samples: dict[str, dict[str, Any]] = {
        "new_sign_in": {"ended_sessions": 1, "new_device": True},
        "passkey_added": {"passkey_id": None},
        "passkey_removed": {"name": "YubiKey 5C"},
        "email_changed": {},
    }
    details, to = samples[kind], None
    if kind == "email_changed":
        confirmation = LoginRequestFactory.create(email=NEW, user=user, purpose="change_email")
        change = EmailChange.objects.create(
            user=user,
            old_email=ALICE,
            new_email=NEW,
            confirmation=confirmation,
            confirmed_at=clock.now(),
            undo_expires_at=clock.now() + timedelta(days=7),
        )
        details, to = {"email_change_id": change.pk}, ALICE
    assert send_notice(kind, user.pk, details=details, to=to)


SENDERS: dict[str, Callable[[], None]] = {
    "login": lambda: _code_mail("sign_in"),
    "reauthenticate": lambda: _code_mail("reauthenticate"),
    "change_email": lambda: _code_mail("change_email"),
    **{kind: (lambda kind=kind: _notice(kind)) for kind in NOTICE_KINDS},  # type: ignore[misc]
}


def _sent(sink: SMTPServer, kind: str) -> EmailMessage:
    before = len(sink.messages)
    SENDERS[kind]()
    return sink.wait_for(before + 1, timeout=10)


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # as the wire had it: CRLF


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _secrets(text: str) -> tuple[str | None, str | None]:
    """The code and the link token of a code mail's text part (``None`` where none)."""
    code, link = _CODE.search(text), _LINK.search(text)
    token = link.group(1).rstrip("/").rsplit("/", 1)[-1] if link else None
    return (code.group(1) if code else None), token


def last_line(message: str) -> str:
    """The last line of a message, as the origin-bound format defines it: newlines
    normalized, then the last item of a strict split on LF (so a trailing newline leaves
    an empty last line, and no origin-bound code)."""
    return message.replace("\r\n", "\n").replace("\r", "\n").split("\n")[-1]


def parse_origin_bound(message: str) -> tuple[str, str] | None:
    """(top-level host, code) by the parsing steps of WICG's "Origin-bound one-time codes
    delivered via SMS": ``@host``, exactly one space, ``#code``, each token running to
    the next ASCII whitespace; ``None`` for failure."""
    line = last_line(message)
    match = re.match(r"@([^\t\n\f\r ]+) #([^\t\n\f\r ]+)", line)
    return (match.group(1), match.group(2)) if match else None


# The MIME structure.


@pytest.mark.parametrize("kind", list(SENDERS))
def test_each_mail_is_text_then_html_in_utf8_with_the_automatic_headers(
    sink: SMTPServer, kind: str
) -> None:
    message = _sent(sink, kind)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert message["MIME-Version"] == "1.0"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert re.fullmatch(r"<[0-9a-f]{32}@login\.example\.com>", str(message["Message-ID"]))
    assert message["To"] == (NEW if kind == "change_email" else ALICE)
    assert "\n" not in str(message["Subject"]) and str(message["Subject"]).strip()


def test_the_message_id_names_the_site_never_the_worker_machine(
    sink: SMTPServer, settings: Any
) -> None:
    first, second = _sent(sink, "login"), _sent(sink, "new_sign_in")
    ids = [str(m["Message-ID"]) for m in (first, second)]
    assert ids[0] != ids[1]
    # Django's default is the machine's name (``DNS_NAME``, socket.getfqdn()).
    assert [i.rsplit("@", 1)[1] for i in ids] == ["login.example.com>"] * 2, socket.getfqdn()

    settings.PASSWORDLESS_MESSAGE_ID_DOMAIN = "mail.example.net"
    assert str(_sent(sink, "passkey_removed")["Message-ID"]).endswith("@mail.example.net>")


def test_a_site_name_with_accents_survives_the_subject_and_the_parts(
    sink: SMTPServer, settings: Any
) -> None:
    settings.PASSWORDLESS_SITE_NAME = "Bücherei Zürich"
    message = _sent(sink, "login")
    code, _ = _secrets(_text(message))
    assert message["Subject"] == f"{code} is your sign-in code for Bücherei Zürich"
    assert "Bücherei Zürich" in _text(message) and "Bücherei Zürich" in _html(message)


def test_the_site_name_defaults_to_the_host_of_site_url(sink: SMTPServer, settings: Any) -> None:
    del settings.PASSWORDLESS_SITE_NAME
    message = _sent(sink, "login")
    code, _ = _secrets(_text(message))
    assert message["Subject"] == f"{code} is your sign-in code for login.example.com"


# The subject.


@pytest.mark.parametrize("kind", CODE_KINDS)
def test_the_subject_carries_the_code_by_default(sink: SMTPServer, kind: str) -> None:
    message = _sent(sink, kind)
    code, _ = _secrets(_text(message))
    assert code is not None
    assert message["Subject"] == SUBJECTS_WITH_CODE[kind].format(code=code, site="Example")


@pytest.mark.parametrize("kind", CODE_KINDS)
def test_code_in_subject_off_keeps_the_code_out_of_every_header(
    sink: SMTPServer, settings: Any, kind: str
) -> None:
    settings.PASSWORDLESS_CODE_IN_SUBJECT = False
    message = _sent(sink, kind)
    code, _ = _secrets(_text(message))
    assert code is not None
    assert message["Subject"] == SUBJECTS_WITHOUT_CODE[kind]
    assert all(code not in str(value) for value in message.values())


@pytest.mark.parametrize("kind", list(SENDERS))
def test_no_header_holds_a_secret_but_the_subject_its_code(sink: SMTPServer, kind: str) -> None:
    message = _sent(sink, kind)
    text = _text(message)
    code, token = _secrets(text) if kind in CODE_KINDS else (None, None)
    undo = re.search(r"/auth/email/undo/([A-Za-z0-9_-]+)/", text)
    secrets = [s for s in (code, token, undo.group(1) if undo else None) if s]
    expected = {"login": 2, "change_email": 2, "reauthenticate": 1, "email_changed": 1}
    assert len(secrets) == expected.get(kind, 0), text
    for name, value in message.items():
        allowed = {code} if name == "Subject" and code else set()
        leaked = [s for s in secrets if s in str(value) and s not in allowed]
        assert not leaked, (name, value)
    if kind in NOTICE_KINDS:
        assert not re.search(r"\d{6}", str(message["Subject"]))


# The text part.


@pytest.mark.parametrize("kind", CODE_KINDS)
def test_a_code_mail_ends_with_its_origin_bound_line(sink: SMTPServer, kind: str) -> None:
    message = _sent(sink, kind)
    text = _text(message)
    code, _ = _secrets(text)
    assert last_line(text) == f"@login.example.com #{code}"
    assert parse_origin_bound(text) == ("login.example.com", code)


@pytest.mark.parametrize("kind", NOTICE_KINDS)
def test_a_notice_has_no_origin_bound_line(sink: SMTPServer, kind: str) -> None:
    text = _text(_sent(sink, kind))
    assert parse_origin_bound(text) is None
    assert not re.search(r"^@", text, re.MULTILINE)


@pytest.mark.parametrize(
    "site_url",
    ["http://login.example.com", "https://login.example.com:8443", "https://127.0.0.1:8000"],
)
def test_no_origin_bound_line_where_it_would_name_another_origin(
    sink: SMTPServer, settings: Any, site_url: str
) -> None:
    # The format has no scheme and no port: it always means https on port 443.
    settings.PASSWORDLESS_SITE_URL = site_url
    text = _text(_sent(sink, "login"))
    assert parse_origin_bound(text) is None
    assert _CODE.search(text)  # the code itself is still there


def test_an_international_host_is_written_in_its_ascii_form(
    sink: SMTPServer, settings: Any
) -> None:
    settings.PASSWORDLESS_SITE_URL = "https://anmeldung.bücher.example"
    text = _text(_sent(sink, "login"))
    code, _ = _secrets(text)
    assert parse_origin_bound(text) == ("anmeldung.xn--bcher-kva.example", code)


@pytest.mark.parametrize("kind", list(SENDERS))
def test_the_text_part_reads_well_alone(sink: SMTPServer, kind: str) -> None:
    text = _text(_sent(sink, kind))
    assert text.startswith("Hello,\n\n")
    assert not re.search(r"</?[a-z]+[ >]|&[a-z]+;|\{[{%]", text), text  # no markup left
    assert max(len(line) for line in text.splitlines()) <= 998
    assert "\n\n\n\n" not in text  # no holes where a condition was false
    assert "\n\n-- \nExample\nhttps://login.example.com/" in text  # who sent it
    if kind in ("login", "change_email"):
        assert _LINK.search(text), text


# The HTML part.


class _Html(HTMLParser):
    """What the tests look at: the first element in <body>, the <head>'s metas and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.first_in_body: dict[str, str | None] | None = None
        self.first_text: list[str] = []
        self.metas: dict[str, str] = {}
        self.head_styles: list[str] = []
        self.html_lang: str | None = None
        self._in_first = 0
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.html_lang = found.get("lang")
        if tag == "meta" and found.get("name"):
            self.metas[str(found["name"])] = str(found.get("content"))
        if tag == "style" and "head" in self.stack:
            self._style = True
        if self.stack and self.stack[-1] == "body" and self.first_in_body is None:
            self.first_in_body = {"tag": tag, **found}
            self._in_first = 1
        elif self._in_first:
            self._in_first += 1
        if tag not in ("meta", "br", "img", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._style = False
        if self._in_first:
            self._in_first -= 1
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._style:
            self.head_styles.append(data)
        elif self._in_first:
            self.first_text.append(data)


def _parsed(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("kind", list(SENDERS))
def test_the_html_opens_with_a_hidden_preheader(sink: SMTPServer, kind: str) -> None:
    message = _sent(sink, kind)
    html = _parsed(_html(message))
    first = html.first_in_body
    assert first is not None and first["tag"] == "div", first
    style = re.sub(r"\s", "", str(first.get("style")))
    for rule in ("display:none", "max-height:0", "opacity:0", "overflow:hidden", "mso-hide:all"):
        assert rule in style, style
    preview = "".join(html.first_text)
    words = re.sub(r"[\s\u034f\u200c\u00a0]+", " ", preview).strip()
    assert len(words) > 20, repr(preview)
    code, token = _secrets(_text(message)) if kind in CODE_KINDS else (None, None)
    assert all(s not in preview for s in (code, token) if s)


@pytest.mark.parametrize("kind", list(SENDERS))
def test_the_html_has_a_dark_look_and_an_outlook_safe_layout(sink: SMTPServer, kind: str) -> None:
    raw = _html(_sent(sink, kind))
    html = _parsed(raw)
    assert html.metas.get("color-scheme") == "light dark"
    assert html.metas.get("supported-color-schemes") == "light dark"
    assert html.html_lang, "the part names its language"
    styles = "".join(html.head_styles)
    assert "@media (prefers-color-scheme: dark)" in styles
    assert re.search(r"\.pl-page\s*\{\s*background-color:\s*#[0-9a-f]{6} !important", styles)
    # Outlook's Word engine: tables for layout, no flex or grid, inline styles for the look.
    assert 'role="presentation"' in raw and "<!--[if mso]>" in raw
    assert not re.search(r"display\s*:\s*(inline-)?(flex|grid)", raw)
    assert "<v:" not in raw and "<script" not in raw.lower()
    assert 'style="margin:0;padding:0;width:100%;background-color:#f6f7f9;"' in raw


@pytest.mark.parametrize("kind", ["login", "change_email"])
def test_the_button_is_a_plain_link_with_the_emailed_link(sink: SMTPServer, kind: str) -> None:
    message = _sent(sink, kind)
    _, token = _secrets(_text(message))
    button = re.search(r'<a class="pl-button" href="([^"]+)"[^>]*style="([^"]+)"', _html(message))
    assert button, _html(message)
    assert button.group(1).endswith(f"/{token}/")
    assert "border:12px solid" in button.group(2)  # its padding in Outlook too


# Overriding the templates.


def test_a_project_overrides_a_template_by_its_name_and_keeps_the_line(
    sink: SMTPServer, settings: Any, tmp_path: Path
) -> None:
    email_dir = tmp_path / "passwordless" / "email"
    email_dir.mkdir(parents=True)
    (email_dir / "login_subject.txt").write_text("Sign in to {{ site_name }}")
    (email_dir / "login_body.txt").write_text("Your code:\n\n    {{ code }}\n\n{{ link }}\n\n\n")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    message = _sent(sink, "login")
    text = _text(message)
    code, _ = _secrets(text)
    assert message["Subject"] == "Sign in to Example"
    assert text.startswith("Your code:")
    assert last_line(text) == f"@login.example.com #{code}"  # appended, not the template's


# The code field on the pages.


def test_the_code_field_asks_for_one_time_code_autofill() -> None:
    field = str(CodeForm()["code"])
    assert 'autocomplete="one-time-code"' in field
    pages = Path(__file__).resolve().parent.parent / "passwordless" / "templates" / "passwordless"
    for page in ("code.html", "email_code.html", "reauthenticate.html"):
        assert "with field=form.code" in (pages / page).read_text(), page
