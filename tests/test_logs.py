"""JSON log lines with a request id (the running stack is checked in test_e2e_mail_path)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from django.test import Client

from config.logs import (
    RedactingFormatter,
    RedactingJsonFormatter,
    RedactSecrets,
    RequestIdFilter,
    logging_config,
    request_id_scope,
)


def _line(record: logging.LogRecord, json_lines: bool = True) -> str:
    """The record as the configured console handler writes it (formatter and filters)."""
    config = logging_config(json_lines=json_lines)
    options = dict(config["formatters"]["json" if json_lines else "plain"])
    formatter_class = {
        "config.logs.RedactingJsonFormatter": RedactingJsonFormatter,
        "config.logs.RedactingFormatter": RedactingFormatter,
    }[options.pop("()")]
    assert config["handlers"]["console"]["filters"] == ["request_id", "redact"]
    assert config["filters"]["redact"] == {"()": "config.logs.RedactSecrets"}
    if not json_lines:
        options = {"fmt": options["format"]}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_class(**options))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecrets())
    handler.handle(record)
    return stream.getvalue()


def _json_line(record: logging.LogRecord) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(_line(record))
    return parsed


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("passwordless", logging.INFO, __file__, 1, message, args, None)


@pytest.mark.django_db
def test_every_response_names_its_request_id() -> None:
    first = Client().get("/healthz")["X-Request-ID"]
    second = Client().get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and first != second


@pytest.mark.django_db
def test_a_proxys_request_id_is_kept() -> None:
    response = Client().get("/healthz", headers={"X-Request-ID": "lb-7f3a9c2e-0001"})
    assert response["X-Request-ID"] == "lb-7f3a9c2e-0001"


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["short", "a" * 65, "evil\nlevel=CRITICAL", 'x" "y-12345'])
def test_an_ill_formed_request_id_is_replaced(sent: str) -> None:
    response = Client().get("/healthz", headers={"X-Request-ID": sent})
    assert response["X-Request-ID"] != sent and len(response["X-Request-ID"]) == 32


def test_a_line_is_one_json_object_with_the_request_id() -> None:
    with request_id_scope("req-0123456789"):
        line = _json_line(_record("started %s", "sign-in"))
    assert line["request_id"] == "req-0123456789"
    assert line["message"] == "started sign-in"
    assert line["level"] == "INFO" and line["logger"] == "passwordless"


def test_a_line_outside_a_request_says_so() -> None:
    assert _json_line(_record("sweeping"))["request_id"] == "-"


def test_link_tokens_are_redacted_in_json_lines() -> None:
    line = _json_line(_record("GET %s", "/auth/link/AbCdEfGhIjKlMnOpQrStUv/"))
    assert line["message"] == "GET /auth/link/[redacted]/"


TOKEN = "AbCdEfGhIjKlMnOpQrStUv0123456789_-abcdefgh"
REQUEST_ID = "Zx9_Yw8-Vu7Ts6Rq5Po4Nm"


def test_request_ids_in_api_paths_are_redacted() -> None:
    line = _json_line(_record("GET %s", f"/api/auth/requests/{REQUEST_ID}?mode=jwt"))
    assert line["message"] == "GET /api/auth/requests/[redacted]?mode=jwt"


def test_djangos_request_extra_is_redacted() -> None:
    """``django.request`` puts the request itself on the record: its repr prints the path."""
    from django.test import RequestFactory

    request = RequestFactory().get(f"/auth/link/{TOKEN}./")
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", (request.path,), None
    )
    record.request = request
    record.status_code = 404
    text = _line(record)
    assert TOKEN not in text
    line = json.loads(text)
    assert line["request"] == "<WSGIRequest: GET '/auth/link/[redacted]/'>"
    assert line["message"] == "Not Found: /auth/link/[redacted]/"
    assert line["status_code"] == 404


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "plain"])
def test_every_field_and_the_traceback_are_redacted(json_lines: bool) -> None:
    try:
        raise LookupError(f"no row for /auth/link/{TOKEN}/")
    except LookupError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "passwordless", logging.ERROR, __file__, 1, "failed", None, exc_info
    )
    record.path = f"/api/auth/requests/{REQUEST_ID}"
    record.referer = f"https://login.example.com/auth/link/{TOKEN}/"
    record.hops = [f"/auth/link/{TOKEN}/"]
    text = _line(record, json_lines=json_lines)
    assert TOKEN not in text and REQUEST_ID not in text
    assert "LookupError" in text and "[redacted]" in text
