"""SQLite, the embedded default, keeps a code single use under concurrency.

``select_for_update`` does nothing on SQLite. Here gunicorn runs with several worker
processes on one SQLite file and the embedded defaults otherwise (local-memory caches,
database sessions, tasks run in the web process), and 20 clients submit the same code
at once: one signs in, the others are refused in words, and none gets an error page.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.stack import (
    SMTPServer,
    code_and_link,
    free_port,
    gunicorn,
    migrate,
    project_env,
)

pytestmark = pytest.mark.e2e

CLIENTS = 20
Submission = Callable[[], requests.Response]
#: What a loser may see: the code was used (409 already_used).
REFUSALS = {409}


class Site:
    def __init__(self, url: str, smtp: SMTPServer, database: Path) -> None:
        self.url, self.smtp, self.database = url, smtp, database

    def message_to(self, email: str) -> EmailMessage:
        """The one email sent to ``email`` (in the start's request: there is no broker)."""
        (message,) = [m for m in self.smtp.messages if m["To"] == email]
        return message

    def code_for(self, email: str) -> str:
        return code_and_link(self.message_to(email))[0]

    def query(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database) as db:
            return db.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("sqlite-site")
    database = tmp / "db.sqlite3"
    port = free_port()
    with SMTPServer() as smtp:
        # The development set-up (DEBUG=True, as `make run` has it): production refuses
        # caches local to one process. Mail goes to the test's SMTP server, to be read.
        env = project_env(
            DEBUG="True",
            DATABASE_URL=f"sqlite:///{database}",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SITE_URL=f"http://127.0.0.1:{port}",
            VAR_DIR=str(tmp / "var"),
        )
        migrate(env, tmp)
        with gunicorn(env, tmp, port, workers=4):
            yield Site(f"http://127.0.0.1:{port}", smtp, database)


def _race(submissions: list[Submission]) -> list[requests.Response]:
    """Run the submissions at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(submissions))
    responses: list[Any] = [None] * len(submissions)

    def run(i: int) -> None:
        barrier.wait()
        responses[i] = submissions[i]()

    threads = [threading.Thread(target=functools.partial(run, i)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


def _api_submissions(site: Site, email: str) -> tuple[list[Submission], int]:
    """20 API clients post the code of one request."""
    started = ApiClient(site.url).send(email)
    assert started.status_code == 202, started.text
    request_id = started.json()["request_id"]
    code = site.code_for(email)
    clients = [ApiClient(site.url) for _ in range(CLIENTS)]
    return [functools.partial(c.verify_code, request_id, code) for c in clients], 200


def _html_submissions(site: Site, email: str) -> tuple[list[Submission], int]:
    """20 browsers that opened the link type the code on its page ("sign in on this
    device instead"): 20 sessions, each reaching the code check on its own."""
    assert Browser(site.url).start(email).status_code == 302
    code, link = code_and_link(site.message_to(email))
    browsers = [Browser(site.url) for _ in range(CLIENTS)]
    submissions: list[Submission] = []
    for browser in browsers:
        assert browser.open_link(link).status_code == 302
        token = browser.csrf_token("/auth/link/")
        submissions.append(
            functools.partial(
                browser.post, "/auth/link/", {"action": "code", "code": code}, token=token
            )
        )
    return submissions, 302


@pytest.mark.parametrize("kind", ["api", "html"])
def test_twenty_concurrent_submissions_of_one_code_sign_in_once_on_sqlite(
    site: Site, kind: str
) -> None:
    email = f"race-{kind}@example.org"
    prepare = _api_submissions if kind == "api" else _html_submissions
    submissions, accepted = prepare(site, email)

    responses = _race(submissions)

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(accepted) == 1, statuses
    assert set(statuses) - {accepted} <= REFUSALS, statuses
    rows = site.query(
        "SELECT status, completed_at IS NOT NULL FROM passwordless_loginrequest WHERE email = ?",
        email,
    )
    assert rows == [("signed_in", 1)]
    events = site.query(
        "SELECT e.kind, count(*) FROM passwordless_authevent e JOIN passwordless_loginrequest r"
        " ON e.login_request_id = r.id WHERE r.email = ? GROUP BY e.kind",
        email,
    )
    assert dict(events).get("signed_in") == 1, events
