"""Every status the OpenAPI document promises is one the live API really gives.

Each documented (method, path, status) is driven by a scenario below; a
status without a scenario fails the test, so the document cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from passwordless.api.openapi import openapi_document
from passwordless.models import LoginRequest
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import Delivered, FrozenClock

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


def _generic(method: str, path: str, status: int) -> Scenario | None:
    """Statuses every route of a kind gives the same way."""
    concrete = path.replace("{request_id}", "unknown").replace("{session_id}", "unknown")
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
