"""The outbox: a broker that loses the task loses no email, and old rows are purged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from kombu.exceptions import OperationalError

from passwordless import clock, services, tasks
from passwordless.models import AuthEvent, LoginRequest, LoginSecret
from tests.attacker import Browser
from tests.conftest import Delivered, FrozenClock
from tests.factories import LoginRequestFactory, UserFactory, issue_secret

Mailbox = Callable[..., Delivered]


def _broker_down(*args: Any, **kwargs: Any) -> None:
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.mark.django_db(transaction=True)
def test_broker_down_gives_the_normal_answer_and_the_sweeper_sends_later(
    site: str, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, frozen_clock: FrozenClock
) -> None:
    UserFactory.create(email="known@example.org")
    working = tasks.send_login_email.apply_async
    monkeypatch.setattr(tasks.send_login_email, "apply_async", _broker_down)
    answers = []
    for email in ("known@example.org", "unknown@example.org"):
        browser = Browser(site)
        answers.append(browser.start(email).status_code)
        assert browser.get("/auth/code/").status_code == 200
    assert answers == [302, 302]
    assert mail.outbox == []
    assert set(LoginRequest.objects.values_list("delivery", flat=True)) == {"pending"}

    monkeypatch.setattr(tasks.send_login_email, "apply_async", working)  # the broker is back
    frozen_clock.advance(seconds=31)
    assert services.sweep_outbox() == {"expired": 0, "queued": 2}
    assert mailbox("known@example.org").code
    assert mailbox("unknown@example.org").code
    assert services.sweep_outbox() == {"expired": 0, "queued": 0}  # nothing twice
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_the_sweeper_leaves_fresh_requests_and_expires_late_ones(
    frozen_clock: FrozenClock,
) -> None:
    fresh = LoginRequestFactory.create()
    late = LoginRequestFactory.create()
    frozen_clock.advance(seconds=20)
    LoginRequest.objects.filter(pk=late.pk).update(expires_at=clock.now())
    assert services.sweep_outbox() == {"expired": 1, "queued": 0}
    fresh.refresh_from_db()
    late.refresh_from_db()
    assert (fresh.delivery, late.delivery) == ("pending", "expired")


@pytest.mark.django_db
def test_the_sweeper_sends_a_deferred_request_whose_retry_was_lost(
    frozen_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry waits in the broker; a Redis without persistence restarting loses it."""
    login_request = LoginRequestFactory.create(expires_at=clock.now() + timedelta(minutes=10))
    LoginRequest.objects.filter(pk=login_request.pk).update(delivery="deferred")
    frozen_clock.advance(minutes=5)  # still inside the task's own retries: left to them
    assert services.sweep_outbox() == {"expired": 0, "queued": 0}
    frozen_clock.advance(minutes=1, seconds=1)
    assert services.sweep_outbox() == {"expired": 0, "queued": 1}
    assert len(mail.outbox) == 1
    login_request.refresh_from_db()
    assert login_request.delivery == "sent"


@pytest.mark.django_db
def test_a_task_queued_twice_sends_once() -> None:
    login_request = LoginRequestFactory.create()
    tasks.send_login_email.apply((login_request.pk,))
    tasks.send_login_email.apply((login_request.pk,))
    assert len(mail.outbox) == 1
    assert LoginSecret.objects.filter(request=login_request).count() == 1


@pytest.mark.django_db
def test_purge_deletes_old_rows_in_batches(frozen_clock: FrozenClock) -> None:
    old = [LoginRequestFactory.create() for _ in range(5)]
    for request in old:
        issue_secret(request)
        AuthEvent.objects.create(kind="requested", login_request=request)
    frozen_clock.advance(days=8)
    recent = LoginRequestFactory.create()
    assert services.purge(batch=2) == {
        "requests": 5,
        "events": 0,
        "budgets": 0,
        "passkey_challenges": 0,
    }
    assert list(LoginRequest.objects.all()) == [recent]
    assert not LoginSecret.objects.exists()
    frozen_clock.advance(days=90)
    assert services.purge(batch=2)["events"] == 5


@pytest.mark.django_db
def test_delivery_report_command(frozen_clock: FrozenClock) -> None:
    for seconds in (1, 2, 3, 4):
        request = LoginRequestFactory.create()
        LoginRequest.objects.filter(pk=request.pk).update(
            delivery="sent", sent_at=request.created_at + timedelta(seconds=seconds)
        )
    LoginRequestFactory.create()  # still pending
    frozen_clock.advance(seconds=90)
    out = StringIO()
    call_command("passwordless_delivery", stdout=out)
    text = out.getvalue()
    assert "sent                  4" in text
    assert "latency p50           2.50 s" in text
    assert "oldest pending        90.00 s" in text


@pytest.mark.django_db
def test_a_resend_over_a_dead_claim_sends_no_extra_email(
    frozen_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: a worker killed after its claim, then a resend whose email goes out;
    the dead claim must not make the settled send look unsettled to the sweeper."""
    from passwordless.services import delivery

    login_request = LoginRequestFactory.create()
    claim = delivery._claim(login_request.pk)  # worker 1 claims, then dies before sending
    assert not isinstance(claim, str)
    frozen_clock.advance(seconds=5)
    monkeypatch.setattr("passwordless.services.start._check_send", lambda *a, **k: None)
    services.resend(login_request.public_id)
    tasks.send_login_email.apply((login_request.pk,))  # worker 2: sent and settled
    assert len(mail.outbox) == 1
    for _ in range(3):
        frozen_clock.advance(seconds=61)
        assert services.sweep_outbox() == {"expired": 0, "queued": 0}
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_claim_whose_worker_died_is_sent_again_by_the_sweeper(
    frozen_clock: FrozenClock,
) -> None:
    from passwordless.services import delivery

    login_request = LoginRequestFactory.create(expires_at=clock.now() + timedelta(minutes=10))
    assert not isinstance(delivery._claim(login_request.pk), str)  # claimed, never sent
    frozen_clock.advance(seconds=30)
    assert services.sweep_outbox() == {"expired": 0, "queued": 0}  # may still be sending
    frozen_clock.advance(seconds=31)
    assert services.sweep_outbox() == {"expired": 0, "queued": 1}
    assert len(mail.outbox) == 1
    assert services.sweep_outbox() == {"expired": 0, "queued": 0}
