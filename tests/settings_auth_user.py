"""A minimal project around the app: Django's own ``auth.User``, no Celery, no Redis.

``tests/test_reusable.py`` runs ``tests/auth_user/`` with these settings, in a
process of its own (``--ds tests.settings_auth_user``), on an in-memory SQLite.
"""

HAS_POSTGRES = HAS_REDIS = False
SECRET_KEY = "reusable-app-test-key-" + "z" * 40
DEBUG = True
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "passwordless",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "passwordless.middleware.SessionTimeoutMiddleware",
]
# The user and its session's row in one statement, here with auth.User on SQLite.
AUTHENTICATION_BACKENDS = ["passwordless.backends.SessionModelBackend"]
ROOT_URLCONF = "tests.auth_user.urls"
TEMPLATES = [
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
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
USE_TZ = True
LOGIN_REDIRECT_URL = "/"
PASSWORDLESS_SITE_URL = "http://testserver"
PASSWORDLESS_MAIL_QUEUE = "sync"
PASSWORDLESS_JWT_PRIVATE_KEYS: list[str] = []
