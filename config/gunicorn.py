"""gunicorn settings: ``gunicorn -c config/gunicorn.py config.wsgi``.

gunicorn logs through the project's logging configuration (JSON lines in
production), and its access lines carry the request's id and, like every
line, have link tokens redacted.
"""

from typing import Any

import environ
from gunicorn.glogging import Logger

from config.logs import HEADER, logging_config
from passwordless.log import redact

_env = environ.Env()
_json = _env.str("LOG_FORMAT", default="plain" if _env.bool("DEBUG", default=True) else "json")

accesslog = "-"
logconfig_dict = logging_config(_env.str("LOG_LEVEL", default="INFO"), json_lines=_json == "json")


class RedactingLogger(Logger):  # type: ignore[misc]
    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f", "{raw_uri}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms

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
