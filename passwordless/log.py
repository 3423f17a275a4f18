"""Keep link tokens and request ids out of logs.

Access logs and Django's ``django.request`` lines print request paths (and Django
adds the request itself as a field), and the path of a magic link holds its token,
the path of an API poll the id that can collect a sign-in. Attach ``RedactSecrets``
to the handlers (or use ``redact`` in a server's access logger), as the project does.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactLinkTokens", "RedactSecrets", "redact"]

#: A path segment after ``/link/`` or ``/requests/`` (also percent-encoded, as in a
#: ``next`` parameter), up to the next delimiter: whatever was typed there, a live
#: token, one with a stray character, or one cut short. Too much redacted costs nothing.
_SECRET_SEGMENT = re.compile(
    r"((?:/|%2f)(?:link|requests)(?:/|%2f))[^/?#&\s\"'<>\\]+", re.IGNORECASE
)
_REDACTED = r"\1[redacted]"
#: LogRecord attributes that are not the caller's fields (the message is handled apart).
_OWN_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    """``/auth/link/<token>/`` becomes ``/auth/link/[redacted]/``, and
    ``/api/auth/requests/<id>`` becomes ``/api/auth/requests/[redacted]``."""
    return _SECRET_SEGMENT.sub(_REDACTED, text)


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
