"""The per-address failure budgets: wrong codes and wrong approval numbers add up
across requests.

After ``FAILURE_LIMIT`` consecutive wrong codes for one address, no code for
it is accepted until a wait has passed: 30 s after the limit, doubling with
each further wrong code, up to an hour. Links are not affected: a 256-bit
token cannot be guessed, and the person holding the email can still sign in.

After ``APPROVAL_FAILURE_LIMIT`` wrong numbers typed on approval pages, approving
from another device is off for the address, with no timer: a guesser who waits
gets nothing more. It comes back when the address signs in by code or by a link
in the browser that asked, which only the mailbox's owner can do.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from ..conf import app_settings
from ..models import FailureBudget

__all__ = [
    "approval_is_off",
    "approval_is_off_for",
    "current",
    "failing",
    "for_update",
    "for_update_or_new",
    "has_failures",
    "record_failure",
    "record_wrong_number",
    "reset",
    "seconds_to_wait",
    "wait_of",
]


def current(email: str) -> FailureBudget | None:
    """The address's budget as it stands, unlocked (for pages); ``None`` if it never failed."""
    return FailureBudget.objects.filter(email=email).first()


def for_update_or_new(email: str) -> FailureBudget:
    """The address's budget, created if need be, locked until the transaction ends: an
    answer judged under this lock cannot race another one past a cap."""
    budget, _ = FailureBudget.objects.select_for_update().get_or_create(email=email)
    return budget


def for_update(email: str) -> FailureBudget | None:
    """The address's budget, locked until the transaction ends; ``None`` if it never failed."""
    return FailureBudget.objects.select_for_update().filter(email=email).first()


def has_failures(budget: FailureBudget | None) -> bool:
    """Whether a success must ``reset`` this budget (most addresses never fail)."""
    return budget is not None and (
        budget.failures > 0 or budget.last_failure_at is not None or budget.approval_failures > 0
    )


#: ``has_failures``, as SQL.
_FAILED = Q(failures__gt=0) | Q(last_failure_at__isnull=False) | Q(approval_failures__gt=0)


def failing(email: object) -> QuerySet[FailureBudget]:
    """The budget of ``email`` (a value or an ``OuterRef``) if a success must reset it: read
    in the statement that locks a request, it spares the reset that nearly always changes
    nothing."""
    return FailureBudget.objects.filter(_FAILED, email=email)


def seconds_to_wait(email: str, now: datetime) -> int:
    """How long before a code for ``email`` may be checked again (0: now)."""
    return wait_of(for_update(email), now)


def wait_of(budget: FailureBudget | None, now: datetime) -> int:
    """``seconds_to_wait`` for a budget already read with ``for_update``."""
    if budget is None or budget.last_failure_at is None:
        return 0
    over = budget.failures - app_settings.FAILURE_LIMIT
    if over < 0:
        return 0
    first, longest = app_settings.FAILURE_BACKOFF
    wait = min(first * (2**over), longest)
    remaining = (budget.last_failure_at + wait - now).total_seconds()
    return max(int(remaining + 0.999), 0)


def approval_is_off(budget: FailureBudget | None) -> bool:
    """Whether approving from another device is off for the budget's address."""
    return budget is not None and budget.approval_failures >= app_settings.APPROVAL_FAILURE_LIMIT


def approval_is_off_for(email: str) -> bool:
    """For pages: whether cross-device approval is on for the site but off for ``email``."""
    return app_settings.CROSS_DEVICE_APPROVAL and approval_is_off(current(email))


def record_wrong_number(email: str) -> FailureBudget:
    """Count one wrong approval number for ``email``; returns the budget, still locked."""
    budget = for_update_or_new(email)
    budget.approval_failures += 1
    budget.save(update_fields=["approval_failures"])
    return budget


def record_failure(email: str, now: datetime) -> None:
    budget = for_update_or_new(email)
    budget.failures += 1
    budget.last_failure_at = now
    budget.save(update_fields=["failures", "last_failure_at"])


def reset(email: str, *, approvals: bool = True) -> None:
    """A success clears the wrong codes; ``approvals=False`` keeps the wrong numbers, for a
    sign-in that was itself approved from another device (it proves no mailbox)."""
    fields: dict[str, object] = {"failures": 0, "last_failure_at": None}
    if approvals:
        fields["approval_failures"] = 0
    FailureBudget.objects.filter(email=email).update(**fields)
