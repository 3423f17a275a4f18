"""Run in a fresh virtualenv holding only the built wheel and its dependencies: a minimal
project with Django's ``auth.User``, no Celery and no Redis, migrated, and a sign-in through
the test client. Prints "signed in as alice@example.org" on success."""

import re
import sys

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
)
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core import mail  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import include, path  # noqa: E402

urlpatterns = [path("auth/", include("passwordless.urls"))]

setup_test_environment()
call_command("migrate", verbosity=0)
client = Client()
client.post("/auth/login/", {"email": "alice@example.org"})
code = re.search(r"^\s+(\d{6})\s*$", str(mail.outbox[-1].body), re.MULTILINE)
assert code, mail.outbox
response = client.post("/auth/code/", {"code": code.group(1)})
assert response.status_code == 302 and response["Location"] == "/", response
user = get_user_model().objects.get()
print(f"signed in as {user.get_username()}")
sys.exit(0)
