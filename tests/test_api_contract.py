"""Every status the OpenAPI document promises is one the live API really gives.

Each documented (method, path, status) is driven by a scenario below; a
status without a scenario fails the test, so the document cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.core import mail

from passwordless.api.openapi import openapi_document
from passwordless.models import LoginRequest
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import CODE_RE, Delivered, FrozenClock
from tests.webauthn_authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
DEAD_CACHE = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
}


class World:
    """What a scenario needs: the site, its mail, its settings and its clock."""

    def __init__(self, site: str, mailbox: Mailbox, settings: Any, clock: FrozenClock) -> None:
        self.site, self.mailbox, self.settings, self.clock = site, mailbox, settings, clock
        self.count = 0
        # The app: one client, with one PKCE verifier, sends and completes its requests.
        self.app = ApiClient(site)

    def api(self, **kwargs: Any) -> ApiClient:
        return ApiClient(self.site, **kwargs) if kwargs else self.app

    def started(self) -> tuple[str, Delivered]:
        """A fresh request: its id, and the mail that came for it."""
        self.count += 1
        email = f"contract{self.count}@example.org"
        request_id = self.api().send(email).json()["request_id"]
        return request_id, self.mailbox(email)

    def token_of(self, delivered: Delivered) -> str:
        return delivered.link.rstrip("/").rsplit("/", 1)[1]

    def used(self) -> tuple[str, Delivered]:
        request_id, delivered = self.started()
        self.api().verify_code(request_id, delivered.code)
        return request_id, delivered

    def locked(self) -> tuple[str, Delivered]:
        request_id, delivered = self.started()
        wrong = "000000" if delivered.code != "000000" else "111111"
        for _ in range(5):
            self.api().verify_code(request_id, wrong)
        return request_id, delivered

    def expired(self) -> tuple[str, Delivered]:
        request_id, delivered = self.started()
        self.clock.advance(seconds=601)
        return request_id, delivered

    def limit(self, setting: str) -> None:
        setattr(self.settings, setting, "1/h")

    def break_cache(self) -> None:
        self.settings.CACHES = {**self.settings.CACHES, "ratelimit": DEAD_CACHE}


def _code(w: World, make: Callable[[], tuple[str, Delivered]]) -> requests.Response:
    request_id, delivered = make()
    return w.api().verify_code(request_id, delivered.code)


def _link(w: World, make: Callable[[], tuple[str, Delivered]]) -> requests.Response:
    _, delivered = make()
    return w.api().verify_link(w.token_of(delivered))


def _poll(w: World, request_id: str) -> requests.Response:
    return w.api().get(f"/api/auth/requests/{request_id}?mode=jwt")


def _twice(call: Callable[[], requests.Response]) -> requests.Response:
    call()
    return call()


def _resend(w: World, rates: str = "", broken: bool = False) -> requests.Response:
    if rates:
        w.settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = rates
    request_id = w.started()[0]
    if broken:
        w.break_cache()
    return w.api().post("/api/auth/resend", {"request_id": request_id})


def _end_own_session(w: World) -> requests.Response:
    bearer = {"Authorization": f"Bearer {_signed_in(w)['access']}"}
    (session,) = w.api().get("/api/auth/sessions", bearer).json()["sessions"]
    return w.api().delete(f"/api/auth/sessions/{session['id']}", bearer)


def _collect(w: World, make: Callable[[], tuple[str, Delivered]]) -> requests.Response:
    return w.api().collect(make()[0])


def _approved(w: World) -> tuple[str, Delivered]:
    request_id, delivered = w.started()
    phone = Browser(w.site)
    phone.open_link(delivered.link)
    phone.approve(LoginRequest.objects.get(public_id=request_id).match_text)
    return request_id, delivered


def _approved_then_disabled(w: World) -> requests.Response:
    request_id, delivered = w.started()
    phone = Browser(w.site)
    phone.open_link(delivered.link)
    phone.approve(LoginRequest.objects.get(public_id=request_id).match_text)
    from accounts.models import User

    User.objects.create_user(delivered.message.to[0], is_active=False)
    return w.api().collect(request_id)


def _signed_in(w: World) -> dict[str, Any]:
    request_id, delivered = w.started()
    return dict(w.api().verify_code(request_id, delivered.code).json())


Scenario = Callable[[World], requests.Response]


def _malformed(w: World, path: str) -> requests.Response:
    return w.api().session.post(
        w.site + path, data=b"{", headers={"Content-Type": "application/json"}, timeout=20
    )


SCENARIOS: dict[tuple[str, str, int], Scenario] = {
    ("get", "/api/auth/csrf", 200): lambda w: w.api().get("/api/auth/csrf"),
    ("post", "/api/auth/send", 202): lambda w: w.api().send("new@example.org"),
    ("post", "/api/auth/send", 400): lambda w: w.api().send("nope"),
    ("post", "/api/auth/send", 403): lambda w: w.api(browser=True).post(
        "/api/auth/send", {"email": "a@example.org"}, {"X-CSRFToken": "forged"}
    ),
    ("post", "/api/auth/send", 429): lambda w: _twice(lambda: w.api().send("twice@example.org")),
    ("post", "/api/auth/resend", 202): lambda w: _resend(w, rates="10/m"),
    ("post", "/api/auth/resend", 404): lambda w: w.api().post(
        "/api/auth/resend", {"request_id": "unknown"}
    ),
    ("post", "/api/auth/resend", 429): lambda w: _resend(w),
    ("post", "/api/auth/resend", 503): lambda w: _resend(w, broken=True),
    ("post", "/api/auth/verify/code", 200): lambda w: _code(w, w.started),
    ("post", "/api/auth/verify/code", 404): lambda w: w.api().verify_code("unknown", "123456"),
    ("post", "/api/auth/verify/code", 409): lambda w: _code(w, w.used),
    ("post", "/api/auth/verify/code", 410): lambda w: _code(w, w.expired),
    ("post", "/api/auth/verify/code", 423): lambda w: _code(w, w.locked),
    ("post", "/api/auth/verify/link", 200): lambda w: _link(w, w.started),
    ("post", "/api/auth/verify/link", 404): lambda w: w.api().verify_link("unknown-token"),
    ("post", "/api/auth/verify/link", 409): lambda w: _link(w, w.used),
    ("post", "/api/auth/verify/link", 410): lambda w: _link(w, w.expired),
    ("post", "/api/auth/verify/link", 423): lambda w: _link(w, w.locked),
    ("get", "/api/auth/requests/{request_id}", 200): lambda w: _poll(w, w.started()[0]),
    ("get", "/api/auth/requests/{request_id}", 400): lambda w: w.api().get(
        f"/api/auth/requests/{w.started()[0]}?mode=cookie"
    ),
    # Approved, and polled in session mode by a client without the binding cookie.
    ("get", "/api/auth/requests/{request_id}", 403): lambda w: w.api().get(
        f"/api/auth/requests/{_approved(w)[0]}"
    ),
    ("post", "/api/auth/requests/{request_id}", 403): _approved_then_disabled,
    # GET polls and POST collects: any other method is refused.
    ("get", "/api/auth/requests/{request_id}", 405): lambda w: w.api().delete(
        "/api/auth/requests/unknown"
    ),
    ("post", "/api/auth/requests/{request_id}", 405): lambda w: w.api().session.put(
        f"{w.site}/api/auth/requests/unknown", timeout=20
    ),
    ("get", "/api/auth/requests/{request_id}", 404): lambda w: _poll(w, "unknown"),
    ("get", "/api/auth/requests/{request_id}", 409): lambda w: _poll(w, w.used()[0]),
    ("get", "/api/auth/requests/{request_id}", 410): lambda w: _poll(w, w.expired()[0]),
    ("get", "/api/auth/requests/{request_id}", 423): lambda w: _poll(w, w.locked()[0]),
    ("post", "/api/auth/requests/{request_id}", 200): lambda w: _collect(w, lambda: _approved(w)),
    ("post", "/api/auth/requests/{request_id}", 404): lambda w: w.api().collect("unknown"),
    ("post", "/api/auth/requests/{request_id}", 409): lambda w: _collect(w, w.used),
    ("post", "/api/auth/requests/{request_id}", 410): lambda w: _collect(w, w.expired),
    ("post", "/api/auth/requests/{request_id}", 423): lambda w: _collect(w, w.locked),
    ("get", "/api/auth/me", 200): lambda w: w.api().me(_signed_in(w)["access"]),
    ("get", "/api/auth/me", 401): lambda w: w.api().me(),
    ("post", "/api/auth/token/refresh", 200): lambda w: w.api().post(
        "/api/auth/token/refresh", {"refresh": _signed_in(w)["refresh"]}
    ),
    ("post", "/api/auth/token/refresh", 400): lambda w: w.api().post(
        "/api/auth/token/refresh", {}
    ),
    ("post", "/api/auth/token/refresh", 401): lambda w: w.api().post(
        "/api/auth/token/refresh", {"refresh": "rt_nope"}
    ),
    ("post", "/api/auth/logout", 204): lambda w: w.api().post("/api/auth/logout"),
    ("post", "/api/auth/logout", 400): lambda w: _malformed(w, "/api/auth/logout"),
    ("post", "/api/auth/logout", 401): lambda w: w.api().post(
        "/api/auth/logout", headers={"Authorization": "Bearer not.a.token"}
    ),
    ("post", "/api/auth/logout", 403): lambda w: w.api(browser=True).post(
        "/api/auth/logout", headers={"X-CSRFToken": "forged"}
    ),
    ("get", "/api/auth/sessions", 200): lambda w: w.api().get(
        "/api/auth/sessions", {"Authorization": f"Bearer {_signed_in(w)['access']}"}
    ),
    ("get", "/api/auth/sessions", 401): lambda w: w.api().get("/api/auth/sessions"),
    ("delete", "/api/auth/sessions/{session_id}", 204): lambda w: _end_own_session(w),
    ("delete", "/api/auth/sessions/{session_id}", 401): lambda w: w.api().delete(
        "/api/auth/sessions/unknown"
    ),
    ("delete", "/api/auth/sessions/{session_id}", 403): lambda w: w.api(browser=True).delete(
        "/api/auth/sessions/unknown", {"X-CSRFToken": "forged"}
    ),
    ("delete", "/api/auth/sessions/{session_id}", 404): lambda w: w.api().delete(
        "/api/auth/sessions/unknown", {"Authorization": f"Bearer {_signed_in(w)['access']}"}
    ),
    ("get", "/api/auth/openapi.json", 200): lambda w: w.api().get("/api/auth/openapi.json"),
    ("get", "/.well-known/jwks.json", 200): lambda w: w.api().get("/.well-known/jwks.json"),
}


# Step-up (re-authentication): a token client's session, its step-up request and code.
_SEND, _VERIFY = "/api/auth/reauthenticate/send", "/api/auth/reauthenticate/verify"


def _bearer(w: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {_signed_in(w)['access']}"}


def _stepping_up(w: World) -> tuple[dict[str, str], str, str]:
    """A signed-in token client that asked for a step-up code: its header, the request id
    and the code mailed to it (a code only, no link)."""
    w.settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "10/m"
    bearer = _bearer(w)
    request_id = w.api().post(_SEND, None, bearer).json()["request_id"]
    message = mail.outbox[-1]
    match = CODE_RE.search(str(message.body))
    assert match and "confirm it's you" in message.subject, message.subject
    return bearer, request_id, match.group(1)


def _prove(
    w: World, before: Callable[[dict[str, str], str, str], object] | None = None, code: str = ""
) -> requests.Response:
    """Verify a step-up code (``code``, or else the right one), after ``before``."""
    bearer, request_id, right = _stepping_up(w)
    if before is not None:
        before(bearer, request_id, right)
    return w.api().post(_VERIFY, {"request_id": request_id, "code": code or right}, bearer)


def _wrong_codes(w: World, bearer: dict[str, str], request_id: str, right: str) -> None:
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        w.api().post(_VERIFY, {"request_id": request_id, "code": wrong}, bearer)


def _expired_step_up(w: World) -> requests.Response:
    w.settings.PASSWORDLESS_ACCESS_TOKEN_LIFETIME = 900  # still signed in after 10 minutes
    return _prove(w, lambda *_: w.clock.advance(seconds=601))


def _limit_verify(w: World, bearer: dict[str, str], request_id: str, right: str) -> None:
    w.limit("PASSWORDLESS_VERIFY_RATES_PER_IP")
    w.api().post(_VERIFY, {"request_id": request_id, "code": "000000"}, bearer)


def _send_broken(w: World) -> requests.Response:
    bearer = _bearer(w)
    w.break_cache()
    return w.api().post(_SEND, None, bearer)


def _stale_end_others(w: World) -> requests.Response:
    w.settings.PASSWORDLESS_ACCESS_TOKEN_LIFETIME = 900  # the token outlives the proof
    bearer = _bearer(w)
    w.clock.advance(minutes=6)  # past the window of the sign-in's proof
    return w.api().delete("/api/auth/sessions", bearer)


STEP_UP_SCENARIOS: dict[tuple[str, str, int], Scenario] = {
    ("post", _SEND, 202): lambda w: w.api().post(_SEND, None, _stepping_up(w)[0]),  # again
    ("post", _SEND, 401): lambda w: w.api().post(_SEND),
    # The sign-in just used the address's one email a minute.
    ("post", _SEND, 429): lambda w: w.api().post(_SEND, None, _bearer(w)),
    ("post", _SEND, 503): _send_broken,
    ("post", _VERIFY, 200): lambda w: _prove(w),
    ("post", _VERIFY, 400): lambda w: _prove(w, code="12"),
    ("post", _VERIFY, 401): lambda w: w.api().post(_VERIFY, {"request_id": "x", "code": "1"}),
    ("post", _VERIFY, 404): lambda w: w.api().post(
        _VERIFY, {"request_id": "unknown", "code": "123456"}, _bearer(w)
    ),
    ("post", _VERIFY, 409): lambda w: _prove(
        w, lambda b, r, c: w.api().post(_VERIFY, {"request_id": r, "code": c}, b)
    ),
    ("post", _VERIFY, 410): _expired_step_up,
    ("post", _VERIFY, 423): lambda w: _prove(w, lambda *a: _wrong_codes(w, *a)),
    ("post", _VERIFY, 429): lambda w: _prove(w, lambda *a: _limit_verify(w, *a)),
    ("post", _VERIFY, 503): lambda w: _prove(w, lambda *_: w.break_cache()),
    ("delete", "/api/auth/sessions", 200): lambda w: w.api().delete(
        "/api/auth/sessions", _bearer(w)
    ),
    ("delete", "/api/auth/sessions", 401): lambda w: w.api().delete("/api/auth/sessions"),
    ("delete", "/api/auth/sessions", 403): _stale_end_others,
}
SCENARIOS.update(STEP_UP_SCENARIOS)


# Passkeys: a token client's passkeys, made and used by the software authenticator (real
# P-256 signatures, for the live server's rp id: the host of ``site``, "localhost").
_PASSKEYS = "/api/auth/passkeys"
_REGISTER, _AUTH, _REAUTH = (f"{_PASSKEYS}/{kind}" for kind in ("register", "auth", "reauth"))


def _begun(w: World, path: str, bearer: dict[str, str] | None = None) -> dict[str, Any]:
    """A ceremony's challenge id and options (a jwt client's, without a bearer)."""
    begun = w.api().post(f"{path}/begin", None if bearer else {"mode": "jwt"}, bearer)
    assert begun.status_code == 200, begun.text
    body: dict[str, Any] = begun.json()
    return body


def _register(
    w: World, bearer: dict[str, str], key: SoftAuthenticator, **tamper: Any
) -> requests.Response:
    begun = _begun(w, _REGISTER, bearer)
    answer = key.register(begun["options"], **tamper)
    body = {"challenge_id": begun["challenge_id"], "credential": answer, "name": "Contract key"}
    return w.api().post(f"{_REGISTER}/finish", body, bearer)


def _with_passkey(w: World) -> tuple[dict[str, str], SoftAuthenticator, str]:
    """A token client signed in by email that just added a passkey: its header, the
    authenticator holding the passkey, and the passkey's id."""
    bearer, key = _bearer(w), SoftAuthenticator(origin=w.site)
    added = _register(w, bearer, key)
    assert added.status_code == 201, added.text
    return bearer, key, str(added.json()["passkey"]["id"])


def _answered(
    w: World,
    path: str,
    bearer: dict[str, str] | None,
    key: SoftAuthenticator | None = None,
    before: Callable[[], object] | None = None,
    times: int = 1,
) -> requests.Response:
    """Begin a sign-in (``bearer`` None) or step-up ceremony, and finish it ``times`` times
    with the same answer (``key``'s assertion, or an empty credential), after ``before``."""
    begun = _begun(w, path, bearer)
    answer = key.assert_(begun["options"]) if key else {}
    body: dict[str, Any] = {"challenge_id": begun["challenge_id"], "credential": answer}
    if bearer is None:
        body["mode"] = "jwt"
    if before is not None:
        before()
    for _ in range(times - 1):
        w.api().post(f"{path}/finish", body, bearer)
    return w.api().post(f"{path}/finish", body, bearer)


def _unknown_challenge(w: World, path: str, bearer: dict[str, str] | None) -> requests.Response:
    body = {"challenge_id": "unknown", "credential": {}, "mode": "jwt"}
    if bearer:
        del body["mode"]
    return w.api().post(f"{path}/finish", body, bearer)


def _passkeys_off(w: World, path: str, bearer: dict[str, str] | None) -> requests.Response:
    w.settings.PASSWORDLESS_PASSKEYS = False
    return w.api().post(f"{path}/begin", None if bearer else {"mode": "jwt"}, bearer)


def _begin_limited(w: World, path: str, bearer: dict[str, str] | None) -> requests.Response:
    """Each begin writes a challenge: counted as a waiting page's polls."""
    w.limit("PASSWORDLESS_POLL_RATES_PER_IP")
    body = None if bearer else {"mode": "jwt"}
    return _twice(lambda: w.api().post(f"{path}/begin", body, bearer))


def _begin_broken(w: World, path: str, bearer: dict[str, str] | None) -> requests.Response:
    w.break_cache()
    return w.api().post(f"{path}/begin", None if bearer else {"mode": "jwt"}, bearer)


def _finish_limited(w: World, path: str, bearer: dict[str, str] | None) -> requests.Response:
    """An answer counts as a code or a link submitted."""
    w.limit("PASSWORDLESS_VERIFY_RATES_PER_IP")
    return _twice(lambda: _unknown_challenge(w, path, bearer))


def _finish_broken(w: World, path: str, bearer: dict[str, str] | None) -> requests.Response:
    w.break_cache()
    return _unknown_challenge(w, path, bearer)


def _outlasting(w: World) -> None:
    """Tokens, and the sign-in's proof, that outlast a challenge's 5 minutes (set before
    the sign-in: a token's lifetime is fixed when it is issued)."""
    w.settings.PASSWORDLESS_ACCESS_TOKEN_LIFETIME = 900
    w.settings.PASSWORDLESS_REAUTHENTICATION_TIMEOUT = 900


def _late(w: World) -> None:
    w.clock.advance(minutes=5, seconds=1)


def _registered_late(w: World) -> requests.Response:
    _outlasting(w)
    bearer = _bearer(w)
    begun = _begun(w, _REGISTER, bearer)
    answer = SoftAuthenticator(origin=w.site).register(begun["options"])
    _late(w)
    body = {"challenge_id": begun["challenge_id"], "credential": answer}
    return w.api().post(f"{_REGISTER}/finish", body, bearer)


def _registered_twice(w: World) -> requests.Response:
    bearer = _bearer(w)
    begun = _begun(w, _REGISTER, bearer)
    answer = SoftAuthenticator(origin=w.site).register(begun["options"])
    body = {"challenge_id": begun["challenge_id"], "credential": answer}
    return _twice(lambda: w.api().post(f"{_REGISTER}/finish", body, bearer))


def _stepped_up_late(w: World) -> requests.Response:
    _outlasting(w)
    bearer, key, _ = _with_passkey(w)
    return _answered(w, _REAUTH, bearer, key, before=lambda: _late(w))


def _renamed(w: World, name: str) -> requests.Response:
    bearer, _, passkey_id = _with_passkey(w)
    return w.api().post(f"{_PASSKEYS}/{passkey_id}", {"name": name}, bearer)


def _removed(w: World, stale: bool = False) -> requests.Response:
    if stale:
        w.settings.PASSWORDLESS_ACCESS_TOKEN_LIFETIME = 900  # the token outlives the proof
    bearer, _, passkey_id = _with_passkey(w)
    if stale:
        w.clock.advance(minutes=6)  # past the window of the sign-in's proof
    return w.api().delete(f"{_PASSKEYS}/{passkey_id}", bearer)


def _ceremony_scenarios(path: str, signed_in: bool) -> dict[tuple[str, str, int], Scenario]:
    """What the three ceremonies answer alike: begin off, limited or broken; a finish of an
    unknown, spent or expired challenge, limited or broken; and 401 for a step-up's or a
    registration's without a bearer."""

    def bearer(w: World) -> dict[str, str] | None:
        return _bearer(w) if signed_in else None

    def with_key(w: World) -> dict[str, str] | None:
        # A step-up's begin needs a passkey to list; the others none.
        return _with_passkey(w)[0] if path == _REAUTH else bearer(w)

    scenarios: dict[tuple[str, str, int], Scenario] = {
        ("post", f"{path}/begin", 404): lambda w: _passkeys_off(w, path, with_key(w)),
        ("post", f"{path}/begin", 429): lambda w: _begin_limited(w, path, with_key(w)),
        ("post", f"{path}/begin", 503): lambda w: _begin_broken(w, path, with_key(w)),
        ("post", f"{path}/finish", 404): lambda w: _unknown_challenge(w, path, bearer(w)),
        ("post", f"{path}/finish", 429): lambda w: _finish_limited(w, path, bearer(w)),
        ("post", f"{path}/finish", 503): lambda w: _finish_broken(w, path, bearer(w)),
    }
    if signed_in:
        scenarios[("post", f"{path}/begin", 401)] = lambda w: w.api().post(f"{path}/begin")
        scenarios[("post", f"{path}/finish", 401)] = lambda w: w.api().post(
            f"{path}/finish", {"challenge_id": "x", "credential": {}}
        )
    return scenarios


PASSKEY_SCENARIOS: dict[tuple[str, str, int], Scenario] = {
    **_ceremony_scenarios(_REGISTER, signed_in=True),
    **_ceremony_scenarios(_AUTH, signed_in=False),
    **_ceremony_scenarios(_REAUTH, signed_in=True),
    ("get", _PASSKEYS, 200): lambda w: w.api().get(_PASSKEYS, _with_passkey(w)[0]),
    ("get", _PASSKEYS, 401): lambda w: w.api().get(_PASSKEYS),
    # Adding one.
    ("post", f"{_REGISTER}/begin", 200): lambda w: w.api().post(
        f"{_REGISTER}/begin", None, _bearer(w)
    ),
    ("post", f"{_REGISTER}/finish", 201): lambda w: _register(
        w, _bearer(w), SoftAuthenticator(origin=w.site)
    ),
    ("post", f"{_REGISTER}/finish", 400): lambda w: _register(
        w, _bearer(w), SoftAuthenticator(origin=w.site), origin="http://evil.test"
    ),
    ("post", f"{_REGISTER}/finish", 409): _registered_twice,
    ("post", f"{_REGISTER}/finish", 410): _registered_late,
    # Signing in with one: the spent and the late challenge need no passkey.
    ("post", f"{_AUTH}/begin", 200): lambda w: w.api().post(f"{_AUTH}/begin", {"mode": "jwt"}),
    ("post", f"{_AUTH}/finish", 200): lambda w: _answered(w, _AUTH, None, _with_passkey(w)[1]),
    ("post", f"{_AUTH}/finish", 409): lambda w: _answered(w, _AUTH, None, times=2),
    ("post", f"{_AUTH}/finish", 410): lambda w: _answered(w, _AUTH, None, before=lambda: _late(w)),
    # Stepping up with one.
    ("post", f"{_REAUTH}/begin", 200): lambda w: w.api().post(
        f"{_REAUTH}/begin", None, _with_passkey(w)[0]
    ),
    ("post", f"{_REAUTH}/begin", 400): lambda w: w.api().post(  # no passkey yet
        f"{_REAUTH}/begin", None, _bearer(w)
    ),
    ("post", f"{_REAUTH}/finish", 200): lambda w: _answered(w, _REAUTH, *_with_passkey(w)[:2]),
    ("post", f"{_REAUTH}/finish", 400): lambda w: w.api().post(
        f"{_REAUTH}/finish", {"challenge_id": "x", "credential": "not an object"}, _bearer(w)
    ),
    ("post", f"{_REAUTH}/finish", 409): lambda w: _answered(
        w, _REAUTH, *_with_passkey(w)[:2], times=2
    ),
    ("post", f"{_REAUTH}/finish", 410): _stepped_up_late,
    # Renaming and removing one.
    ("post", f"{_PASSKEYS}/{{passkey_id}}", 200): lambda w: _renamed(w, "Laptop"),
    ("post", f"{_PASSKEYS}/{{passkey_id}}", 400): lambda w: _renamed(w, "   "),
    ("post", f"{_PASSKEYS}/{{passkey_id}}", 401): lambda w: w.api().post(
        f"{_PASSKEYS}/1", {"name": "Laptop"}
    ),
    ("post", f"{_PASSKEYS}/{{passkey_id}}", 404): lambda w: w.api().post(
        f"{_PASSKEYS}/999999", {"name": "Laptop"}, _bearer(w)
    ),
    ("delete", f"{_PASSKEYS}/{{passkey_id}}", 204): lambda w: _removed(w),
    ("delete", f"{_PASSKEYS}/{{passkey_id}}", 401): lambda w: w.api().delete(f"{_PASSKEYS}/1"),
    ("delete", f"{_PASSKEYS}/{{passkey_id}}", 403): lambda w: _removed(w, stale=True),
    ("delete", f"{_PASSKEYS}/{{passkey_id}}", 404): lambda w: w.api().delete(
        f"{_PASSKEYS}/999999", _bearer(w)
    ),
}
SCENARIOS.update(PASSKEY_SCENARIOS)


# Changing the email address: a token client asks, and confirms with the code mailed to
# the new address.
_CHANGE, _CONFIRM = "/api/auth/email/change", "/api/auth/email/change/verify"


def _new_address(w: World) -> str:
    w.count += 1
    return f"changed{w.count}@example.org"


def _changing(w: World) -> tuple[dict[str, str], str, str]:
    """A signed-in token client that asked to change its address: its header, the request
    id and the code mailed to the new address."""
    bearer, new = _bearer(w), _new_address(w)
    asked = w.api().post(_CHANGE, {"email": new}, bearer)
    assert asked.status_code == 202, asked.text
    (message,) = [m for m in mail.outbox if new in m.to]
    match = CODE_RE.search(str(message.body))
    assert match, message.body
    return bearer, asked.json()["request_id"], match.group(1)


def _confirm(
    w: World, before: Callable[[dict[str, str], str, str], object] | None = None, code: str = ""
) -> requests.Response:
    """Confirm an address change with ``code`` (or else the right one), after ``before``."""
    bearer, request_id, right = _changing(w)
    if before is not None:
        before(bearer, request_id, right)
    return w.api().post(_CONFIRM, {"request_id": request_id, "code": code or right}, bearer)


def _wrong_change_codes(w: World, bearer: dict[str, str], request_id: str, right: str) -> None:
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        w.api().post(_CONFIRM, {"request_id": request_id, "code": wrong}, bearer)


def _change_limited(w: World, bearer: dict[str, str], request_id: str, right: str) -> None:
    w.limit("PASSWORDLESS_VERIFY_RATES_PER_IP")
    w.api().post(_CONFIRM, {"request_id": request_id, "code": "000000"}, bearer)


def _expired_change(w: World) -> requests.Response:
    w.settings.PASSWORDLESS_ACCESS_TOKEN_LIFETIME = 900  # still signed in after 10 minutes
    return _confirm(w, lambda *_: w.clock.advance(seconds=601))


def _change_twice(w: World) -> requests.Response:
    """The new address's one email a minute: asking again for it is too soon."""
    bearer, new = _bearer(w), _new_address(w)
    return _twice(lambda: w.api().post(_CHANGE, {"email": new}, bearer))


def _change_broken(w: World) -> requests.Response:
    bearer = _bearer(w)
    w.break_cache()
    return w.api().post(_CHANGE, {"email": _new_address(w)}, bearer)


EMAIL_CHANGE_SCENARIOS: dict[tuple[str, str, int], Scenario] = {
    ("post", _CHANGE, 202): lambda w: w.api().post(
        _CHANGE, {"email": _new_address(w)}, _bearer(w)
    ),
    ("post", _CHANGE, 400): lambda w: w.api().post(_CHANGE, {"email": "nope"}, _bearer(w)),
    ("post", _CHANGE, 401): lambda w: w.api().post(_CHANGE, {"email": "new@example.org"}),
    ("post", _CHANGE, 429): _change_twice,
    ("post", _CHANGE, 503): _change_broken,
    ("post", _CONFIRM, 200): lambda w: _confirm(w),
    ("post", _CONFIRM, 400): lambda w: _confirm(w, code="12"),
    ("post", _CONFIRM, 401): lambda w: w.api().post(_CONFIRM, {"request_id": "x", "code": "1"}),
    ("post", _CONFIRM, 404): lambda w: w.api().post(
        _CONFIRM, {"request_id": "unknown", "code": "123456"}, _bearer(w)
    ),
    ("post", _CONFIRM, 409): lambda w: _confirm(
        w, lambda b, r, c: w.api().post(_CONFIRM, {"request_id": r, "code": c}, b)
    ),
    ("post", _CONFIRM, 410): _expired_change,
    ("post", _CONFIRM, 423): lambda w: _confirm(w, lambda *a: _wrong_change_codes(w, *a)),
    ("post", _CONFIRM, 429): lambda w: _confirm(w, lambda *a: _change_limited(w, *a)),
    ("post", _CONFIRM, 503): lambda w: _confirm(w, lambda *_: w.break_cache()),
}
SCENARIOS.update(EMAIL_CHANGE_SCENARIOS)


def _generic(method: str, path: str, status: int) -> Scenario | None:
    """Statuses every route of a kind gives the same way."""
    concrete = re.sub(r"\{(request_id|session_id|passkey_id)\}", "unknown", path)
    body = {"email": "x@example.org", "request_id": "x", "code": "123456", "token": "x"}
    limits = {
        "/api/auth/verify/code": "PASSWORDLESS_VERIFY_RATES_PER_IP",
        "/api/auth/verify/link": "PASSWORDLESS_VERIFY_RATES_PER_IP",
        "/api/auth/requests/{request_id}": "PASSWORDLESS_POLL_RATES_PER_IP",
    }

    def call(w: World) -> requests.Response:
        api = w.api()
        return (
            api.post(concrete, {**body, "mode": "jwt"}) if method == "post" else api.get(concrete)
        )

    def wrong_method(w: World) -> requests.Response:
        return w.api().get(concrete) if method != "get" else w.api().post(concrete)

    def limited(w: World) -> requests.Response:
        w.limit(limits[path])
        return _twice(lambda: call(w))

    def broken(w: World) -> requests.Response:
        w.break_cache()
        return call(w)

    def forged(w: World) -> requests.Response:
        return w.api(browser=True).post(concrete, {}, {"X-CSRFToken": "forged"})

    if status == 405:
        return wrong_method
    if status == 400 and method == "post":
        return lambda w: _malformed(w, concrete)
    if status == 403 and method == "post":
        return forged
    if status == 429 and path in limits:
        return limited
    if status == 503:
        return broken
    return None


def _documented() -> list[tuple[str, str, int]]:
    found: list[tuple[str, str, int]] = []
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            found.extend((method, path, int(status)) for status in operation["responses"])
    return found


@pytest.mark.parametrize(("method", "path", "status"), _documented())
def test_every_documented_status_is_reachable(
    method: str,
    path: str,
    status: int,
    site: str,
    mailbox: Mailbox,
    settings: Any,
    frozen_clock: FrozenClock,
) -> None:
    scenario = SCENARIOS.get((method, path, status)) or _generic(method, path, status)
    assert scenario is not None, f"no scenario reaches {status} on {method.upper()} {path}"
    response = scenario(World(site, mailbox, settings, frozen_clock))
    assert response.status_code == status, response.text[:300]
