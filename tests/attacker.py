"""A scripted browser for attacking the running app over HTTP (``requests`` on loopback).

Each ``Browser`` is one cookie jar. It submits forms the way a browser does:
the CSRF token from the page, the cookie, and an ``Origin`` header.
"""

from __future__ import annotations

import re
from typing import Any

import requests

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    def __init__(self, base_url: str, **headers: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(headers)
        #: What a scripted crawler noted of the answers it got, for a failing test to show.
        self.seen: list[str] = []

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return self.session.get(self.url(path), timeout=20, **kwargs)

    def head(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.head(self.url(path), timeout=20, **kwargs)

    def csrf_token(self, path: str = "/auth/login/") -> str:
        page = self.session.get(self.url(path), timeout=20)
        match = _CSRF.search(page.text)
        if match is None:  # pages that only redirect: take the token of the email form
            page = self.session.get(self.url("/auth/login/"), timeout=20)
            match = _CSRF.search(page.text)
        assert match, page.text
        return match.group(1)

    def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        token: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """POST a form; ``token`` defaults to a fresh CSRF token read from ``path``'s page."""
        form = dict(data or {})
        form["csrfmiddlewaretoken"] = token if token is not None else self.csrf_token(path)
        kwargs.setdefault("allow_redirects", False)
        origin = self.session.headers.get("Origin") or self.base_url
        headers = {"Origin": origin, **kwargs.pop("headers", {})}
        return self.session.post(self.url(path), data=form, headers=headers, timeout=20, **kwargs)

    # The flow, step by step.

    def start(self, email: str, **extra: str) -> requests.Response:
        return self.post("/auth/login/", {"email": email, **extra})

    def submit_code(self, code: str) -> requests.Response:
        return self.post("/auth/code/", {"code": code})

    def resend(self) -> requests.Response:
        return self.post("/auth/code/resend/", token=self.csrf_token("/auth/code/"))

    def open_link(self, link: str) -> requests.Response:
        return self.get(link)

    def confirm_link(self) -> requests.Response:
        """The one-click button, offered only to the browser that asked."""
        return self.post("/auth/link/", {"action": "sign_in"})

    def approve(self, number: str | int) -> requests.Response:
        """Type a number on the approval page of another browser or device."""
        text = number if isinstance(number, str) else f"{number:02d}"
        return self.post("/auth/link/", {"action": "approve", "number": text})

    def sign_in_here(self, code: str) -> requests.Response:
        return self.post("/auth/link/", {"action": "code", "code": code})

    def poll(self) -> requests.Response:
        return self.get("/auth/code/status/")

    def signed_in_as(self) -> str | None:
        home = self.session.get(self.url("/"), timeout=20).text
        match = re.search(r"Signed in as <strong>([^<]+)</strong>", home)
        return match.group(1) if match else None

    def cookie(self, name: str) -> str | None:
        return self.session.cookies.get(name)
