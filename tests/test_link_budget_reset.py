"""A link's sign-in resets the address's failure budget only when it holds failures: the
statement that locks the request says so, sparing an UPDATE that nearly always changes
nothing, and never skipping one that matters."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from passwordless import services
from passwordless.crypto import hash_token
from passwordless.models import FailureBudget
from tests.factories import LoginRequestFactory, bound_request, issue_secret

pytestmark = pytest.mark.django_db


def budget_writes(queries: CaptureQueriesContext) -> list[str]:
    table = FailureBudget._meta.db_table
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'UPDATE "{table}"')]


def test_a_clean_address_signs_in_by_link_without_touching_its_budget() -> None:
    login_request = LoginRequestFactory.create(email="clean@example.org")
    issued = issue_secret(login_request)
    with CaptureQueriesContext(connection) as queries:
        services.confirm_link(hash_token(issued.token), request=bound_request(login_request))
    assert budget_writes(queries) == []


@pytest.mark.parametrize(
    "dirt",
    [{"failures": 2}, {"approval_failures": 3}, {"failures": 0, "last_failure_at": "now"}],
)
def test_an_address_with_failures_has_them_reset_by_its_link(dirt: dict[str, object]) -> None:
    from passwordless import clock

    login_request = LoginRequestFactory.create(email="dirty@example.org")
    values = {k: (clock.now() if v == "now" else v) for k, v in dirt.items()}
    FailureBudget.objects.create(email="dirty@example.org", **values)
    issued = issue_secret(login_request)
    with CaptureQueriesContext(connection) as queries:
        services.confirm_link(hash_token(issued.token), request=bound_request(login_request))
    assert len(budget_writes(queries)) == 1
    budget = FailureBudget.objects.get(email="dirty@example.org")
    assert (budget.failures, budget.last_failure_at, budget.approval_failures) == (0, None, 0)


def test_another_address_failures_do_not_count() -> None:
    FailureBudget.objects.create(email="other@example.org", failures=4)
    login_request = LoginRequestFactory.create(email="mine@example.org")
    issued = issue_secret(login_request)
    with CaptureQueriesContext(connection) as queries:
        services.confirm_link(hash_token(issued.token), request=bound_request(login_request))
    assert budget_writes(queries) == []
    assert FailureBudget.objects.get(email="other@example.org").failures == 4
