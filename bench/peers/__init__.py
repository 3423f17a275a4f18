"""The peers of the load benchmark: what a project would use instead of this app.

Each runs in a gunicorn of its own (``bench.peers.settings``, chosen by ``BENCH_PEER``)
on the same stack as ours: the same PostgreSQL server (a database of its own), the
same Redis, sessions in Redis through the same engine, the same gunicorn settings.

- ``bare``: Django alone, with its own middleware: a view that calls ``login()``,
  the project's home page behind ``login_required``, and a view that verifies an
  HS256 JWT and loads its user. Always there: it needs nothing beyond Django and PyJWT.
- ``allauth``: django-allauth's "login by code" (request a code, confirm it).
- ``sesame``: django-sesame's one-time magic links (``sesame.views.LoginView``).

django-allauth and django-sesame are the ``bench`` extra; without them those two
peers are skipped (``bench.load`` says so) and everything else still runs.
"""

from __future__ import annotations

import importlib.util

#: The code django-allauth mints here (``bench.peers.adapter``), so wrk can confirm it.
CODE = "424242"
#: The HS256 key, issuer and audience of the bare bearer view's tokens.
JWT_KEY = "bench-peers-hs256-key-0123456789-abcdefghijklmnopqrstuvwxyz"
JWT_ISSUER = "https://peers.bench.test"
JWT_AUDIENCE = "https://peers.bench.test"
#: Each peer server, the module that must be importable, and the distribution to install.
PEERS: dict[str, tuple[str, str] | None] = {
    "bare": None,
    "allauth": ("allauth", "django-allauth"),
    "sesame": ("sesame", "django-sesame"),
}


def installed(peer: str) -> bool:
    needs = PEERS[peer]
    return needs is None or importlib.util.find_spec(needs[0]) is not None


def missing() -> list[str]:
    """The distributions of the peers that are not installed."""
    return [needs[1] for peer, needs in PEERS.items() if needs and not installed(peer)]
