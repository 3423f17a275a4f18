"""The two ways into the sign-in flow, HTML pages and the JSON API, behind one interface,
so that the attack tests run against both with the same expectations."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from tests.api_client import ApiClient
from tests.attacker import Browser


@dataclass
class Outcome:
    status: int
    signed_in: bool
    retry_after: int | None
    response: requests.Response


class HtmlPathway:
    name = "html"

    def __init__(self, site: str) -> None:
        self.browser = Browser(site)

    def start(self, email: str) -> Outcome:
        response = self.browser.start(email)
        return _outcome(response, accepted=response.status_code == 302)

    def submit(self, code: str) -> Outcome:
        response = self.browser.submit_code(code)
        location = response.headers.get("Location", "")
        return _outcome(
            response, accepted=response.status_code == 302 and "/auth/" not in location
        )

    def copy(self) -> HtmlPathway:
        """Another cookie jar holding the same session: the same request, from elsewhere."""
        twin = HtmlPathway(self.browser.base_url)
        twin.browser.session.cookies.update(self.browser.session.cookies)
        return twin


class ApiPathway:
    name = "api"

    def __init__(self, site: str) -> None:
        self.api = ApiClient(site)
        self.request_id = ""

    def start(self, email: str) -> Outcome:
        response = self.api.send(email)
        if response.status_code == 202:
            self.request_id = response.json()["request_id"]
        return _outcome(response, accepted=response.status_code == 202)

    def submit(self, code: str) -> Outcome:
        response = self.api.verify_code(self.request_id, code)
        return _outcome(response, accepted=response.status_code == 200)

    def copy(self) -> ApiPathway:
        twin = ApiPathway(self.api.base_url)
        twin.request_id = self.request_id
        return twin


Pathway = HtmlPathway | ApiPathway


def _outcome(response: requests.Response, *, accepted: bool) -> Outcome:
    retry = response.headers.get("Retry-After")
    status = 200 if accepted else response.status_code
    return Outcome(status, accepted, int(retry) if retry else None, response)


def make(kind: str, site: str) -> Pathway:
    return HtmlPathway(site) if kind == "html" else ApiPathway(site)
