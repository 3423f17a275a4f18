"""The per-address failure budget: wrong codes add up across requests.

After ``FAILURE_LIMIT`` consecutive wrong codes for one address, no code for
it is accepted until a wait has passed: 30 s after the limit, doubling with
each further wrong code, up to an hour. Links are not affected: a 256-bit
token cannot be guessed, and the person holding the email can still sign in.
"""

from __future__ import annotations

from datetime import datetime

from ..conf import app_settings
from ..models import FailureBudget

__all__ = ["record_failure", "reset", "seconds_to_wait"]


def seconds_to_wait(email: str, now: datetime) -> int:
    """How long before a code for ``email`` may be checked again (0: now)."""
    budget = FailureBudget.objects.select_for_update().filter(email=email).first()
    if budget is None or budget.last_failure_at is None:
        return 0
    over = budget.failures - app_settings.FAILURE_LIMIT
    if over < 0:
        return 0
    first, longest = app_settings.FAILURE_BACKOFF
    wait = min(first * (2**over), longest)
    remaining = (budget.last_failure_at + wait - now).total_seconds()
    return max(int(remaining + 0.999), 0)


def record_failure(email: str, now: datetime) -> None:
    budget, _ = FailureBudget.objects.select_for_update().get_or_create(email=email)
    budget.failures += 1
    budget.last_failure_at = now
    budget.save(update_fields=["failures", "last_failure_at"])


def reset(email: str) -> None:
    FailureBudget.objects.filter(email=email).update(failures=0, last_failure_at=None)
