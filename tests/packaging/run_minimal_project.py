"""Run in a fresh virtualenv holding only the built wheel and its dependencies: a minimal
project with Django's ``auth.User``, no Celery and no Redis, migrated, and sign-ins through
the test client.

- With ``PASSWORDLESS_MAIL_QUEUE`` at its default (``"celery"``) the system checks refuse
  the configuration (``passwordless.E015``); with ``"sync"`` they accept it.
- With ``"sync"``, every mail the app sends arrives, and nothing tries to import Celery:
  the sign-in email, the "new sign-in" notice (``MAX_SESSIONS = 1``, so a second browser
  ends the first) and the "email changed" notice.

Prints "signed in as alice@example.org" and one line per step on success.
"""

import importlib.abc
import re
import sys
from typing import Any

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="packaging-test-" + "k" * 40,
    DEBUG=True,
    ALLOWED_HOSTS=["testserver"],
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "passwordless",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    ROOT_URLCONF=__name__,
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    USE_TZ=True,
    LOGIN_REDIRECT_URL="/",
    PASSWORDLESS_SITE_URL="http://testserver",
    PASSWORDLESS_MAIL_QUEUE="sync",
    # A second browser signing in ends the first, and the "new sign-in" notice is sent.
    PASSWORDLESS_MAX_SESSIONS=1,
    PASSWORDLESS_SEND_RATES_PER_EMAIL="10/m",
)
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core import mail  # noqa: E402
from django.core.checks import run_checks  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import include, path  # noqa: E402

urlpatterns = [path("auth/", include("passwordless.urls"))]


class CeleryImports(importlib.abc.MetaPathFinder):
    """Records every attempt to import Celery (or its Kombu), caught or not; finds nothing,
    so each import goes on as it would have."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.partition(".")[0] in {"celery", "kombu"}:
            self.attempts.append(fullname)


def check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id}


def sign_in(client: Client, email: str) -> None:
    client.post("/auth/login/", {"email": email})
    sent = mail.outbox[-1]
    code = re.search(r"^\s+(\d{6})\s*$", str(sent.body), re.MULTILINE)
    assert code, sent.body
    # PASSWORDLESS_CODE_IN_SUBJECT (issue 18): the subject starts with the code.
    subject = f"{code.group(1)} is your sign-in code for "
    assert sent.to == [email] and sent.subject.startswith(subject), sent.subject
    response = client.post("/auth/code/", {"code": code.group(1)})
    assert response.status_code == 302 and response["Location"] == "/", response


setup_test_environment()
call_command("migrate", verbosity=0)

# The default queue needs Celery, which this virtualenv does not have: a check says so.
with override_settings():
    delattr(settings, "PASSWORDLESS_MAIL_QUEUE")  # back to the default, "celery"
    assert "passwordless.E015" in check_ids(), check_ids()
assert "passwordless.E015" not in check_ids()
print("E015 without Celery; none with MAIL_QUEUE='sync'")

imports = CeleryImports()
sys.meta_path.insert(0, imports)

sign_in(Client(), "alice@example.org")
user = get_user_model().objects.get()
print(f"signed in as {user.get_username()}")

sign_in(Client(), "alice@example.org")  # over MAX_SESSIONS: the first browser is signed out
notice = mail.outbox[-1]
assert notice.subject == "New sign-in to your account", [m.subject for m in mail.outbox]
assert notice.to == ["alice@example.org"]
print("new sign-in notice sent")

user.email = "alice@new.example"
user.save()
notice = mail.outbox[-1]
assert notice.subject == "The email address of your account was changed", notice.subject
assert notice.to == ["alice@example.org"]
print("email-changed notice sent")

assert imports.attempts == [], imports.attempts
assert "celery" not in sys.modules
print("Celery never imported")
sys.exit(0)
