"""Keep link tokens out of logs.

Access logs and Django's ``django.request`` warnings print request paths, and
the path of a magic link holds its token. Attach ``RedactLinkTokens`` to those
loggers (or use ``redact`` in a server's access logger).
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactLinkTokens", "redact"]

_LINK_TOKEN = re.compile(r"(/link/)[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    """``/auth/link/<token>/`` becomes ``/auth/link/[redacted]/``."""
    return _LINK_TOKEN.sub(r"\1[redacted]", text)


class RedactLinkTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
