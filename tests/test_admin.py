"""The admin: read-only requests, events and devices without secrets; actions through services."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client

from accounts.models import User
from passwordless.models import AuthEvent, LoginRequest, LoginSecret, UserSession
from tests.conftest import Delivered

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.org"))
    return client


@pytest.fixture
def signed_in(client: Client, start_sign_in: Any) -> Delivered:
    delivered: Delivered = start_sign_in("alice@example.org")
    client.post("/auth/code/", {"code": delivered.code})
    start_sign_in("bob@example.org", Client())  # a request left pending
    return delivered


PAGES = [
    "/admin/passwordless/loginrequest/",
    "/admin/passwordless/authevent/",
    "/admin/passwordless/usersession/",
    "/admin/passwordless/authevent/dashboard/",
    "/admin/accounts/user/",
]


@pytest.mark.parametrize("page", PAGES)
def test_admin_pages_show_no_secret(admin_client: Client, signed_in: Delivered, page: str) -> None:
    response = admin_client.get(page)
    assert response.status_code == 200
    text = response.content.decode()
    secrets = [signed_in.code, signed_in.link.rstrip("/").rsplit("/", 1)[1]]
    for row in LoginSecret.objects.all():
        secrets += [row.code_hash, row.token_hash]
    secrets += [r.binding_hash for r in LoginRequest.objects.all()]
    assert not [secret for secret in secrets if secret in text]


def test_detail_pages_show_no_secret(admin_client: Client, signed_in: Delivered) -> None:
    request = LoginRequest.objects.get(email="alice@example.org")
    user = User.objects.get(email="alice@example.org")
    pages = [
        f"/admin/passwordless/loginrequest/{request.pk}/change/",
        f"/admin/passwordless/authevent/{AuthEvent.objects.first().pk}/change/",  # type: ignore[union-attr]
        f"/admin/accounts/user/{user.pk}/change/",
    ]
    hashes = [s.code_hash for s in LoginSecret.objects.all()] + [request.binding_hash]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200
        assert not any(h in response.content.decode() for h in hashes)
    assert b"an unknown device" in admin_client.get(pages[2]).content  # the inline device


def test_dashboard_counts_the_last_day(admin_client: Client, signed_in: Delivered) -> None:
    response = admin_client.get("/admin/passwordless/authevent/dashboard/")
    text = response.content.decode()
    assert 'Sign-ins</td><td class="dashboard-number">1<' in text
    assert '<rect x="0" y="10" width="10" height="100"' in text  # the hour's sign-in bar


def test_admin_actions(
    admin_client: Client,
    signed_in: Delivered,
    client: Client,
    django_capture_on_commit_callbacks: Any,
    rate_clock: Any,
) -> None:
    alice = User.objects.get(email="alice@example.org")
    mail.outbox.clear()
    rate_clock.advance(61)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/accounts/user/",
            {"action": "email_sign_in_link", "_selected_action": [alice.pk]},
        )
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]

    admin_client.post(
        "/admin/accounts/user/", {"action": "deactivate", "_selected_action": [alice.pk]}
    )
    alice.refresh_from_db()
    assert not alice.is_active
    assert not UserSession.objects.filter(user=alice, ended_at=None).exists()
    assert b"You're signed in" not in client.get("/").content


def test_ending_a_session_from_the_admin(
    admin_client: Client, signed_in: Delivered, client: Client
) -> None:
    row = UserSession.objects.get(user__email="alice@example.org")
    admin_client.post(
        "/admin/passwordless/usersession/",
        {"action": "end_sessions", "_selected_action": [row.pk]},
    )
    assert b"You're signed in" not in client.get("/").content


def test_the_user_list_shows_how_people_last_signed_in(
    admin_client: Client, signed_in: Delivered
) -> None:
    page = admin_client.get("/admin/accounts/user/").content.decode()
    assert "last sign-in by" in page.lower()
    assert '<td class="field-last_sign_in_method">code</td>' in page


DASHBOARD = "/admin/passwordless/authevent/dashboard/"


@pytest.mark.parametrize("page", ["/admin/passwordless/", "/admin/passwordless/authevent/"])
def test_the_dashboard_is_linked(admin_client: Client, page: str) -> None:
    response = admin_client.get(page)
    assert response.status_code == 200
    assert f'href="{DASHBOARD}"' in response.content.decode()
    opened = admin_client.get(DASHBOARD)
    assert opened.status_code == 200
    assert b"Sign-in dashboard (last 24 hours)" in opened.content


def test_the_dashboard_needs_the_events_view_permission() -> None:
    staff = User.objects.create_user("staff@example.org", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get(DASHBOARD).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_loginrequest"))
    assert f'href="{DASHBOARD}"' not in client.get("/admin/passwordless/").content.decode()
    staff.user_permissions.add(Permission.objects.get(codename="view_authevent"))
    assert f'href="{DASHBOARD}"' in client.get("/admin/passwordless/").content.decode()
    assert client.get(DASHBOARD).status_code == 200
