"""Two findings of an attacker review of issue 16's performance changes, held fixed.

1. ``AUTHENTICATION_BACKENDS`` now lists ``SessionModelBackend`` *and* ``ModelBackend``,
   both of which authenticate passwords: with ``PASSWORDLESS_ADMIN_PASSWORDS`` on, every
   failed admin password costs two runs of the password hasher (Argon2 in production).
2. ``SessionModelBackend`` decides once per process whether the user model's default
   manager filters rows (``_write``: ``_default_manager.all().query.where``). A manager
   whose filter depends on the request (multi-tenant managers, e.g. django-multitenant's,
   filter only while a tenant is current) is judged by whatever state the first signed-in
   request had; from then on the raw statement loads users that ``ModelBackend`` (and
   the docstring's promise) would not. The access tokens' statement had the same flaw
   (both are a ``rawsql.UserStatement`` now).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db.models import QuerySet
from django.test import Client

from accounts.models import User, UserManager
from passwordless.rawsql import forget_statements
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock

EMAIL = "alice@example.org"


# 1. Two password backends: each failed admin password is hashed twice.


@pytest.mark.django_db(transaction=True)
def test_a_failed_admin_password_runs_the_hasher_once(
    site: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PASSWORDLESS_ADMIN_PASSWORDS = True
    calls: list[str] = []
    encode = MD5PasswordHasher.encode

    def counted(self: MD5PasswordHasher, password: str, salt: str) -> str:
        calls.append(password)
        return encode(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", counted)
    attacker = Browser(site)
    token = attacker.csrf_token("/admin/login/")
    calls.clear()
    form = {"username": "nobody@example.org", "password": "guess-1", "next": "/admin/"}
    response = attacker.post("/admin/login/", form, token=token)
    assert response.status_code == 200  # the form again: refused
    # One backend that checks passwords costs one hash per guess; two cost two.
    assert calls.count("guess-1") == 1, f"the hasher ran {calls.count('guess-1')} times"


# 2. The "manager filters rows" decision is taken once, from the first request's state.

_tenant: ContextVar[str | None] = ContextVar("review16_tenant", default=None)


class TenantManager(UserManager):
    """As multi-tenant managers do: only the current tenant's users, when there is one."""

    def get_queryset(self) -> QuerySet[User]:
        rows = super().get_queryset()
        tenant = _tenant.get()
        return rows if tenant is None else rows.filter(email__endswith="@" + tenant)


@pytest.fixture
def tenant_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    manager = TenantManager()
    manager.model = User
    manager.name = "objects"
    monkeypatch.setitem(User._meta.__dict__, "default_manager", manager)
    forget_statements()
    yield
    forget_statements()


@pytest.mark.django_db(transaction=True)
def test_a_user_the_default_manager_hides_is_not_loaded(
    tenant_manager: None,
    start_sign_in: Callable[..., Delivered | None],
    rate_clock: RateLimitClock,
) -> None:
    browser = Client()
    delivered = start_sign_in(EMAIL, browser)
    assert delivered is not None
    assert browser.post("/auth/code/", {"code": delivered.code})["Location"] == "/"
    # The first signed-in request, on no tenant's host: the statement is written and kept.
    assert b"Signed in as" in browser.get("/").content

    token = _tenant.set("other.org")  # now a request of a tenant alice is not part of
    try:
        assert not User._default_manager.filter(email=EMAIL).exists()  # ModelBackend: nobody
        home = browser.get("/")
    finally:
        _tenant.reset(token)
    assert b"Signed in as" not in home.content, "loaded past the default manager's filter"
