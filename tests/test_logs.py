"""JSON log lines with a request id (the running stack is checked in test_e2e_mail_path)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from django.test import Client
from pythonjsonlogger.json import JsonFormatter

from config.logs import RequestIdFilter, logging_config, request_id_scope
from passwordless.log import RedactLinkTokens


def _json_line(record: logging.LogRecord) -> dict[str, Any]:
    options = dict(logging_config(json_lines=True)["formatters"]["json"])
    options.pop("()")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(**options))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactLinkTokens())
    handler.handle(record)
    parsed: dict[str, Any] = json.loads(stream.getvalue())
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
