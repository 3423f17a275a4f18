"""The core attacks of the sign-in flow, run against both pathways: HTML pages and the API.

Both call the same service layer, so they must hold the same line: the same
statuses for the same situations.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from passwordless.models import FailureBudget, LoginRequest
from tests import pathways
from tests.conftest import Delivered, FrozenClock, RateLimitClock
from tests.factories import UserFactory
from tests.helpers import all_at_once, wrong_code

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("kind", ["html", "api"]),
]

Mailbox = Callable[..., Delivered]


def test_codes_expire_ten_minutes_after_minting(
    kind: str, site: str, mailbox: Mailbox, frozen_clock: FrozenClock
) -> None:
    early = pathways.make(kind, site)
    early.start("early@example.org")
    frozen_clock.advance(seconds=599)
    assert early.submit(mailbox("early@example.org").code).signed_in

    late = pathways.make(kind, site)
    late.start("late@example.org")
    frozen_clock.advance(seconds=600)
    outcome = late.submit(mailbox("late@example.org").code)
    assert (outcome.signed_in, outcome.status) == (False, 410)


@pytest.mark.postgres
def test_twenty_concurrent_submissions_of_one_code_sign_in_once(
    kind: str, site: str, mailbox: Mailbox
) -> None:
    first = pathways.make(kind, site)
    first.start("race@example.org")
    code = mailbox("race@example.org").code
    clients = [first] + [first.copy() for _ in range(19)]
    outcomes = all_at_once([functools.partial(c.submit, code) for c in clients])
    assert [o.signed_in for o in outcomes].count(True) == 1
    assert LoginRequest.objects.get().status == "signed_in"


def test_five_wrong_codes_lock_the_request(kind: str, site: str, mailbox: Mailbox) -> None:
    client = pathways.make(kind, site)
    client.start("alice@example.org")
    code = mailbox("alice@example.org").code
    statuses = [client.submit(wrong_code(code, i)).status for i in range(5)]
    assert statuses == [400, 400, 400, 400, 423]
    assert client.submit(code).status == 423


def test_failure_budget_survives_new_requests(
    kind: str,
    site: str,
    mailbox: Mailbox,
    settings: Any,
    rate_clock: RateLimitClock,
    frozen_clock: FrozenClock,
) -> None:
    settings.PASSWORDLESS_VERIFY_RATES_PER_IP = "1000/m"
    for round_ in range(4):
        rate_clock.advance(61)
        client = pathways.make(kind, site)
        client.start("target@example.org")
        code = mailbox("target@example.org").code
        for i in range(5):
            client.submit(wrong_code(code, round_ + i))
    assert FailureBudget.objects.get().failures == 20
    rate_clock.advance(61)
    client = pathways.make(kind, site)
    client.start("target@example.org")
    code = mailbox("target@example.org").code
    refused = client.submit(code)
    assert (refused.status, refused.retry_after) == (429, 30)  # even the right code waits
    assert LoginRequest.objects.filter(status="pending").get().attempts == 0
    frozen_clock.advance(seconds=30)
    assert client.submit(wrong_code(code)).status == 400
    again = client.submit(code)
    assert (again.status, again.retry_after) == (429, 60)  # each wrong code doubles the wait
    frozen_clock.advance(seconds=60)
    assert client.submit(code).signed_in
    assert FailureBudget.objects.get().failures == 0  # a success resets it


def test_send_limits_per_address(kind: str, site: str, rate_clock: RateLimitClock) -> None:
    rate_clock.start_of_window(hashlib.sha256(b"busy@example.org").hexdigest(), 3600)
    assert pathways.make(kind, site).start("busy@example.org").signed_in
    limited = pathways.make(kind, site).start("busy@example.org")
    assert limited.status == 429 and 0 < (limited.retry_after or 0) <= 60
    for _ in range(4):
        rate_clock.advance(61)
        assert pathways.make(kind, site).start("busy@example.org").signed_in
    rate_clock.advance(61)
    assert pathways.make(kind, site).start("busy@example.org").status == 429


def test_known_and_unknown_addresses_are_answered_alike(
    kind: str, site: str, settings: Any
) -> None:
    settings.PASSWORDLESS_SIGNUP_ENABLED = False
    UserFactory.create(email="known@example.org")
    outcomes = [pathways.make(kind, site).start(e) for e in ("known@example.org", "x@example.org")]
    statuses = {o.status for o in outcomes}
    assert statuses == {200}
    bodies = [
        o.response.text.replace(e, "E")
        for o, e in zip(outcomes, ("known@example.org", "x@example.org"), strict=True)
    ]
    if kind == "api":
        bodies = [
            str(sorted((k, v) for k, v in o.response.json().items() if k != "request_id"))
            for o in outcomes
        ]
    assert bodies[0] == bodies[1]
