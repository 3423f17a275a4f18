"""Step-up ("sudo mode"): the freshness window, the gate on pages, the API and the admin,
the decorator and mixin for a project's own views, and the adapter hook."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core import mail
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.views import View

from accounts.models import User
from passwordless.adapter import DefaultAdapter
from passwordless.api.views import step_up_urls
from passwordless.decorators import ReauthenticationRequiredMixin, reauthentication_required
from passwordless.models import LoginRequest, Passkey
from passwordless.services import reauthentication
from tests.conftest import CODE_RE, Delivered, FrozenClock
from tests.factories import UserFactory
from tests.helpers import browsers_signed_in, session_row

pytestmark = pytest.mark.django_db

EMAIL = "alice@example.org"
SessionStarter = Callable[..., Delivered | None]


class _Handler:
    """An adapter that turns step-up off for one action, to show the hook decides."""

    off: frozenset[str] = frozenset()


class CalmAdapter(DefaultAdapter):
    def needs_reauthentication(self, request: HttpRequest | None, action: str) -> bool:
        return action not in _Handler.off


@pytest.fixture
def signed_in(
    client: Client, start_sign_in: SessionStarter, settings: Any
) -> Callable[..., Client]:
    """A browser signed in by code; each call another one (another device)."""
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "100/m"

    return browsers_signed_in(start_sign_in, EMAIL)


def _step_up_code(to: str = EMAIL) -> str:
    message = [m for m in mail.outbox if to in m.to][-1]
    assert "confirm it's you" in message.subject.lower(), message.subject
    match = CODE_RE.search(str(message.body))
    assert match, message.body
    return match.group(1)


def _next_of(location: str) -> str:
    parts = urlsplit(location)
    assert parts.path == "/auth/reauthenticate/", location
    return parse_qs(parts.query)["next"][0]


def _step_up(c: Client, django_capture_on_commit_callbacks: Any, next_url: str = "/") -> Any:
    """Ask for a step-up code on the page and type it in."""
    with django_capture_on_commit_callbacks(execute=True):
        sent = c.post(f"/auth/reauthenticate/?next={next_url}", {"action": "send"})
    assert sent.status_code == 302, sent.content
    return c.post(
        "/auth/reauthenticate/",
        {"action": "verify", "code": _step_up_code(), "next": next_url},
    )


# The window.


def test_a_sign_in_counts_as_fresh_for_the_window_only(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock, settings: Any
) -> None:
    settings.PASSWORDLESS_REAUTHENTICATION_TIMEOUT = 120
    row = session_row(signed_in())
    assert reauthentication.is_fresh(row)
    frozen_clock.advance(seconds=119)
    assert reauthentication.is_fresh(row)
    frozen_clock.advance(seconds=1)
    assert not reauthentication.is_fresh(row)


def test_a_proof_is_fresh_for_the_window_then_stale(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock
) -> None:
    row = session_row(signed_in())
    frozen_clock.advance(minutes=30)
    assert not reauthentication.is_fresh(row)
    reauthentication.record_proof(row, "code")
    row.refresh_from_db()
    assert reauthentication.is_fresh(row)
    assert reauthentication.last_proof_at(row) == frozen_clock.current
    frozen_clock.advance(minutes=5)
    assert not reauthentication.is_fresh(row)  # the default window: 5 minutes


def test_an_ended_session_or_none_is_never_fresh(signed_in: Callable[..., Client]) -> None:
    row = session_row(signed_in())
    assert not reauthentication.is_fresh(None)
    row.ended_at = row.created_at
    assert not reauthentication.is_fresh(row)


# The sessions page.


def test_ending_another_session_with_a_stale_proof_goes_to_the_step_up_page(
    signed_in: Callable[..., Client],
    frozen_clock: FrozenClock,
    django_capture_on_commit_callbacks: Any,
) -> None:
    laptop, phone = signed_in(), signed_in()
    phone_row = session_row(phone)
    frozen_clock.advance(minutes=6)
    refused = laptop.post("/auth/sessions/", {"session": phone_row.public_id})
    assert refused.status_code == 302
    assert _next_of(refused["Location"]) == "/auth/sessions/"  # back to the page, as a GET
    phone_row.refresh_from_db()
    assert phone_row.ended_at is None  # nothing was done, nor kept to replay
    page = laptop.get(refused["Location"])
    assert page.status_code == 200
    assert b"Confirm it&#x27;s you" in page.content
    assert b"Nothing was changed yet" in page.content

    done = _step_up(laptop, django_capture_on_commit_callbacks, "/auth/sessions/")
    assert done.status_code == 302 and done["Location"] == "/auth/sessions/"
    phone_row.refresh_from_db()
    assert phone_row.ended_at is None  # the POST was not replayed
    ended = laptop.post("/auth/sessions/", {"session": phone_row.public_id})
    assert ended["Location"] == "/auth/sessions/"
    phone_row.refresh_from_db()
    assert phone_row.ended_at is not None


def test_sign_out_everywhere_else_needs_a_fresh_proof(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock
) -> None:
    laptop, phone = signed_in(), signed_in()
    frozen_clock.advance(minutes=6)
    refused = laptop.post("/auth/sessions/", {"action": "others"})
    assert _next_of(refused["Location"]) == "/auth/sessions/"
    assert session_row(phone).ended_at is None
    reauthentication.record_proof(session_row(laptop), "code")
    assert laptop.post("/auth/sessions/", {"action": "others"}).status_code == 302
    assert session_row(phone).ended_at is not None


def test_ending_your_own_session_never_needs_a_step_up(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock
) -> None:
    laptop = signed_in()
    row = session_row(laptop)
    frozen_clock.advance(minutes=60)
    out = laptop.post("/auth/sessions/", {"session": row.public_id})
    assert out["Location"] == "/auth/login/"
    row.refresh_from_db()
    assert row.ended_at is not None


def test_a_fresh_sign_in_ends_another_session_at_once(signed_in: Callable[..., Client]) -> None:
    laptop, phone = signed_in(), signed_in()
    ended = laptop.post("/auth/sessions/", {"session": session_row(phone).public_id})
    assert ended["Location"] == "/auth/sessions/"
    assert session_row(phone).ended_at is not None


# The step-up page.


def test_the_step_up_page_needs_a_sign_in(client: Client) -> None:
    page = client.get("/auth/reauthenticate/?next=/auth/sessions/")
    assert page.status_code == 302 and page["Location"].startswith("/auth/login/")


def test_the_step_up_page_of_an_untracked_session_sends_it_to_sign_in(
    settings: Any, client: Client
) -> None:
    """Without ``SessionTimeoutMiddleware`` a forced sign-in has no row to prove to."""
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "passwordless.middleware.SessionTimeoutMiddleware"
    ]
    client.force_login(UserFactory.create(email=EMAIL))
    page = client.get("/auth/reauthenticate/?next=/auth/sessions/")
    assert page.status_code == 302
    assert page["Location"] == "/auth/login/?next=%2Fauth%2Fsessions%2F"
    assert client.get("/").context["user"].is_authenticated  # not signed out by a GET


def test_the_step_up_page_goes_only_to_a_safe_next(
    signed_in: Callable[..., Client],
    frozen_clock: FrozenClock,
    django_capture_on_commit_callbacks: Any,
) -> None:
    c = signed_in()
    frozen_clock.advance(minutes=6)
    page = c.get("/auth/reauthenticate/?next=//evil.example/")
    assert b"evil.example" not in page.content
    done = _step_up(c, django_capture_on_commit_callbacks, "https://evil.example/")
    assert done["Location"] == "/"


def test_a_wrong_step_up_code_is_refused_with_the_attempts_left(
    signed_in: Callable[..., Client],
    frozen_clock: FrozenClock,
    django_capture_on_commit_callbacks: Any,
) -> None:
    c = signed_in()
    frozen_clock.advance(minutes=6)
    with django_capture_on_commit_callbacks(execute=True):
        c.post("/auth/reauthenticate/", {"action": "send"})
    code = _step_up_code()
    wrong = "000000" if code != "000000" else "111111"
    page = c.post("/auth/reauthenticate/", {"action": "verify", "code": wrong})
    assert page.status_code == 400
    assert b"That code isn&#x27;t right" in page.content
    assert not reauthentication.is_fresh(session_row(c))
    malformed = c.post("/auth/reauthenticate/", {"action": "verify", "code": "12"})
    assert malformed.status_code == 400
    assert not reauthentication.is_fresh(session_row(c))


def test_verifying_before_sending_asks_for_a_code_first(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock
) -> None:
    c = signed_in()
    frozen_clock.advance(minutes=6)
    answer = c.post("/auth/reauthenticate/", {"action": "verify", "code": "123456"})
    assert answer.status_code == 302
    assert b"First ask for a code" in c.get(answer["Location"]).content


def test_the_passkey_button_only_for_an_account_with_a_passkey_and_passkeys_on(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock, settings: Any
) -> None:
    c = signed_in()
    frozen_clock.advance(minutes=6)
    page = c.get("/auth/reauthenticate/?next=/auth/sessions/")
    assert b"data-passkey-reauthenticate" not in page.content  # no passkey yet
    Passkey.objects.create(
        user=User.objects.get(email=EMAIL), name="Phone", credential_id="AAAA", public_key=b"k"
    )
    page = c.get("/auth/reauthenticate/?next=/auth/sessions/")
    html = page.content.decode()
    assert "data-passkey-reauthenticate" in html
    assert 'data-begin-url="/auth/passkeys/reauth/begin/"' in html
    assert 'data-finish-url="/auth/passkeys/reauth/finish/"' in html
    assert 'data-next="/auth/sessions/"' in html
    assert "passwordless/passkeys" in html  # its script
    settings.PASSWORDLESS_PASSKEYS = False
    page = c.get("/auth/reauthenticate/?next=/auth/sessions/")
    assert b"data-passkey-reauthenticate" not in page.content


def test_the_api_step_up_refusal_names_the_passkey_endpoint_when_passkeys_are_on(
    settings: Any,
) -> None:
    assert step_up_urls() == {
        "send": "/api/auth/reauthenticate/send",
        "verify": "/api/auth/reauthenticate/verify",
        "passkey_begin": "/api/auth/passkeys/reauth/begin",
    }
    settings.PASSWORDLESS_PASSKEYS = False
    assert "passkey_begin" not in step_up_urls()


# The decorator and the mixin, on a project's own views.


@reauthentication_required
def _plain_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("done")


@reauthentication_required(action="export_data")
def _named_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("done")


class _ClassView(ReauthenticationRequiredMixin, View):
    reauthentication_action = "export_data"

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("done")

    def post(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("posted")


def _request(c: Client | None, method: str = "get", path: str = "/account/export/") -> Any:
    request = getattr(RequestFactory(), method)(path)
    if c is None:
        request.user = AnonymousUser()
        request.session = {}
    else:
        request.session = c.session
        request.user = User.objects.get(email=EMAIL)
    request._messages = FallbackStorage(request)
    return request


@pytest.fixture
def calm_adapter(settings: Any) -> Iterator[type[_Handler]]:
    settings.PASSWORDLESS_ADAPTER = "tests.test_reauthentication.CalmAdapter"
    yield _Handler
    _Handler.off = frozenset()


@pytest.mark.parametrize(
    "view", [_plain_view, _named_view, _ClassView.as_view()], ids=["plain", "named", "class"]
)
def test_the_decorator_and_mixin_let_a_fresh_session_through_and_send_a_stale_one(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock, view: Any
) -> None:
    c = signed_in()
    assert view(_request(c)).content == b"done"
    frozen_clock.advance(minutes=6)
    refused = view(_request(c))
    assert refused.status_code == 302
    assert _next_of(refused["Location"]) == "/account/export/"
    reauthentication.record_proof(session_row(c), "passkey")
    assert view(_request(c)).content == b"done"


def test_a_stale_post_is_not_run_and_comes_back_as_a_get_with_a_message(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock
) -> None:
    c = signed_in()
    frozen_clock.advance(minutes=6)
    request = _request(c, "post", "/account/export/?format=csv")
    refused = _ClassView.as_view()(request)
    assert refused.status_code == 302
    assert _next_of(refused["Location"]) == "/account/export/?format=csv"
    assert [str(m) for m in request._messages] == [
        "Confirm it's you to continue. Nothing was changed yet: do it again after."
    ]


def test_the_decorator_sends_someone_signed_out_to_sign_in(client: Client) -> None:
    refused = _plain_view(_request(None))
    assert refused.status_code == 302 and refused["Location"].startswith("/auth/login/?next=")


def test_a_session_without_a_row_must_step_up(frozen_clock: FrozenClock) -> None:
    """Signed in some way this app does not track: never counted as fresh."""
    request = _request(None)
    request.user = UserFactory.create(email=EMAIL)
    assert _plain_view(request).status_code == 302


def test_the_adapter_hook_decides_which_actions_need_a_step_up(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock, calm_adapter: type[_Handler]
) -> None:
    laptop, phone = signed_in(), signed_in()
    frozen_clock.advance(minutes=6)
    assert _named_view(_request(laptop)).status_code == 302
    calm_adapter.off = frozenset({"export_data", "end_session"})
    assert _named_view(_request(laptop)).content == b"done"
    assert _plain_view(_request(laptop)).status_code == 302  # "sensitive" still needs it
    refused = laptop.post("/auth/sessions/", {"action": "others"})
    assert refused["Location"].startswith("/auth/reauthenticate/")  # still needed
    laptop.post("/auth/sessions/", {"session": session_row(phone).public_id})
    assert session_row(phone).ended_at is not None  # the project said this one needs none


def test_the_default_adapter_asks_for_every_listed_action() -> None:
    adapter = DefaultAdapter()
    assert set(adapter.reauthentication_actions) == {
        "end_session",
        "end_other_sessions",
        "change_email",
        "add_passkey",
        "remove_passkey",
        "admin_change",
    }
    assert all(adapter.needs_reauthentication(None, a) for a in adapter.reauthentication_actions)


# The admin.


@pytest.fixture
def staff(signed_in: Callable[..., Client]) -> Client:
    User.objects.create_user(email=EMAIL, password=None, is_staff=True, is_superuser=True)
    return signed_in()


def test_an_admin_change_with_a_stale_proof_changes_nothing(
    staff: Client, frozen_clock: FrozenClock, django_capture_on_commit_callbacks: Any
) -> None:
    victim = UserFactory.create(email="bob@example.org")
    frozen_clock.advance(minutes=6)
    path = f"/admin/accounts/user/{victim.pk}/change/"
    assert staff.get(path).status_code == 200  # reading needs no step-up
    refused = staff.post(path, {"email": "mallory@example.org", "is_active": "on"})
    assert refused.status_code == 302
    assert _next_of(refused["Location"]) == path
    victim.refresh_from_db()
    assert victim.email == "bob@example.org"
    done = _step_up(staff, django_capture_on_commit_callbacks, path)
    assert done["Location"] == path


def test_admin_actions_and_deletes_with_a_stale_proof_change_nothing(
    staff: Client, frozen_clock: FrozenClock
) -> None:
    victim = UserFactory.create(email="bob@example.org")
    frozen_clock.advance(minutes=6)
    delete = staff.post(f"/admin/accounts/user/{victim.pk}/delete/", {"post": "yes"})
    assert delete["Location"].startswith("/auth/reauthenticate/")
    action = staff.post(
        "/admin/accounts/user/",
        {"action": "delete_selected", "_selected_action": [victim.pk], "post": "yes"},
    )
    assert action["Location"].startswith("/auth/reauthenticate/")
    assert User.objects.filter(pk=victim.pk).exists()


def test_admin_sign_out_needs_no_step_up(staff: Client, frozen_clock: FrozenClock) -> None:
    frozen_clock.advance(minutes=6)
    out = staff.post("/admin/logout/")
    assert out.status_code in (200, 302)
    assert not out.get("Location", "").startswith("/auth/reauthenticate/")


def test_an_admin_change_with_a_fresh_proof_goes_through(
    staff: Client, frozen_clock: FrozenClock
) -> None:
    victim = UserFactory.create(email="bob@example.org")
    frozen_clock.advance(minutes=6)
    reauthentication.record_proof(session_row(staff), "code")
    delete = staff.post(f"/admin/accounts/user/{victim.pk}/delete/", {"post": "yes"})
    assert delete["Location"] == "/admin/accounts/user/"
    assert not User.objects.filter(pk=victim.pk).exists()


def test_the_step_up_request_is_bound_to_the_session_and_never_signs_in(
    signed_in: Callable[..., Client],
    frozen_clock: FrozenClock,
    django_capture_on_commit_callbacks: Any,
) -> None:
    laptop = signed_in()
    frozen_clock.advance(minutes=6)
    with django_capture_on_commit_callbacks(execute=True):
        laptop.post("/auth/reauthenticate/", {"action": "send"})
    step_up = LoginRequest.objects.get(purpose=LoginRequest.Purpose.REAUTHENTICATE)
    assert step_up.session == session_row(laptop)
    assert step_up.email == EMAIL and step_up.expires_at > frozen_clock.current
    assert step_up.expires_at - frozen_clock.current <= timedelta(minutes=15)
