"""The load benchmark's adapter: codes and links the load generator can predict.

Every code is ``BENCH_CODE`` and every link token is derived from the request's
public id, so wrk can complete sign-ins without reading mail. The
``passwordless.E013`` system check refuses it; only ``bench.settings``
silences that check.
"""

from __future__ import annotations

from passwordless.adapter import DefaultAdapter
from passwordless.models import LoginRequest

BENCH_CODE = "424242"


def bench_token(public_id: str) -> str:
    return f"bench-{public_id}"


class PredictableAdapter(DefaultAdapter):
    predictable_secrets = True

    def mint_code(self, login_request: LoginRequest) -> str:
        return BENCH_CODE

    def mint_token(self, login_request: LoginRequest) -> str:
        return bench_token(login_request.public_id)
