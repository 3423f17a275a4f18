"""Keep link tokens and request ids out of logs.

Access logs and Django's ``django.request`` lines print request paths (and Django
adds the request itself as a field), and the path of a magic link holds its token,
the path of an API poll the id that can collect a sign-in. Attach ``RedactSecrets``
to the handlers (or use ``redact`` in a server's access logger), as the project does.

The default patterns (a segment after ``/link/``, ``/requests/``, ``/undo/`` or
``/invite/``) always apply; the paths where the project's URLconf mounts the link,
undo, invitation and poll views are added to them once the URLconf can be loaded, so
a project that routes them elsewhere is covered too. A line logged before that (a
server's master process, or while the URLconf is being imported) gets the defaults.
"""

from __future__ import annotations

import logging
import re
import threading

from django.conf import settings
from django.urls import get_urlconf

from .conf import mounted_path

__all__ = ["RedactLinkTokens", "RedactSecrets", "redact"]

#: A path segment after ``/link/`` or ``/requests/`` (also percent-encoded, as in a
#: ``next`` parameter), up to the next delimiter: whatever was typed there, a live
#: token, one with a stray character, or one cut short. Too much redacted costs nothing.
_SECRET_SEGMENT = re.compile(
    r"((?:/|%2f)(?:link|requests|undo|invite)(?:/|%2f))[^/?#&\s\"'<>\\]+", re.IGNORECASE
)
_REDACTED = r"\1[redacted]"
#: The secret-bearing URLs of the app, reversed with a placeholder for the secret.
_SECRET_URLS = (
    "passwordless:link",
    "passwordless:email-undo",
    "passwordless:invitation",
    "passwordless-api:request",
)
_PLACEHOLDER = "0redacted0"
_mounted: dict[str, re.Pattern[str] | None] = {}
_resolving = threading.local()
#: LogRecord attributes that are not the caller's fields (the message is handled apart).
_OWN_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _prefix_pattern(prefixes: list[str]) -> re.Pattern[str] | None:
    """The segment after any of ``prefixes``, a slash also matching ``%2f``."""
    if not prefixes:
        return None
    escaped = ("(?:/|%2f)".join(map(re.escape, p.split("/"))) for p in prefixes)
    return re.compile(rf"((?:{'|'.join(escaped)}))[^/?#&\s\"'<>\\]+", re.IGNORECASE)


def _mounted_pattern() -> re.Pattern[str] | None:
    """The mounted prefixes' pattern, cached per URLconf; ``None`` while it cannot load."""
    if getattr(_resolving, "active", False):
        return None  # a line logged while the URLconf itself loads
    _resolving.active = True
    try:
        key = str(get_urlconf() or settings.ROOT_URLCONF)
        if key not in _mounted:
            paths = (mounted_path(name, _PLACEHOLDER) for name in _SECRET_URLS)
            prefixes = [p.partition(_PLACEHOLDER)[0] for p in paths if p]
            _mounted[key] = _prefix_pattern(prefixes)
        return _mounted[key]
    except Exception:  # settings or URLconf not ready: the defaults still apply
        return None
    finally:
        _resolving.active = False


def redact(text: str) -> str:
    """``/auth/link/<token>/`` becomes ``/auth/link/[redacted]/``, and
    ``/api/auth/requests/<id>`` becomes ``/api/auth/requests/[redacted]``, wherever
    the project mounts them."""
    text = _SECRET_SEGMENT.sub(_REDACTED, text)
    mounted = _mounted_pattern()
    return text if mounted is None else mounted.sub(_REDACTED, text)


class RedactSecrets(logging.Filter):
    """Redact the message and every field of a record, whatever its type: a field that is
    not a plain value (Django's ``request``) is replaced by its redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        for name, value in list(vars(record).items()):
            if name in _OWN_ATTRIBUTES or value is None or isinstance(value, bool | int | float):
                continue
            text = value if isinstance(value, str) else str(value)
            clean = redact(text)
            if clean != text:
                setattr(record, name, clean)
        return True


#: The name this filter had before it redacted every field.
RedactLinkTokens = RedactSecrets
