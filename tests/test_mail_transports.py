"""Mail through an email provider's API (django-anymail) fails and retries as SMTP does.

``delivery.is_permanent_failure`` knows anymail's errors by name, without importing it:
tested here against anymail's own exception classes, and end to end through the worker's
``deliver_login_email`` with anymail's real Postmark backend talking HTTP to a fake of
Postmark's API on loopback, answering as Postmark documents.
"""

from __future__ import annotations

import json
import smtplib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from passwordless.models import LoginRequest, LoginSecret
from passwordless.services import deliver_login_email
from passwordless.services.delivery import DeliveryDeferred, is_permanent_failure
from tests.factories import LoginRequestFactory, UserFactory
from tests.stack import free_port

anymail = pytest.importorskip("anymail.exceptions")

Delivery = LoginRequest.Delivery
ALICE = "alice@example.org"
SITE = "https://login.example.com"


def _response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = "test"
    response._content = b"{}"
    return response


def _ses_error(code: str, status: int) -> Exception:
    """What anymail's Amazon SES backend raises: botocore's parsed answer in ``response``."""
    answer = {
        "Error": {"Code": code, "Message": "..."},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error: Exception = anymail.AnymailAPIError("An error occurred", response=answer)
    return error


def _lost_connection(cause: type[requests.RequestException]) -> Exception:
    # As anymail's requests backends raise it: both its error and the requests one.
    kind = type("AnymailRequestsAPIError", (anymail.AnymailRequestsAPIError, cause), {})
    error: Exception = kind("Error posting to https://api.example.com/email:")
    return error


PERMANENT = {
    "recipients refused": anymail.AnymailRecipientsRefused(),
    "invalid address": anymail.AnymailInvalidAddress("not an address"),
    "400": anymail.AnymailAPIError(status_code=400),
    "401 bad key": anymail.AnymailRequestsAPIError(response=_response(401)),
    "403": anymail.AnymailRequestsAPIError(response=_response(403)),
    "422 refused": anymail.AnymailRequestsAPIError(response=_response(422)),
    "SES rejected": _ses_error("MessageRejected", 400),
    "SES not verified": _ses_error("MailFromDomainNotVerifiedException", 400),
    "SMTP 550": smtplib.SMTPRecipientsRefused({ALICE: (550, b"no such user")}),
    "SMTP 554": smtplib.SMTPDataError(554, b"refused"),
}
TRANSIENT = {
    "408": anymail.AnymailRequestsAPIError(response=_response(408)),
    "429": anymail.AnymailRequestsAPIError(response=_response(429)),
    "500": anymail.AnymailRequestsAPIError(response=_response(500)),
    "503": anymail.AnymailAPIError(status_code=503),
    "no status": anymail.AnymailAPIError("Invalid JSON in the API response"),
    "timeout": _lost_connection(requests.Timeout),
    "connection": _lost_connection(requests.ConnectionError),
    "SES throttling": _ses_error("Throttling", 400),
    "SES too many": _ses_error("TooManyRequestsException", 429),
    "SES 500": _ses_error("InternalFailure", 500),
    "unsupported feature": anymail.AnymailUnsupportedFeature("no"),
    "configuration": anymail.AnymailConfigurationError("no key"),
    "SMTP 450": smtplib.SMTPRecipientsRefused({ALICE: (450, b"try later")}),
    "SMTP gone": smtplib.SMTPServerDisconnected("gone"),
    "not mail": ValueError("anything else"),
}


@pytest.mark.parametrize("error", PERMANENT.values(), ids=PERMANENT.keys())
def test_permanent_refusals(error: Exception) -> None:
    assert is_permanent_failure(error)


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_failures(error: Exception) -> None:
    assert not is_permanent_failure(error)


def test_the_errors_are_known_by_name_not_by_import() -> None:
    class AnymailError(Exception):  # another copy of anymail, or a vendored one
        pass

    class AnymailAPIError(AnymailError):
        status_code = 404

    assert is_permanent_failure(AnymailAPIError())
    assert not is_permanent_failure(type("APIError", (Exception,), {"status_code": 404})())


# End to end: the worker, anymail's Postmark backend, and a fake Postmark API on loopback.


@dataclass
class FakePostmark:
    """Answers ``POST /email`` with ``status`` and ``body``, after ``delay`` seconds."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def postmark(settings: Any) -> Iterator[FakePostmark]:
    fake = FakePostmark()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            fake.received.append(json.loads(self.rfile.read(length)))
            time.sleep(fake.delay)
            body = json.dumps(fake.body).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "test-server-token",
        "POSTMARK_API_URL": f"http://127.0.0.1:{server.server_port}/",
        "REQUESTS_TIMEOUT": 0.5,
    }
    settings.PASSWORDLESS_SITE_URL = SITE
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _request() -> LoginRequest:
    UserFactory.create(email=ALICE)
    login_request: LoginRequest = LoginRequestFactory.create(email=ALICE)
    return login_request


def _state(login_request: LoginRequest) -> str:
    login_request.refresh_from_db()
    return str(login_request.delivery)


@pytest.mark.django_db
def test_an_accepted_message_is_sent_with_its_headers(postmark: FakePostmark) -> None:
    postmark.body = {"ErrorCode": 0, "Message": "OK", "MessageID": "b7bc2f4a", "To": ALICE}
    login_request = _request()
    assert deliver_login_email(login_request.pk) == Delivery.SENT
    (sent,) = postmark.received
    headers = {h["Name"]: h["Value"] for h in sent.get("Headers", [])}
    assert headers["Auto-Submitted"] == "auto-generated"
    assert headers["X-Auto-Response-Suppress"] == "All"
    assert headers["Message-ID"].endswith("@login.example.com>")
    assert sent["TextBody"].splitlines()[-1].startswith("@login.example.com #")
    assert sent["HtmlBody"].startswith("<!doctype html>")


POSTMARK_REFUSALS = {
    # HTTP 422 with Postmark's error codes: 406 is an address on its suppression list.
    "inactive recipient": (
        422,
        {
            "ErrorCode": 406,
            "Message": "You tried to send to a recipient that has been marked as inactive.\n"
            f"Found inactive addresses: {ALICE}.\n"
            "Inactive recipients are ones that have generated a hard bounce or a spam complaint.",
        },
    ),
    "sender not verified": (422, {"ErrorCode": 400, "Message": "Sender signature not found"}),
    "bad token": (401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("answer", POSTMARK_REFUSALS.values(), ids=POSTMARK_REFUSALS.keys())
def test_a_refusal_fails_the_email_at_once(
    postmark: FakePostmark, answer: tuple[int, dict[str, Any]]
) -> None:
    postmark.status, postmark.body = answer
    login_request = _request()
    assert deliver_login_email(login_request.pk) == Delivery.FAILED
    assert _state(login_request) == Delivery.FAILED
    assert not LoginSecret.objects.filter(request=login_request).exists()  # its code is void


POSTMARK_TROUBLES = {
    "server error": (500, {"ErrorCode": 0, "Message": "Internal Server Error"}, 0.0),
    "unavailable": (503, {}, 0.0),
    "rate limited": (429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, 0.0),
    "timeout": (200, {"ErrorCode": 0, "Message": "OK", "MessageID": "x", "To": ALICE}, 1.5),
}


@pytest.mark.django_db
@pytest.mark.parametrize("answer", POSTMARK_TROUBLES.values(), ids=POSTMARK_TROUBLES.keys())
def test_trouble_defers_the_email_for_a_retry(
    postmark: FakePostmark, answer: tuple[int, dict[str, Any], float]
) -> None:
    postmark.status, postmark.body, postmark.delay = answer
    login_request = _request()
    with pytest.raises(DeliveryDeferred) as raised:
        deliver_login_email(login_request.pk)
    assert str(raised.value) == "AnymailRequestsAPIError"  # its name only: no address
    assert _state(login_request) == Delivery.DEFERRED
    # The message may have arrived: its code stays valid, and a retry sends another.
    assert LoginSecret.objects.filter(request=login_request).count() == 1
    postmark.status, postmark.delay = 200, 0.0
    postmark.body = {"ErrorCode": 0, "Message": "OK", "MessageID": "y", "To": ALICE}
    assert deliver_login_email(login_request.pk) == Delivery.SENT


@pytest.mark.django_db
def test_a_provider_that_cannot_be_reached_defers_the_email(settings: Any) -> None:
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "test-server-token",
        "POSTMARK_API_URL": f"http://127.0.0.1:{free_port()}/",  # nothing listens there
        "REQUESTS_TIMEOUT": 0.5,
    }
    login_request = _request()
    with pytest.raises(DeliveryDeferred):
        deliver_login_email(login_request.pk)
    assert _state(login_request) == Delivery.DEFERRED
