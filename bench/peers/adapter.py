"""django-allauth's adapter, except that every login code is ``bench.peers.CODE``.

The code is still kept in the session, compared, and mailed (to the dummy backend)
as allauth does; only its value is known in advance, so wrk can confirm it.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter

from bench.peers import CODE


class PredictableCodeAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    def generate_login_code(self) -> str:
        return CODE
