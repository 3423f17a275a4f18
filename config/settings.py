"""Settings of the project, read from the environment with django-environ.

Nothing set means production: DEBUG is off, and the settings refuse to start
without SECRET_KEY. Development is asked for with DEBUG=True (`make run` sets it),
and then every other variable has a development default: SQLite under var/, a
local-memory cache with database sessions, tasks run in-process after commit, and
mail kept in a development inbox at /dev/inbox/ (answered on loopback only).
See the README for the table of variables.
"""

import logging
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config import logs, sentinel

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

# Core
# Off unless asked for: a server started with nothing set must not show debug pages, the
# development inbox or development keys to whoever reaches it.
DEBUG = env.bool("DEBUG", default=False)
if not DEBUG and "SECRET_KEY" not in env:
    raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")
SECRET_KEY = env.str(
    "SECRET_KEY", default="django-insecure-development-key-do-not-use-in-production"
)
# In production the hosts must be named: no default, and Django answers 400 to any other Host.
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
# localhost, not 127.0.0.1: browsers refuse an IP address as a passkey's relying party.
SITE_URL = env.str("SITE_URL", default="http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "corsheaders",
    "accounts",
    "passwordless",
]

MIDDLEWARE = [
    "config.logs.RequestIdMiddleware",
    "passwordless.middleware.ServiceUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language from Accept-Language (or the django_language cookie), among
    # LANGUAGES; a sign-in keeps it for its email (docs/customization.md, "Languages").
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "passwordless.authentication.BearerTokenMiddleware",
    "passwordless.middleware.SessionTimeoutMiddleware",
    # Admin pages that change data need a fresh step-up (docs/reauthentication.md).
    "passwordless.middleware.AdminReauthenticationMiddleware",
    # PASSWORDLESS_PASSKEYS_REQUIRED_FOR_STAFF: the admin only after a passkey (off by default).
    "passwordless.web.staff_passkeys.StaffPasskeyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, e.g. postgres://127.0.0.1/passwordless
if "DATABASE_URL" not in env:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# Behind PgBouncer (docs/deployment.md, "PgBouncer"): DATABASE_POOLING is its pool_mode.
# In transaction mode a connection's next transaction may run on another server connection:
# no server-side cursors (one outlives its transaction, and the next fetch would land on a
# connection that has no such cursor), and connections kept open, since one holds a server
# connection only inside a transaction; checked before reuse, in case PgBouncer closed it.
# In session mode a client connection holds its server connection: closed after each
# request, as by default. Statement mode cannot work: the app's transactions are several
# statements (a code is spent under SELECT ... FOR UPDATE).
DATABASE_POOLING = env.str("DATABASE_POOLING", default="")
if DATABASE_POOLING not in ("", "session", "transaction"):
    raise ImproperlyConfigured("DATABASE_POOLING must be 'session' or 'transaction'.")
if DATABASE_POOLING == "transaction":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Every transaction takes SQLite's write lock when it begins (waiting up to 20 s): one
    # that reads, then writes, never fails with "database is locked" half-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update(transaction_mode="IMMEDIATE", timeout=20)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache and sessions: Redis when REDIS_URL is set. Every use lives in REDIS_URL's own
# database, told apart by key prefixes: the cache "cache:", sessions "session:", rate limits
# "rl:" and the broker "broker:" (Redis Cluster and many managed services have database 0
# only, and a database number past the server's last one would fail every request). Each
# use can still be given a URL of its own: SESSION_REDIS_URL, RATELIMIT_REDIS_URL,
# CELERY_BROKER_URL. clear() on a cache deletes its own prefix, never the whole database.
REDIS_URL = env.str("REDIS_URL", default="")


def _redis_url(variable: str) -> str:
    return str(env.str(variable, default="")) or REDIS_URL


# Redis Sentinel (config/sentinel.py): REDIS_SENTINELS="host:port,host:port,..." and every
# redis:// URL names the service as its host (redis://mymaster/0); REDIS_SENTINEL_PASSWORD is
# the Sentinels' own. Unset, nothing below changes.
REDIS_SENTINELS = sentinel.parse_sentinels(env.list("REDIS_SENTINELS", default=[]))
REDIS_SENTINEL_PASSWORD = env.str("REDIS_SENTINEL_PASSWORD", default="")


if REDIS_URL:
    _redis_options = {
        "CLIENT_CLASS": "config.redis_cache.PrefixClient",
        # Fail fast: a dead Redis must give an error page, not a hung worker.
        "SOCKET_CONNECT_TIMEOUT": 2,
        "SOCKET_TIMEOUT": 2,
    }
    if REDIS_SENTINELS:
        _redis_options.update(sentinel.cache_options(REDIS_SENTINELS, REDIS_SENTINEL_PASSWORD))
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cache",
            "OPTIONS": _redis_options,
        },
        "sessions": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": _redis_url("SESSION_REDIS_URL"),
            "KEY_PREFIX": "session",
            "OPTIONS": _redis_options,
        },
        # Rate-limit counters: atomic INCR, shared by every web process.
        "ratelimit": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": _redis_url("RATELIMIT_REDIS_URL"),
            "KEY_PREFIX": "rl",
            "OPTIONS": _redis_options,
        },
    }
    SESSION_ENGINE = "config.session_store"
    SESSION_CACHE_ALIAS = "sessions"
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # One process only: good enough for a newcomer's runserver, not for production.
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "ratelimit",
        },
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Celery: workers send mail when a broker is configured; otherwise tasks run
# in-process, after the transaction commits.
CELERY_BROKER_URL = _redis_url("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker outlives its broker: it reconnects for as long as the broker is away (by default
# it gives up after 100 tries, about 50 minutes, and exits).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A task running when the connection drops runs to its end. Its ack is lost with the
# channel, so the broker delivers it again, and the second run finds the row sent (sending
# is idempotent). Cancelling it instead, Celery 6's default, could end it between the mail
# server's answer and the commit: an email whose code never became valid.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# RabbitMQ: heartbeats notice a broker gone without closing the connection (a crashed host,
# a partition) within two minutes. The control and event queues are exclusive: RabbitMQ 4.3
# refuses transient queues that are not (Celery 5.7's default; 5.6 must be told).
CELERY_BROKER_HEARTBEAT = 60
CELERY_CONTROL_QUEUE_EXCLUSIVE = True
CELERY_EVENT_QUEUE_EXCLUSIVE = True
# The worker's heartbeat file, which bin/worker-alive reads (see config/celery_app.py).
CELERY_WORKER_ALIVE_FILE = env.str("WORKER_ALIVE_FILE", default=str(VAR_DIR / "worker.alive"))
CELERY_WORKER_ALIVE_INTERVAL = env.float("WORKER_ALIVE_INTERVAL", default=10.0)
# The worker logs through LOGGING (JSON lines, request ids), not Celery's own set-up.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A broker that does not answer must not hold the web request for long.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Redis only: RabbitMQ redelivers by itself what a closed channel had not acknowledged, and
# has no visibility timeout.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {}
    if CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://"))
    else {"visibility_timeout": 3600, "socket_connect_timeout": 2}
)
if REDIS_URL and CELERY_BROKER_URL == REDIS_URL:
    # Beside the caches in REDIS_URL's database: kombu's fixed key names (celery, unacked,
    # _kombu.binding.*) and its pub/sub channels get a prefix of their own.
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = "broker:"
if REDIS_SENTINELS and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_URL, _sentinel_transport = sentinel.broker(
        CELERY_BROKER_URL, REDIS_SENTINELS, REDIS_SENTINEL_PASSWORD
    )
    CELERY_BROKER_TRANSPORT_OPTIONS.update(_sentinel_transport)
# Task time limits (45 s) and retries (about 5 minutes) stay far below the visibility timeout.
CELERY_BEAT_SCHEDULE = {
    "passwordless-sweep-outbox": {
        "task": "passwordless.sweep_outbox",
        "schedule": env.float("SWEEP_INTERVAL", default=30.0),
    },
    "passwordless-purge": {"task": "passwordless.purge", "schedule": 3600.0},
}

# Mail: EMAIL_URL in django-environ's form (smtp://host:port, consolemail://...). Without
# it, development writes mail to the development inbox, and production hands it to an SMTP
# server on localhost:25 (Django's default): codes never land in files on a server's disk.
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
elif DEBUG:
    EMAIL_BACKEND = "config.devinbox.DevInboxBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
DEV_INBOX_DIR = VAR_DIR / "inbox"
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Sign-in <signin@localhost>")

# CORS for browser API clients: an exact allow-list; the same origins may send CSRF-checked
# POSTs. A preflight from any other origin gets no Access-Control-Allow-Origin.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = True
CORS_URLS_REGEX = r"^/(api/|\.well-known/).*$"
CSRF_TRUSTED_ORIGINS = CORS_ALLOWED_ORIGINS

# Authentication
AUTH_USER_MODEL = "accounts.User"
# SessionModelBackend reads the user and whether the session's device is live in one
# statement; sign-ins record it (PASSWORDLESS_AUTH_BACKEND defaults to it once it is listed).
# ModelBackend stays after it for the sessions signed in before, which recorded it (Django
# signs out a session whose backend is not listed): they are still checked, by the cache
# and the row. It can go once they have all passed SESSION_ABSOLUTE_TIMEOUT (14 days).
AUTHENTICATION_BACKENDS = [
    "passwordless.backends.SessionModelBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "passwordless:login"
LOGIN_REDIRECT_URL = "home"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

RATELIMIT_USE_CACHE = "ratelimit"
RATELIMIT_FAIL_OPEN = False

PASSWORDLESS_SITE_URL = SITE_URL
# A key of its own for the HMAC of codes and tokens: a database dump and a leaked
# SECRET_KEY are then both needed to test guesses offline.
PASSWORDLESS_HASH_KEY = env.str("PASSWORDLESS_HASH_KEY", default="") or None
PASSWORDLESS_SWEEP_AFTER = env.float("SWEEP_AFTER", default=30.0)


def _jwt_keys() -> list[str]:
    """Ed25519 PEM keys from JWT_PRIVATE_KEY (signs) and JWT_PREVIOUS_PRIVATE_KEY (still
    verifies, for rotation); in development, a key kept under VAR_DIR."""
    keys = [
        env.str(name, default="").replace("\\n", "\n")
        for name in ("JWT_PRIVATE_KEY", "JWT_PREVIOUS_PRIVATE_KEY")
    ]
    keys = [k for k in keys if k.strip()]
    if keys or not DEBUG:
        return keys
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = VAR_DIR / "jwt-development-key.pem"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
    return [path.read_text()]


PASSWORDLESS_JWT_PRIVATE_KEYS = _jwt_keys()
# Proxies whose X-Forwarded-For is believed, e.g. "10.0.0.0/8,127.0.0.1". None by default.
PASSWORDLESS_TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
PASSWORDLESS_SEND_RATES_PER_EMAIL = env.str("SEND_RATES_PER_EMAIL", default="1/m,5/h")
PASSWORDLESS_SEND_RATES_PER_IP = env.str("SEND_RATES_PER_IP", default="20/h")
PASSWORDLESS_VERIFY_RATES_PER_IP = env.str("VERIFY_RATES_PER_IP", default="30/5m")
PASSWORDLESS_SIGNUP_ENABLED = env.bool("PASSWORDLESS_SIGNUP_ENABLED", default=True)
# issue 18: who may sign up ("open", "invite_only", "closed"; docs/signup.md), and the
# email form's bot defences: its minimum seconds to submit, and a CAPTCHA ("turnstile" or
# "hcaptcha", with its keys) when one is set.
PASSWORDLESS_SIGNUP_POLICY = env.str("SIGNUP_POLICY", default="open")
PASSWORDLESS_FORM_MIN_SECONDS = env.float("FORM_MIN_SECONDS", default=2)
PASSWORDLESS_CAPTCHA = env.str("CAPTCHA", default="") or None
PASSWORDLESS_CAPTCHA_SITE_KEY = env.str("CAPTCHA_SITE_KEY", default="")
PASSWORDLESS_CAPTCHA_SECRET_KEY = env.str("CAPTCHA_SECRET_KEY", default="")

# Security headers and cookies. With DEBUG off (production) cookies are Secure and
# __Host- prefixed (no Domain, Path=/, HTTPS only), HSTS is on and http redirects to https.
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
if SECURE_COOKIES:
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
if env.bool("BEHIND_TLS_PROXY", default=False):
    # The proxy terminates TLS and says so in X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Internationalisation and static files
LANGUAGE_CODE = "en-us"
# The languages pages and mail are offered in: the app ships catalogues for these
# (passwordless/locale/), the project its own (locale/).
LANGUAGES = [
    ("en", _("English")),
    ("de", _("German")),
    ("fr", _("French")),
    ("es", _("Spanish")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
# Static files served by the web process itself (whitenoise), compressed and cached. In
# production whitenoise serves only what was collected into STATIC_ROOT: the release step
# (bin/release) collects them, and so does the image build. In development they are read
# from the source tree.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
if WHITENOISE_USE_FINDERS:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it to exist

# One JSON object per line in production (LOG_FORMAT=json), each with a request id.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'.")
LOGGING = logs.logging_config(LOG_LEVEL, json_lines=LOG_FORMAT == "json")
logging.captureWarnings(True)  # Python warnings become log records too
