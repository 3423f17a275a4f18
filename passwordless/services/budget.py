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

__all__ = [
    "approval_paused_for",
    "has_failures",
    "locked",
    "pause_approval",
    "record_failure",
    "reset",
    "seconds_to_wait",
    "wait_of",
]


def locked(email: str) -> FailureBudget | None:
    """The address's budget, locked until the transaction ends; ``None`` if it never failed."""
    return FailureBudget.objects.select_for_update().filter(email=email).first()


def has_failures(budget: FailureBudget | None) -> bool:
    """Whether a success must ``reset`` this budget (most addresses never fail)."""
    return budget is not None and (budget.failures > 0 or budget.last_failure_at is not None)


def seconds_to_wait(email: str, now: datetime) -> int:
    """How long before a code for ``email`` may be checked again (0: now)."""
    return wait_of(locked(email), now)


def wait_of(budget: FailureBudget | None, now: datetime) -> int:
    """``seconds_to_wait`` for a budget already read with ``locked``."""
    if budget is None or budget.last_failure_at is None:
        return 0
    over = budget.failures - app_settings.FAILURE_LIMIT
    if over < 0:
        return 0
    first, longest = app_settings.FAILURE_BACKOFF
    wait = min(first * (2**over), longest)
    remaining = (budget.last_failure_at + wait - now).total_seconds()
    return max(int(remaining + 0.999), 0)


def approval_paused_for(email: str, now: datetime) -> int:
    """Seconds before another device may approve a request for ``email`` again (0: now)."""
    budget = FailureBudget.objects.filter(email=email).first()
    if budget is None or budget.approval_blocked_until is None:
        return 0
    return max(int((budget.approval_blocked_until - now).total_seconds() + 0.999), 0)


def pause_approval(email: str, now: datetime) -> None:
    """A wrong number was picked: count it as a wrong code, and pause approvals."""
    record_failure(email, now)
    FailureBudget.objects.filter(email=email).update(
        approval_blocked_until=now + app_settings.APPROVAL_PAUSE
    )


def record_failure(email: str, now: datetime) -> None:
    budget, _ = FailureBudget.objects.select_for_update().get_or_create(email=email)
    budget.failures += 1
    budget.last_failure_at = now
    budget.save(update_fields=["failures", "last_failure_at"])


def reset(email: str) -> None:
    FailureBudget.objects.filter(email=email).update(failures=0, last_failure_at=None)
