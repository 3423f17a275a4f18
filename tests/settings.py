"""Test settings: the project's own, on this machine's PostgreSQL and Redis when they answer.

Without them the suite falls back to SQLite and local memory, and the tests
marked ``postgres`` or ``redis`` are skipped with the name of the service.
"""

import os
import tempfile

from tests import services

HAS_POSTGRES = services.probe(services.POSTGRES)
HAS_REDIS = services.probe(services.REDIS)

# The tests own these variables: a developer's .env must not leak into them.
os.environ["DATABASE_URL"] = (
    "postgres://postgres@127.0.0.1:5432/passwordless"
    if HAS_POSTGRES
    else "sqlite:///" + os.path.join(tempfile.gettempdir(), "passwordless-tests.sqlite3")
)
if HAS_REDIS:
    # Database 8 is the suite's own: cache, sessions and rate limits, told apart by prefix.
    os.environ["REDIS_URL"] = TEST_REDIS_URL = f"redis://127.0.0.1:{services.REDIS_PORT}/8"
else:
    os.environ.pop("REDIS_URL", None)
# Tasks run in-process; the end-to-end tests start a real worker with a real broker.
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["SITE_URL"] = "http://testserver"
os.environ["DEBUG"] = "True"
for name in (
    "EMAIL_URL",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SESSION_REDIS_URL",
    "RATELIMIT_REDIS_URL",
):
    os.environ.pop(name, None)
os.environ.setdefault("VAR_DIR", os.path.join(tempfile.gettempdir(), "passwordless-tests-var"))

from config.settings import *  # noqa: E402, F403
from config.settings import DATABASES  # noqa: E402

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# Argon2 is the production hasher; the tests need a fast one.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# issue 18: scripted browsers submit the email form within milliseconds of loading it;
# the bot tests (tests/test_attack_bots.py) turn the minimum time to submit back on.
PASSWORDLESS_FORM_MIN_SECONDS = 0
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DB_NAME", "test_passwordless")}
