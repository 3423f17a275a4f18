"""gunicorn settings: ``gunicorn -c config/gunicorn.py config.wsgi``.

gunicorn logs through the project's logging configuration (JSON lines in
production), and its access lines carry the request's id and, like every
line, have link tokens and sign-in request ids redacted: every field of the
line (request line, path, query, Referer, any header or environ value a custom
``access_log_format`` names).

Bound to a unix socket (``BIND=unix:/run/web.sock``, nginx in front), requests
have no ``REMOTE_ADDR``: gunicorn refuses to start unless ``TRUSTED_PROXIES``
holds ``unix``, so that the client's address is read from ``X-Forwarded-For``
rather than every client sharing one rate-limit bucket.
"""

from typing import Any

import environ
from gunicorn.glogging import Logger

from config.logs import HEADER, logging_config, redact

_env = environ.Env()
_json = _env.str("LOG_FORMAT", default="plain" if _env.bool("DEBUG", default=False) else "json")

accesslog = "-"
logconfig_dict = logging_config(_env.str("LOG_LEVEL", default="INFO"), json_lines=_json == "json")


def on_starting(server: Any) -> None:
    """Refuse a unix socket whose peer the app would not trust (see the docstring)."""
    unix = [b for b in server.cfg.bind if str(b).startswith("unix:")]
    if unix and "unix" not in _env.list("TRUSTED_PROXIES", default=[]):
        raise RuntimeError(
            f"bound to {', '.join(unix)}, where requests have no REMOTE_ADDR: set "
            "TRUSTED_PROXIES to include 'unix' and have the proxy send X-Forwarded-For "
            "(see the README, 'Behind nginx'), or every client would share one rate limit."
        )


class RedactingLogger(Logger):  # type: ignore[misc]
    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """gunicorn's access line, with the fields a log search wants kept apart."""
        atoms = self.atoms(resp, req, environ, request_time)
        request_id = next((v for k, v in resp.headers if k.lower() == HEADER.lower()), "-")
        fields = {
            "request_id": request_id,
            "method": atoms["m"],
            "path": atoms["U"],
            "status": resp.status_code,
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "remote_addr": atoms["h"],
        }
        try:
            self.access_log.info(
                self.cfg.access_log_format, self.atoms_wrapper_class(atoms), extra=fields
            )
        except Exception:
            self.exception("Could not write the access log line")


logger_class = RedactingLogger
