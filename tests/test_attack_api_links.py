"""A leaked link or request id is not a bearer credential through the JSON API.

Links travel through mail servers, scanners, proxies' logs and forwarded mail, and a
request id sits in the poll's URL. The API therefore binds each request to the client
that asked, as the web pages do: a browser by its binding cookie, any other client by
the verifier of the PKCE challenge (RFC 7636, S256) it sent with its send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from passwordless.models import LoginRequest, TokenFamily
from tests.api_client import ApiClient, challenge_of
from tests.attacker import Browser
from tests.conftest import Delivered

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]


def test_a_leaked_link_gets_no_tokens_from_a_fresh_client(site: str, mailbox: Mailbox) -> None:
    app = ApiClient(site)
    assert app.send("alice@example.org").status_code == 202
    token = mailbox("alice@example.org").token

    thief = ApiClient(site)  # no cookies, and a verifier of its own
    for attempt in (
        thief.post("/api/auth/verify/link", {"token": token, "mode": "jwt"}),
        thief.verify_link(token),
        # A thief with cookies and a CSRF token of its own, in session mode.
        ApiClient(site, browser=True).verify_link(token, mode="session"),
    ):
        assert attempt.status_code == 403, attempt.text
        assert attempt.json()["error"]["code"] == "client_mismatch"
        assert "access" not in attempt.json()
    assert TokenFamily.objects.count() == 0
    assert LoginRequest.objects.get().status == "pending"  # the link still works...

    signed_in = app.verify_link(token)  # ...for the client that asked, with its verifier
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["email"] == "alice@example.org"
    assert app.me(signed_in.json()["access"]).status_code == 200


def test_without_a_challenge_only_the_browser_that_asked_can_redeem_the_link(
    site: str, mailbox: Mailbox
) -> None:
    native = ApiClient(site)  # keeps no cookies and sent no challenge
    assert native.send("bob@example.org", pkce=False).status_code == 202
    token = mailbox("bob@example.org").token
    refused = native.verify_link(token)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "client_mismatch"
    assert TokenFamily.objects.count() == 0

    # A browser client that sent no challenge is bound by its cookie, as the pages are.
    spa = ApiClient(site, browser=True)
    assert spa.send("carol@example.org", pkce=False).status_code == 202
    token = mailbox("carol@example.org").token
    other = ApiClient(site, browser=True)
    assert other.verify_link(token, mode="session").status_code == 403
    assert spa.verify_link(token, mode="session").status_code == 200
    assert spa.get("/api/auth/me").json()["user"]["email"] == "carol@example.org"


def test_an_approval_is_collected_only_with_the_verifier(site: str, mailbox: Mailbox) -> None:
    app = ApiClient(site)
    request_id = app.send("dave@example.org").json()["request_id"]
    waiting = app.get(f"/api/auth/requests/{request_id}?mode=jwt").json()
    phone = Browser(site)
    phone.open_link(mailbox("dave@example.org").link)
    assert phone.approve(waiting["match_number"]).status_code == 200

    # Someone who read the poll's URL in a log knows the request id, and nothing more.
    snoop = ApiClient(site)
    polled = snoop.get(f"/api/auth/requests/{request_id}?mode=jwt")
    assert polled.status_code == 200 and polled.json()["status"] == "approved"
    assert "access" not in polled.json()
    for body in ({"mode": "jwt"}, {"mode": "jwt", "code_verifier": snoop.verifier}):
        refused = snoop.post(f"/api/auth/requests/{request_id}", body)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "client_mismatch"
    assert TokenFamily.objects.count() == 0

    collected = app.collect(request_id)
    assert collected.status_code == 200, collected.text
    assert collected.json()["status"] == "signed_in" and collected.json()["access"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code_challenge": "short"}, "code_challenge"),
        ({"code_challenge": "x" * 42 + "="}, "code_challenge"),
        ({"code_challenge": ""}, "code_challenge"),
        ({"code_challenge": challenge_of("v" * 43), "code_challenge_method": "plain"}, None),
    ],
)
def test_malformed_challenges_are_refused_clearly(
    site: str, body: dict[str, str], field: str | None
) -> None:
    answer = ApiClient(site).post("/api/auth/send", {"email": "erin@example.org", **body})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "field_invalid"
    assert (field or "code_challenge_method") in error["message"]
    assert LoginRequest.objects.count() == 0


@pytest.mark.parametrize("challenge", ["A" * 43 + "\n", "A" * 43 + "\r\n", "A" * 42 + "\n"])
def test_a_challenge_with_a_line_break_is_refused_before_any_budget_is_spent(
    site: str, challenge: str, settings: Any
) -> None:
    """Found by review: ``$`` matched before a trailing newline, so a 44-character
    challenge reached the 43-character column: a 503 after the send was counted."""
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "1/h"
    app = ApiClient(site)
    answer = app.post("/api/auth/send", {"email": "erin@example.org", "code_challenge": challenge})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "field_invalid"
    assert app.send("erin@example.org").status_code == 202  # the budget was not spent
