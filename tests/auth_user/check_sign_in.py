"""The app in a project with Django's default ``auth.User`` and no Celery.

Not collected by the main suite (its name is not test_*): ``tests/test_reusable.py``
runs it in a process of its own, with ``tests.settings_auth_user``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client


def _code() -> str:
    match = re.search(r"^\s+(\d{6})\s*$", str(mail.outbox[-1].body), re.MULTILINE)
    assert match
    return match.group(1)


@pytest.mark.django_db
def test_sign_up_and_sign_in_with_auth_user(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/auth/login/", {"email": "Alice@Example.org"})
    assert client.post("/auth/code/", {"code": _code()})["Location"] == "/"
    user = User.objects.get()
    assert (user.username, user.email) == ("alice@example.org", "alice@example.org")
    assert not user.has_usable_password()
    assert client.get("/").content == b"user=alice@example.org"


@pytest.mark.django_db
def test_an_existing_auth_user_with_a_mixed_case_address(
    django_capture_on_commit_callbacks: Any,
) -> None:
    bob = User.objects.create_user("bob", email="Bob@Example.org")
    User.objects.create_user("bob2", email="bob@example.org")  # auth.User allows twins
    browser = Client()
    with django_capture_on_commit_callbacks(execute=True):
        browser.post("/auth/login/", {"email": "bob@example.org"})
    browser.post("/auth/code/", {"code": _code()})
    assert browser.get("/").content == b"user=bob"
    assert User.objects.count() == 2  # nobody was created
    assert mail.outbox[-1].to == [bob.email]  # the stored address, of the oldest twin


def test_system_checks_pass_without_the_api_or_celery() -> None:
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(DEBUG=True):  # a development project: http and local caches
        call_command("check", fail_level="WARNING")
