"""Languages (issue 18): the catalogues are complete and compiled, and a sign-in keeps the
language it was asked in, from the page to the worker's email (docs/customization.md,
"Languages")."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from typing import Any, cast
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import translation

from passwordless import languages
from passwordless.adapter import DefaultAdapter
from passwordless.models import LoginRequest, UserSession
from passwordless.services import delivery, notices
from tests import services
from tools import translations

EMAIL = "ana@example.com"


def translated(language: str, message: str) -> str:
    """``message`` in ``language``, checked to be a translation (not the English fallback)."""
    with translation.override(language):
        text = translation.gettext(message)
    assert text != message, f"{message!r} has no {language} translation"
    return text


@pytest.fixture
def gettext_tools() -> None:
    if not (shutil.which("xgettext") and shutil.which("msgattrib") and shutil.which("msgfmt")):
        message = "GNU gettext is not installed (apt-get install gettext)"
        if services.REQUIRED:
            pytest.fail(f"{message} and REQUIRE_SERVICES=1")
        pytest.skip(message)


@pytest.mark.usefixtures("gettext_tools")
def test_every_message_is_translated_and_compiled() -> None:
    """makemessages, run into a copy of the sources, leaves no German, French or Spanish
    message empty or fuzzy, and every shipped .mo holds what its .po says."""
    problems = translations.check()
    assert problems == [], "run `python -m tools.translations`:\n" + "\n".join(problems)


@pytest.mark.usefixtures("gettext_tools")
def test_the_check_fails_on_an_untranslated_message(tmp_path: Any) -> None:
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Sign in"\nmsgstr ""\n\n#, fuzzy\nmsgid "Sign out"\nmsgstr "Abmelden"\n'
    )
    assert translations.pending(po) == ['untranslated: "Sign in"', 'fuzzy: "Sign out"']
    assert translations.stale(po)  # no .mo at all


def test_supported_languages() -> None:
    assert [languages.supported(t) for t in ("de", "de-DE", "FR", "es-419", "en-us")] == [
        "de",
        "de",
        "fr",
        "es",
        "en",
    ]
    assert [languages.supported(t) for t in ("xx", "", None, 7, "d" * 40)] == [""] * 5


def test_every_language_has_dates_in_its_own_format() -> None:
    from datetime import UTC, datetime

    from django.template import Context, Template

    when = datetime(2026, 3, 4, 17, 5, tzinfo=UTC)
    page = Template('{{ when|date:"SHORT_DATETIME_FORMAT" }}|{{ when|date:"DATETIME_FORMAT" }}')
    shown = {}
    for code in ("en", "de", "fr", "es"):
        with translation.override(code):
            shown[code] = page.render(Context({"when": when}))
    assert shown["de"] == "04.03.2026 17:05|4. März 2026 17:05"
    assert shown["fr"].startswith("04/03/2026 17:05|4 mars 2026")
    assert "marzo" in shown["es"]
    assert len(set(shown.values())) == 4


@pytest.mark.django_db
def test_the_pages_follow_accept_language(client: Client) -> None:
    page = client.get("/auth/login/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
    assert page.status_code == 200
    assert '<html lang="de"' in page.text
    assert translated("de", "Email me a sign-in code") in page.text
    assert "Accept-Language" in page["Vary"] and page["Content-Language"] == "de"
    french = client.get("/auth/login/", HTTP_ACCEPT_LANGUAGE="fr")
    assert translated("fr", "Email me a sign-in code") in french.text
    english = client.get("/auth/login/", HTTP_ACCEPT_LANGUAGE="ja")
    assert "Email me a sign-in code" in english.text


@pytest.mark.django_db
def test_passkey_script_words_come_from_the_page(client: Client) -> None:
    """passkeys.js hard-codes no sentence a person reads: the page gives them, translated."""
    page = client.get("/auth/login/", HTTP_ACCEPT_LANGUAGE="es")
    cancelled = translated("es", "The passkey request was cancelled or timed out. Try again.")
    if "data-passkey-status" in page.text:
        assert f'data-text-cancelled="{cancelled}"' in page.text


@pytest.mark.django_db
def test_a_web_sign_in_keeps_the_language_it_was_asked_in(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    get_user_model()._default_manager.create_user(email=EMAIL)
    with django_capture_on_commit_callbacks(execute=True):
        client.get("/auth/login/", HTTP_ACCEPT_LANGUAGE="de")
        response = client.post("/auth/login/", {"email": EMAIL}, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 302
    assert LoginRequest.objects.get().locale == "de"
    (message,) = mail.outbox
    assert translated("de", "Hello,") in message.body
    html = str(cast(Any, message).alternatives[0][0])
    assert 'lang="de"' in html or translated("de", "Hello,") in html


def _api_send(client: Client, body: dict[str, Any], **headers: str) -> Any:
    return client.post(
        "/api/auth/send", json.dumps(body), content_type="application/json", headers=headers
    )


@pytest.mark.django_db
def test_the_api_takes_an_optional_locale(client: Client) -> None:
    assert _api_send(client, {"email": "a@example.com", "locale": "fr"}).status_code == 202
    assert _api_send(client, {"email": "b@example.com", "locale": "es-MX"}).status_code == 202
    assert _api_send(client, {"email": "c@example.com"}, accept_language="de").status_code == 202
    assert _api_send(client, {"email": "d@example.com", "locale": None}).status_code == 202
    rows = dict(LoginRequest.objects.values_list("email", "locale"))
    assert rows == {
        "a@example.com": "fr",
        "b@example.com": "es",
        "c@example.com": "de",
        "d@example.com": "en",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("locale", ["xx", "klingon", 7, ["de"], "d" * 17, "de\x00"])
def test_the_api_refuses_a_locale_it_does_not_offer(client: Client, locale: Any) -> None:
    response = _api_send(client, {"email": "a@example.com", "locale": locale})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "field_invalid" and error["field"] == "locale"
    assert not LoginRequest.objects.exists()


def test_the_schema_describes_locale() -> None:
    from passwordless.api.openapi import openapi_document

    send = openapi_document()["components"]["schemas"]["SendBody"]["properties"]
    assert send["locale"]["enum"] == ["en", "de", "fr", "es", None]


class _Chooser(DefaultAdapter):
    choice: str | None = None

    def get_user_language(self, user: Any) -> str | None:
        return self.choice


@pytest.fixture
def chooser(settings: Any) -> Iterator[Callable[[str | None], None]]:
    settings.PASSWORDLESS_ADAPTER = f"{__name__}._Chooser"

    def choose(language: str | None) -> None:
        _Chooser.choice = language

    yield choose
    _Chooser.choice = None


def _request(email: str, locale: str) -> LoginRequest:
    from datetime import timedelta

    from passwordless import clock

    now = clock.now()
    return LoginRequest.objects.create(
        email=email, created_at=now, expires_at=now + timedelta(minutes=10), locale=locale
    )


@pytest.mark.django_db
def test_the_worker_writes_the_email_in_the_requests_language(chooser: Any) -> None:
    get_user_model()._default_manager.create_user(email=EMAIL)
    chooser("fr")  # the account's choice: the request's own language wins over it
    row = _request(EMAIL, "es")
    with translation.override("de"):  # whatever the worker's own language is
        assert delivery.deliver_login_email(row.pk) == "sent"
    (message,) = mail.outbox
    assert translated("es", "Hello,") in message.body
    assert translation.get_language() != "es"  # the override ended with the send


@pytest.mark.django_db
def test_a_row_without_a_language_uses_the_accounts_then_the_default(chooser: Any) -> None:
    user = get_user_model()._default_manager.create_user(email=EMAIL)
    row = _request(EMAIL, "")  # inserted by an older replica: the column's default
    row.user = user
    chooser("fr")
    assert delivery.mail_language(row) == "fr"
    chooser("tlh")  # a choice the site does not offer
    assert delivery.mail_language(row) == "en-us"
    chooser(None)
    assert delivery.mail_language(row) == "en-us"
    assert delivery.mail_language(_request("x@example.com", "de")) == "de"


@pytest.mark.django_db
def test_the_locale_column_has_a_database_default() -> None:
    """An older replica's INSERT, which does not name the column, still works."""
    from django.db import connection

    table = LoginRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (public_id, email, status, delivery, attempts, sends, "  # noqa: S608
            "created_at, expires_at, user_agent, next_url, binding_hash, match_number, "
            "code_challenge, approver_user_agent) VALUES ('oldreplica', 'o@example.com', "
            "'pending', 'pending', 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '', '', '', 1, "
            "'', '')"
        )
    assert LoginRequest.objects.get(public_id="oldreplica").locale == ""


@pytest.mark.django_db
def test_a_notice_is_written_in_the_owners_language_else_the_requests(chooser: Any) -> None:
    user = get_user_model()._default_manager.create_user(email=EMAIL)
    session = UserSession.objects.create(user=user, kind="browser", device="Firefox on Linux")
    details = {"ended_sessions": 1, "new_device": True}
    notices.send_notice("new_sign_in", user.pk, user_session_id=session.pk, details=details)
    notices.send_notice(
        "new_sign_in", user.pk, user_session_id=session.pk, details=details, locale="es"
    )
    chooser("de")
    notices.send_notice(
        "new_sign_in", user.pk, user_session_id=session.pk, details=details, locale="es"
    )
    english, spanish, german = mail.outbox
    assert "Hello," in english.body
    assert translated("es", "Hello,") in spanish.body
    assert translated("de", "Hello,") in german.body
    # The "when" is in the language's own date format.
    assert re.search(r"\d{1,2}\. \w+ \d{4}", str(german.body)), german.body


@pytest.mark.django_db
def test_a_queued_notice_carries_the_requests_language(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    from passwordless.services import mail as mail_service

    settings.PASSWORDLESS_MAIL_QUEUE = "celery"
    sent: list[dict[str, Any]] = []
    with (
        mock.patch.object(
            mail_service, "_send_task", side_effect=lambda *a, **kw: sent.append(kw["kwargs"])
        ),
        django_capture_on_commit_callbacks(execute=True),
        translation.override("fr"),
    ):
        mail_service.queue_security_notice("passkey_removed", 1, details={"name": "Clé"})
    assert [message["locale"] for message in sent] == ["fr"]


@pytest.mark.django_db
def test_the_sessions_page_shows_dates_in_the_language(client: Client) -> None:
    user = get_user_model()._default_manager.create_user(email=EMAIL)
    UserSession.objects.create(user=user, kind="browser", device="Firefox on Linux")
    client.force_login(user)
    page = client.get("/auth/sessions/", HTTP_ACCEPT_LANGUAGE="de")
    assert page.status_code == 200
    assert translated("de", "Your sessions") in page.text
    assert re.search(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2} UTC", page.text), page.text
    assert not re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", page.text)


@pytest.mark.django_db
def test_the_link_page_speaks_the_language_the_sign_in_was_asked_in(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """The link opened on another device, whose browser asks for French, shows the German
    page that agrees with the German email."""
    from passwordless.testing import read_sign_in_mail

    get_user_model()._default_manager.create_user(email=EMAIL)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/auth/login/", {"email": EMAIL}, HTTP_ACCEPT_LANGUAGE="de")
    link = read_sign_in_mail(mail.outbox[-1]).link
    phone = Client()
    opened = phone.get(
        link.replace("http://testserver", ""), follow=True, HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert opened.status_code == 200 and opened.request["PATH_INFO"] == "/auth/link/"
    assert opened["Content-Language"] == "de"
    assert '<html lang="de"' in opened.text
    later = phone.get("/auth/login/", HTTP_ACCEPT_LANGUAGE="fr")
    assert later["Content-Language"] == "fr"  # the browser's own language elsewhere
