"""The admin signs in without a password: ``/admin/login/`` hands over to the email flow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from tests.conftest import Delivered

pytestmark = pytest.mark.django_db


def test_admin_login_hands_over_to_the_email_flow(
    client: Client, start_sign_in: Callable[..., Delivered | None]
) -> None:
    User.objects.create_user("staff@example.org", is_staff=True, is_superuser=True)
    response = client.get("/admin/login/?next=/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Fadmin%2Faccounts%2Fuser%2F"
    page = client.get(response["Location"])
    assert b'name="next" value="/admin/accounts/user/"' in page.content

    delivered = start_sign_in("staff@example.org", next="/admin/accounts/user/")
    assert delivered is not None
    signed_in = client.post("/auth/code/", {"code": delivered.code})
    assert signed_in["Location"] == "/admin/accounts/user/"
    assert client.get("/admin/accounts/user/").status_code == 200  # no password ever set
    assert not User.objects.get().has_usable_password()


def test_non_staff_are_told_the_admin_is_not_for_them(
    client: Client, start_sign_in: Callable[..., Delivered | None]
) -> None:
    delivered = start_sign_in("person@example.org")
    assert delivered is not None
    client.post("/auth/code/", {"code": delivered.code})
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 403
    assert b"This account can't use the admin" in response.content


def test_passwords_only_when_allowed_and_then_rate_limited(settings: Any) -> None:
    User.objects.create_superuser("root@example.org", password="a long pass phrase 42")
    browser = Client()
    assert browser.get("/admin/login/").status_code == 302  # passwords off by default

    settings.PASSWORDLESS_ADMIN_PASSWORDS = True
    settings.PASSWORDLESS_VERIFY_RATES_PER_IP = "3/m"
    assert browser.get("/admin/login/").status_code == 200
    form = {"username": "root@example.org", "password": "wrong", "next": "/admin/"}
    statuses = [browser.post("/admin/login/", form).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
