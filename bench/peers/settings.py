"""Settings of a peer server: the project's production settings, less this app.

``BENCH_PEER`` chooses the peer (``bare``, ``allauth`` or ``sesame``). Everything
that is not about signing in comes from ``config.settings`` and the environment
``bench.load`` sets, as for our own server: DEBUG off, PostgreSQL with persistent
connections, the caches and sessions in Redis through the same engine
(``config.session_store``, django-redis), the same templates, cookies and logging.
What differs:

- the apps and the middleware are Django's own (``startproject``'s list), plus what
  the peer's documentation asks for, and none of ``passwordless``;
- the cache key prefixes start with ``peers-``, so the peers never read our keys;
- mail goes to Django's dummy backend: a peer that sends in the request (allauth)
  still builds its message, but hands it to nothing (ours queue a task instead);
- the rate limits of django-allauth are raised far above the load (still checked on
  every request), as ``bench.settings`` raises ours.
"""

import os
from typing import cast

from config.settings import *  # noqa: F403
from config.settings import BASE_DIR, CACHES, TEMPLATES

BENCH_PEER = os.environ.get("BENCH_PEER", "bare")
if BENCH_PEER not in ("bare", "allauth", "sesame"):
    raise ValueError(f"BENCH_PEER must be bare, allauth or sesame, not {BENCH_PEER!r}")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",  # the same user model and table as ours
]
# Django's startproject middleware.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
ROOT_URLCONF = "bench.peers.urls"
LOGIN_URL = "/bare/login"
LOGIN_REDIRECT_URL = "/signed-in"
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"

for _cache in CACHES.values():
    if "KEY_PREFIX" in _cache:
        _cache["KEY_PREFIX"] = f"peers-{_cache['KEY_PREFIX']}"
# The project's home page includes the messages template of the app: read it from there.
TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates", BASE_DIR / "passwordless" / "templates"]
# The home page's ``{% load passkeys %}``, without the app: its tags render nothing here.
_options = cast(dict[str, object], TEMPLATES[0].setdefault("OPTIONS", {}))
_options["libraries"] = {"passkeys": "bench.peers.stand_in_tags"}

if BENCH_PEER == "allauth":
    INSTALLED_APPS += ["allauth", "allauth.account"]
    MIDDLEWARE.append("allauth.account.middleware.AccountMiddleware")
    AUTHENTICATION_BACKENDS.append("allauth.account.auth_backends.AuthenticationBackend")
    LOGIN_URL = "/accounts/login/"
    ACCOUNT_LOGIN_BY_CODE_ENABLED = True
    ACCOUNT_LOGIN_METHODS = {"email"}
    ACCOUNT_SIGNUP_FIELDS = ["email*"]
    ACCOUNT_USER_MODEL_USERNAME_FIELD = None
    ACCOUNT_ADAPTER = "bench.peers.adapter.PredictableCodeAdapter"
    # Each wrk line comes from a client address of its own (X-Forwarded-For, one proxy
    # trusted): allauth keeps every hit of an address in a list under a lock, and one
    # address for all of wrk's connections would make that list and that lock unlike
    # any real client's.
    ALLAUTH_TRUSTED_PROXY_COUNT = 1
    ACCOUNT_RATE_LIMITS = {
        "request_login_code": "1000/m/ip,1000/m/key",
        "login": "1000/m/ip",
        "login_failed": "1000/m/ip,1000/5m/key",
    }
elif BENCH_PEER == "sesame":
    AUTHENTICATION_BACKENDS.append("sesame.backends.ModelBackend")
    SESAME_ONE_TIME = True  # a link signs in once: login() moves last_login
    SESAME_MAX_AGE = 600  # and expires, after our links' 10 minutes
