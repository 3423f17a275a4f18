"""Which of the machine's services answer, for the test settings and the skips.

With ``REQUIRE_SERVICES=1`` (set by CI) a missing service is an error, not a skip.
"""

from __future__ import annotations

import os
import socket

POSTGRES = ("PostgreSQL", "127.0.0.1", 5432)
#: A session running the suite beside another one gives each its own Redis server
#: (``TEST_REDIS_PORT``) and test database (``TEST_DB_NAME``), so neither clears the
#: other's caches or drops its database.
REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))
REDIS = ("Redis", "127.0.0.1", REDIS_PORT)

REQUIRED = os.environ.get("REQUIRE_SERVICES") == "1"


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def probe(service: tuple[str, str, int]) -> bool:
    name, host, port = service
    if answers(host, port):
        return True
    if REQUIRED:
        raise RuntimeError(
            f"{name} is not answering on {host}:{port} and REQUIRE_SERVICES=1. "
            "Start it (see shared/services.md) or unset REQUIRE_SERVICES to skip its tests."
        )
    return False
