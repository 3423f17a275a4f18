"""A JSON API client for attacking the running app over HTTP."""

from __future__ import annotations

from typing import Any

import requests


class ApiClient:
    def __init__(self, base_url: str, *, browser: bool = False, **headers: str) -> None:
        """``browser=True`` keeps cookies and sends the CSRF token, as a single-page app does."""
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(headers)
        self.browser = browser
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

    def send(self, email: str) -> requests.Response:
        return self.post("/api/auth/send", {"email": email})

    def verify_code(self, request_id: str, code: str, mode: str = "jwt") -> requests.Response:
        response = self.post(
            "/api/auth/verify/code", {"request_id": request_id, "code": code, "mode": mode}
        )
        self.refresh_csrf()
        return response

    def verify_link(self, token: str, mode: str = "jwt") -> requests.Response:
        response = self.post("/api/auth/verify/link", {"token": token, "mode": mode})
        self.refresh_csrf()
        return response

    def me(self, access: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {access}"} if access else None
        return self.get("/api/auth/me", headers=headers)
