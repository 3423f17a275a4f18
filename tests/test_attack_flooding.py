"""Flooding past a rate limit, over HTTP: counted in a bounded number of audit rows."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from passwordless import audit, clock, services
from passwordless.models import AuthEvent, FailureBudget
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import FrozenClock

pytestmark = pytest.mark.django_db(transaction=True)


def _refusals() -> tuple[int, int]:
    """Rows of refusals, and the refusals they count."""
    rows = AuthEvent.objects.filter(kind=AuthEvent.Kind.RATE_LIMITED)
    n = rows.count()
    assert n <= 2, f"{n} rows: one per refusal"
    return n, rows.aggregate(n=Sum("count"))["n"] or 0


def test_fifty_refused_sends_are_one_counted_row(site: str) -> None:
    api = ApiClient(site)
    assert api.send("victim@example.org").status_code == 202
    statuses = [api.send("victim@example.org").status_code for _ in range(50)]
    assert statuses == [429] * 50
    assert _refusals() == (1, 50)
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.RATE_LIMITED)
    assert (event.reason, event.ip, event.masked_email) == (
        "send",
        "127.0.0.1",
        "v***@example.org",
    )
    assert str(event).startswith("rate_limited x50 at ")


def test_a_flood_over_many_addresses_is_still_one_row_per_client(site: str) -> None:
    api = ApiClient(site)
    sent = [api.send(f"victim{i}@example.org").status_code for i in range(70)]
    assert sent.count(202) == 20  # the client's own limit, 20 an hour
    assert _refusals() == (1, 50)


def test_concurrent_refusals_are_all_counted(site: str) -> None:
    assert ApiClient(site).send("victim@example.org").status_code == 202
    start = threading.Barrier(16)
    statuses: list[int] = []

    def flood() -> None:
        api = ApiClient(site)
        start.wait()
        for _ in range(3):
            statuses.append(api.send("victim@example.org").status_code)

    threads = [threading.Thread(target=flood) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [429] * 48
    assert _refusals() == (1, 48)


def test_a_new_window_gets_a_new_row(site: str, settings: Any, frozen_clock: FrozenClock) -> None:
    settings.PASSWORDLESS_RATE_LIMITED_EVENT_WINDOW = 600
    browser = Browser(site)
    browser.start("victim@example.org")
    for _ in range(3):
        assert browser.start("victim@example.org").status_code == 429
    frozen_clock.advance(minutes=10)
    for _ in range(2):
        assert browser.start("victim@example.org").status_code == 429
    counts = sorted(AuthEvent.objects.filter(kind="rate_limited").values_list("count", flat=True))
    assert counts == [2, 3]


def test_verify_floods_are_counted_too(site: str) -> None:
    browser = Browser(site)
    browser.start("victim@example.org")
    token = browser.csrf_token("/auth/code/")
    statuses = [
        browser.post("/auth/code/", {"code": "000000"}, token=token).status_code for _ in range(40)
    ]
    refused = statuses.count(429)
    assert refused >= 10
    rows, total = _refusals()
    assert rows <= 2 and total == refused


def test_purge_deletes_spent_failure_budgets(frozen_clock: FrozenClock, settings: Any) -> None:
    now = clock.now()
    longest = timedelta(hours=1)  # FAILURE_BACKOFF's longest; FAILURE_LIMIT is 20
    FailureBudget.objects.create(email="reset@example.org")
    FailureBudget.objects.create(
        email="spent@example.org", failures=25, last_failure_at=now - longest * 20 - timedelta(1)
    )
    FailureBudget.objects.create(
        email="waiting@example.org", failures=25, last_failure_at=now - longest * 19
    )
    FailureBudget.objects.create(
        email="approvals@example.org",
        failures=1,
        last_failure_at=now - timedelta(days=60),
        approval_failures=1,
    )
    assert services.purge()["budgets"] == 2
    kept = sorted(FailureBudget.objects.values_list("email", flat=True))
    assert kept == ["approvals@example.org", "waiting@example.org"]


def test_first_refusals_racing_share_one_row() -> None:
    """Eight processes' first refusals at once: one insert wins, the others count in it."""
    start = threading.Barrier(8)

    def refuse() -> None:
        start.wait()
        for _ in range(5):
            audit.record(AuthEvent.Kind.RATE_LIMITED, email="victim@example.org", reason="send")
        connection.close()

    threads = [threading.Thread(target=refuse) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _refusals() == (1, 40)
