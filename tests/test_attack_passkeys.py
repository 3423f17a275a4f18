"""Passkeys attacked over HTTP, against the live server, with real WebAuthn answers.

``tests.webauthn_authenticator.SoftAuthenticator`` signs each answer with a real P-256
key, so every refusal below is the server's check of one tampered field, never a
signature that was simply wrong: replays, another session's challenge, an expired or
wrong-purpose one, a wrong origin or rp id, another user's passkey for a step-up, a
counter that goes backwards, and registering without a fresh step-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.core import mail

from passwordless.models import AuthEvent, Passkey, PasskeyChallenge, UserSession
from passwordless.testing import FrozenClock
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import CODE_RE, RateLimitClock, read_sign_in_mail
from tests.webauthn_authenticator import FLAG_AT, FLAG_UP, SoftAuthenticator

pytestmark = pytest.mark.django_db(transaction=True)

ALICE, BOB = "alice@example.org", "bob@example.org"


def call(browser: Browser, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    """POST JSON to one of the pages' passkey endpoints, as passkeys.js does."""
    token = browser.csrf_token("/auth/login/")
    return browser.session.post(
        browser.url(path),
        json=body or {},
        headers={"X-CSRFToken": token, "Origin": browser.base_url},
        allow_redirects=False,
        timeout=20,
    )


def error_of(response: requests.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def sign_in_code(email: str) -> str:
    """The code of the newest sign-in email to ``email`` (security notices go there too)."""
    for message in reversed(mail.outbox):
        if email in message.to and CODE_RE.search(str(message.body)):
            return read_sign_in_mail(message).code
    raise AssertionError(f"no sign-in email to {email}")


@pytest.fixture
def signed_in(site: str, rate_clock: RateLimitClock) -> Callable[[str], Browser]:
    def sign_in(email: str) -> Browser:
        rate_clock.advance(61)  # one email per address a minute
        browser = Browser(site)
        browser.start(email)
        assert browser.submit_code(sign_in_code(email)).status_code == 302
        return browser

    return sign_in


def register(browser: Browser, authenticator: SoftAuthenticator, **tamper: Any) -> Any:
    begun = call(browser, "/auth/passkeys/register/begin/")
    assert begun.status_code == 200, begun.text
    body = begun.json()
    answer = authenticator.register(body["options"], **tamper)
    return call(
        browser,
        "/auth/passkeys/register/finish/",
        {"challenge_id": body["challenge_id"], "credential": answer, "name": "Test key"},
    )


def begin(browser: Browser, purpose: str = "auth") -> dict[str, Any]:
    begun = call(browser, f"/auth/passkeys/{purpose}/begin/")
    assert begun.status_code == 200, begun.text
    body: dict[str, Any] = begun.json()
    return body


def finish(
    browser: Browser, begun: dict[str, Any], answer: dict[str, Any], purpose: str = "auth"
) -> requests.Response:
    body = {"challenge_id": begun["challenge_id"], "credential": answer}
    return call(browser, f"/auth/passkeys/{purpose}/finish/", body)


@pytest.fixture
def alice_key(site: str, signed_in: Callable[[str], Browser]) -> SoftAuthenticator:
    """Alice's passkey, added right after her email sign-in (fresh for the step-up)."""
    key = SoftAuthenticator(origin=site)
    added = register(signed_in(ALICE), key)
    assert added.status_code == 201, added.text
    return key


def test_a_passkey_signs_in_once_per_challenge(site: str, alice_key: SoftAuthenticator) -> None:
    browser = Browser(site)
    begun = begin(browser)
    signed = finish(browser, begun, alice_key.assert_(begun["options"]))
    assert signed.status_code == 200, signed.text
    assert browser.get("/").text.count(ALICE) >= 1
    assert UserSession.objects.filter(method="passkey", ended_at=None).count() == 1

    # The same challenge again, with a new valid signature over it: spent.
    replayed = finish(Browser(site), begun, alice_key.assert_(begun["options"]))
    assert error_of(replayed) in ("passkey_challenge_invalid", "passkey_challenge_used")
    again = finish(browser, begun, alice_key.assert_(begun["options"]))
    # The browser's session key was cycled by login(): the challenge is no longer its own.
    assert error_of(again) in ("passkey_challenge_invalid", "passkey_challenge_used")


def test_a_replayed_answer_in_the_same_session_is_refused(
    site: str, alice_key: SoftAuthenticator
) -> None:
    browser = Browser(site)
    begun = begin(browser)
    bad = finish(browser, begun, alice_key.assert_(begun["options"], origin="http://evil.test"))
    assert error_of(bad) == "passkey_invalid"
    # A failed try spent the challenge too: no second try on it, even a good one.
    retry = finish(browser, begun, alice_key.assert_(begun["options"]))
    assert retry.status_code == 409
    assert error_of(retry) == "passkey_challenge_used"


def test_a_challenge_from_another_session_is_refused(
    site: str, alice_key: SoftAuthenticator
) -> None:
    victim, attacker = Browser(site), Browser(site)
    begun = begin(victim)
    stolen = finish(attacker, begun, alice_key.assert_(begun["options"]))
    assert stolen.status_code == 404
    assert error_of(stolen) == "passkey_challenge_invalid"
    assert not UserSession.objects.filter(method="passkey").exists()
    # Unspent: the browser that asked can still use it.
    assert finish(victim, begun, alice_key.assert_(begun["options"])).status_code == 200


def test_an_expired_challenge_is_refused(
    site: str, alice_key: SoftAuthenticator, frozen_clock: FrozenClock
) -> None:
    browser = Browser(site)
    begun = begin(browser)
    frozen_clock.advance(minutes=5, seconds=1)
    late = finish(browser, begun, alice_key.assert_(begun["options"]))
    assert late.status_code == 410
    assert error_of(late) == "passkey_challenge_expired"


def test_a_challenge_of_another_purpose_is_refused(
    site: str, alice_key: SoftAuthenticator, signed_in: Callable[[str], Browser]
) -> None:
    alice = signed_in(ALICE)
    step_up = begin(alice, "reauth")
    wrong = finish(alice, step_up, alice_key.assert_(step_up["options"]), purpose="auth")
    assert error_of(wrong) == "passkey_challenge_invalid"


@pytest.mark.parametrize(
    "tamper",
    [
        {"origin": "http://evil.test"},
        {"origin": "https://localhost"},
        {"rp_id": "evil.test"},
        {"rp_id": "127.0.0.1"},
        {"kind": "webauthn.create"},
        {"flags": FLAG_UP},  # present, not verified
        {"user_handle": b"\0" * 32},
    ],
    ids=["origin", "scheme", "rp-id", "rp-ip", "type", "no-uv", "user-handle"],
)
def test_a_tampered_assertion_signs_no_one_in(
    site: str, alice_key: SoftAuthenticator, tamper: dict[str, Any]
) -> None:
    browser = Browser(site)
    begun = begin(browser)
    refused = finish(browser, begun, alice_key.assert_(begun["options"], **tamper))
    assert refused.status_code == 400, refused.text
    assert error_of(refused) == "passkey_invalid"
    assert not UserSession.objects.filter(method="passkey").exists()


@pytest.mark.parametrize(
    "tamper",
    [{"origin": "http://evil.test"}, {"rp_id": "evil.test"}, {"flags": FLAG_UP | FLAG_AT}],
    ids=["origin", "rp-id", "no-uv"],
)
def test_a_tampered_registration_adds_nothing(
    site: str, signed_in: Callable[[str], Browser], tamper: dict[str, Any]
) -> None:
    added = register(signed_in(ALICE), SoftAuthenticator(origin=site), **tamper)
    assert added.status_code == 400
    assert error_of(added) == "passkey_invalid"
    assert not Passkey.objects.exists()


def test_another_users_passkey_is_no_step_up(
    site: str, alice_key: SoftAuthenticator, signed_in: Callable[[str], Browser]
) -> None:
    bob = signed_in(BOB)
    bob_key = SoftAuthenticator(origin=site)
    assert register(bob, bob_key).status_code == 201
    begun = begin(bob, "reauth")
    # Alice's authenticator answers Bob's step-up challenge: a good signature, wrong user.
    refused = finish(bob, begun, alice_key.assert_(begun["options"]), purpose="reauth")
    assert error_of(refused) == "passkey_unknown"
    row = UserSession.objects.get(user__email=BOB)
    assert row.reauthenticated_at is None
    # Bob's own passkey does it.
    begun = begin(bob, "reauth")
    assert finish(bob, begun, bob_key.assert_(begun["options"]), purpose="reauth").ok
    row.refresh_from_db()
    assert row.reauthenticated_at is not None


def test_a_step_up_challenge_of_another_session_is_refused(
    site: str, alice_key: SoftAuthenticator, signed_in: Callable[[str], Browser]
) -> None:
    laptop, phone = signed_in(ALICE), signed_in(ALICE)
    begun = begin(laptop, "reauth")
    refused = finish(phone, begun, alice_key.assert_(begun["options"]), purpose="reauth")
    assert error_of(refused) == "passkey_challenge_invalid"
    assert not UserSession.objects.filter(reauthenticated_at__isnull=False).exists()


def test_a_sign_count_that_goes_backwards_is_refused_as_a_clone(
    site: str, alice_key: SoftAuthenticator
) -> None:
    browser = Browser(site)
    begun = begin(browser)
    assert finish(browser, begun, alice_key.assert_(begun["options"], sign_count=7)).ok
    assert Passkey.objects.get().sign_count == 7
    for count in (7, 3):
        copy = Browser(site)
        begun = begin(copy)
        refused = finish(copy, begun, alice_key.assert_(begun["options"], sign_count=count))
        assert refused.status_code == 403
        assert error_of(refused) == "passkey_counter"
    assert Passkey.objects.get().sign_count == 7
    assert AuthEvent.objects.filter(kind="failed", reason="passkey_counter").count() == 2
    assert UserSession.objects.filter(method="passkey").count() == 1


def test_adding_a_passkey_needs_a_fresh_step_up(
    site: str, signed_in: Callable[[str], Browser], frozen_clock: FrozenClock
) -> None:
    alice = signed_in(ALICE)
    frozen_clock.advance(minutes=6)
    refused = call(alice, "/auth/passkeys/register/begin/")
    assert refused.status_code == 403
    assert error_of(refused) == "reauthentication_required"
    assert not PasskeyChallenge.objects.exists()


def test_a_challenge_begun_fresh_cannot_finish_stale(
    site: str, signed_in: Callable[[str], Browser], frozen_clock: FrozenClock
) -> None:
    alice = signed_in(ALICE)
    begun = call(alice, "/auth/passkeys/register/begin/").json()
    frozen_clock.advance(minutes=5)
    answer = SoftAuthenticator(origin=site).register(begun["options"])
    body = {"challenge_id": begun["challenge_id"], "credential": answer}
    refused = call(alice, "/auth/passkeys/register/finish/", body)
    assert error_of(refused) == "reauthentication_required"
    assert not Passkey.objects.exists()


def test_removing_a_passkey_needs_a_fresh_step_up(
    site: str, alice_key: SoftAuthenticator, frozen_clock: FrozenClock
) -> None:
    browser = Browser(site)
    begun = begin(browser)
    assert finish(browser, begun, alice_key.assert_(begun["options"])).ok
    frozen_clock.advance(minutes=6)
    passkey = Passkey.objects.get()
    token = browser.csrf_token("/auth/passkeys/")
    form = {"passkey": str(passkey.pk), "action": "remove"}
    refused = browser.post("/auth/passkeys/", form, token=token)
    assert refused.status_code == 302
    assert refused.headers["Location"].startswith("/auth/reauthenticate/?next=")
    assert Passkey.objects.exists()
    begun = begin(browser, "reauth")
    assert finish(browser, begun, alice_key.assert_(begun["options"]), purpose="reauth").ok
    removed = browser.post("/auth/passkeys/", form, token=browser.csrf_token("/auth/passkeys/"))
    assert removed.headers["Location"] == "/auth/passkeys/"
    assert not Passkey.objects.exists()
    assert AuthEvent.objects.filter(kind="passkey_removed").count() == 1


def test_the_api_signs_in_with_a_passkey_for_tokens(
    site: str, alice_key: SoftAuthenticator, signed_in: Callable[[str], Browser]
) -> None:
    api = ApiClient(site)
    begun = api.post("/api/auth/passkeys/auth/begin", {"mode": "jwt"}).json()
    answer = alice_key.assert_(begun["options"])
    body = {"challenge_id": begun["challenge_id"], "credential": answer, "mode": "jwt"}
    signed = api.post("/api/auth/passkeys/auth/finish", body)
    assert signed.status_code == 200, signed.text
    access = signed.json()["access"]
    bearer = {"Authorization": f"Bearer {access}"}
    listed = api.get("/api/auth/passkeys", headers=bearer).json()["passkeys"]
    assert [p["name"] for p in listed] == ["Test key"]
    assert listed[0]["last_used_at"] is not None

    # A second challenge id is no use to another client: bound to the bearer's session.
    step_up = api.post("/api/auth/passkeys/reauth/begin", headers=bearer).json()
    answer = alice_key.assert_(step_up["options"])
    other = ApiClient(site)
    stolen = other.post(
        "/api/auth/passkeys/reauth/finish",
        {"challenge_id": step_up["challenge_id"], "credential": answer},
    )
    assert stolen.status_code == 401  # not even signed in
    done = api.post(
        "/api/auth/passkeys/reauth/finish",
        {"challenge_id": step_up["challenge_id"], "credential": answer},
        headers=bearer,
    )
    assert done.status_code == 200, done.text
    removed = api.delete(f"/api/auth/passkeys/{listed[0]['id']}", headers=bearer)
    assert removed.status_code == 204
    assert not Passkey.objects.exists()


def test_an_api_challenge_id_is_bound_to_its_token_session(
    site: str, alice_key: SoftAuthenticator, signed_in: Callable[[str], Browser]
) -> None:
    """Two token clients of the same user: one's step-up challenge is not the other's."""

    def tokens() -> dict[str, str]:
        api = ApiClient(site)
        begun = api.post("/api/auth/passkeys/auth/begin", {"mode": "jwt"}).json()
        body = {
            "challenge_id": begun["challenge_id"],
            "credential": alice_key.assert_(begun["options"]),
            "mode": "jwt",
        }
        return {
            "Authorization": "Bearer "
            + api.post("/api/auth/passkeys/auth/finish", body).json()["access"]
        }

    api, first, second = ApiClient(site), tokens(), tokens()
    begun = api.post("/api/auth/passkeys/reauth/begin", headers=first).json()
    body = {
        "challenge_id": begun["challenge_id"],
        "credential": alice_key.assert_(begun["options"]),
    }
    refused = api.post("/api/auth/passkeys/reauth/finish", body, headers=second)
    assert refused.status_code == 404
    assert error_of(refused) == "passkey_challenge_invalid"


def test_garbage_is_a_clear_400(site: str, alice_key: SoftAuthenticator) -> None:
    browser = Browser(site)
    for credential in ({}, {"id": "x" * 2000}, {"id": "AAAA", "response": "nope"}, "a string"):
        begun = begin(browser)
        refused = call(
            browser,
            "/auth/passkeys/auth/finish/",
            {"challenge_id": begun["challenge_id"], "credential": credential},
        )
        assert refused.status_code == 400, refused.text
        assert error_of(refused) in ("passkey_invalid", "passkey_unknown")
    begun = begin(browser)
    answer = alice_key.assert_(begun["options"])
    answer["response"]["authenticatorData"] = "AAAA"
    refused = finish(browser, begun, answer)
    assert error_of(refused) == "passkey_invalid"
