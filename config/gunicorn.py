"""gunicorn settings: ``gunicorn -c config/gunicorn.py config.wsgi``.

The access log is gunicorn's own, so it gets its own redaction of link tokens.
"""

from typing import Any

from gunicorn.glogging import Logger

from passwordless.log import redact

accesslog = "-"


class RedactingLogger(Logger):  # type: ignore[misc]
    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f", "{raw_uri}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms


logger_class = RedactingLogger
