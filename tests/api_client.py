"""A JSON API client for attacking the running app over HTTP."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import requests


def challenge_of(verifier: str) -> str:
    """RFC 7636 §4.2: the S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ApiClient:
    def __init__(self, base_url: str, *, browser: bool = False, **headers: str) -> None:
        """``browser=True`` keeps cookies and sends the CSRF token, as a single-page app does."""
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(headers)
        self.browser = browser
        # Each client keeps the PKCE verifier of its sends (RFC 7636), as an app would.
        self.verifier = secrets.token_urlsafe(48)
        self.csrf_token: str | None = None
        if browser:
            self.csrf_token = self.get("/api/auth/csrf").json()["csrf_token"]

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.browser and self.csrf_token:
            headers.setdefault("X-CSRFToken", self.csrf_token)
            headers.setdefault("Origin", self.base_url)
        if not self.browser:
            self.session.cookies.clear()  # a non-browser client keeps no cookies
        return headers

    def get(
        self, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        return self.session.get(
            self.base_url + path, headers=self._headers(headers), timeout=20, **kw
        )

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        return self.session.post(
            self.base_url + path, json=body, headers=self._headers(headers), timeout=20, **kw
        )

    def delete(
        self, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        return self.session.delete(
            self.base_url + path, headers=self._headers(headers), timeout=20, **kw
        )

    def refresh_csrf(self) -> None:
        """After sign-in the CSRF token rotates, as in the HTML flow."""
        if self.browser:
            self.csrf_token = self.session.cookies.get("csrftoken")

    # The flow.

    def send(self, email: str, *, pkce: bool = True) -> requests.Response:
        body = {"email": email}
        if pkce:
            body.update(code_challenge=challenge_of(self.verifier), code_challenge_method="S256")
        return self.post("/api/auth/send", body)

    def verify_code(self, request_id: str, code: str, mode: str = "jwt") -> requests.Response:
        response = self.post(
            "/api/auth/verify/code", {"request_id": request_id, "code": code, "mode": mode}
        )
        self.refresh_csrf()
        return response

    def verify_link(
        self, token: str, mode: str = "jwt", verifier: str | None = None
    ) -> requests.Response:
        body = {"token": token, "mode": mode, "code_verifier": verifier or self.verifier}
        response = self.post("/api/auth/verify/link", body)
        self.refresh_csrf()
        return response

    def collect(self, request_id: str, mode: str = "jwt") -> requests.Response:
        """Collect an approval given on another device, with this client's verifier."""
        body = {"mode": mode, "code_verifier": self.verifier}
        response = self.post(f"/api/auth/requests/{request_id}", body)
        self.refresh_csrf()
        return response

    def me(self, access: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {access}"} if access else None
        return self.get("/api/auth/me", headers=headers)
