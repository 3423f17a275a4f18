"""The code page's POST reads the request once, under the lock ``complete_code`` takes;
the page is read again only when it is shown (a wrong code, a malformed one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from passwordless.models import LoginRequest
from tests.conftest import Delivered
from tests.helpers import wrong_code

pytestmark = [pytest.mark.django_db]

EMAIL = "reads@example.org"


def reads_of_the_request(queries: CaptureQueriesContext) -> list[str]:
    table = LoginRequest._meta.db_table
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"]
    ]


def test_the_right_code_reads_its_request_once_and_locked(
    client: Client, start_sign_in: Callable[..., Delivered | None]
) -> None:
    delivered = start_sign_in(EMAIL)
    assert delivered is not None
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/auth/code/", {"code": delivered.code})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    reads = reads_of_the_request(queries)
    assert len(reads) == 1, reads
    assert "FOR UPDATE" in reads[0] or connection.vendor == "sqlite"


def test_a_wrong_code_shows_the_page_with_its_request(
    client: Client, start_sign_in: Callable[..., Delivered | None]
) -> None:
    delivered = start_sign_in(EMAIL)
    assert delivered is not None
    response: Any = client.post("/auth/code/", {"code": wrong_code(delivered.code)})
    assert response.status_code == 400
    assert b"That code isn" in response.content  # the error, on the page of this request
    assert client.post("/auth/code/", {"code": delivered.code}).status_code == 302


def test_a_malformed_code_shows_the_page(
    client: Client, start_sign_in: Callable[..., Delivered | None]
) -> None:
    assert start_sign_in(EMAIL) is not None
    response: Any = client.post("/auth/code/", {"code": "12"})
    assert response.status_code == 400
    assert b'name="code"' in response.content and EMAIL.encode() in response.content


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_request_gone_meanwhile_starts_over(
    client: Client, start_sign_in: Callable[..., Delivered | None], method: str
) -> None:
    delivered = start_sign_in(EMAIL)
    assert delivered is not None
    LoginRequest.objects.all().delete()  # purged while the page was open
    response = getattr(client, method)("/auth/code/", {"code": delivered.code})
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login/"


def test_no_pending_request_starts_over_without_reading_anything(client: Client) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/auth/code/", {"code": "123456"})
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login/"
    assert reads_of_the_request(queries) == []
