"""The production processes as docs/deployment.md lists them, in a real Chromium: the release step,
then gunicorn (``bin/web``, DEBUG off) and a Celery worker (``bin/worker``) on a Redis broker,
mail to an SMTP server on loopback. A sign-in asked on one browser and approved from a
second: the waiting page, whose script polls, must sign the first in by itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from tests import services
from tests.browser.support import DESKTOP, PHONE
from tests.stack import SMTPServer, celery_worker, free_port, gunicorn, production_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Request, Response

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent

if not shutil.which(CHROMIUM):
    if services.REQUIRED:
        raise RuntimeError(f"Chromium is not installed at {CHROMIUM} and REQUIRE_SERVICES=1")
    pytest.skip(f"Chromium is not installed at {CHROMIUM}", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

#: production_env's Redis databases (cache, sessions, rate limits), and the broker's.
REDIS_DBS = (11, 12, 13, 14)


def readme_processes() -> dict[str, str]:
    """The process table of docs/deployment.md's "Running in production": kind -> command."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| (\w+) \| `([^`]+)`", section, re.MULTILINE))


@dataclass
class Site:
    url: str
    smtp: SMTPServer


@pytest.fixture
def site(transactional_db: None, tmp_path: Path) -> Iterator[Site]:
    processes = readme_processes()
    assert processes["web"] == "bin/web" and processes["worker"] == "bin/worker", processes
    release = processes["release"].split()
    assert release[0].startswith("bin/"), processes
    databases = [redis.Redis(port=services.REDIS_PORT, db=db) for db in REDIS_DBS]
    for db in databases:
        db.flushdb()
    port = free_port()
    with SMTPServer() as smtp:
        env = production_env(
            port,
            tmp_path / "var",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{services.REDIS_PORT}/{REDIS_DBS[-1]}",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        )
        # Plain http on loopback: passwordless.E003 rightly refuses http links with DEBUG
        # off, and migrate runs the checks first. The rest of the step runs as written.
        ran = subprocess.run(
            ["sh", str(ROOT / release[0]), *release[1:], "--skip-checks"],
            cwd=ROOT,
            env={**env, "PYTHON": sys.executable},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        with celery_worker(env, tmp_path), gunicorn(env, tmp_path, port):
            yield Site(f"http://127.0.0.1:{port}", smtp)
    for db in databases:
        db.flushdb()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM's teardown beside Playwright
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_cross_device_approval_signs_the_waiting_browser_in(site: Site, browser: Browser) -> None:
    laptop_context, phone_context = DESKTOP.open(browser), PHONE.open(browser)
    try:
        laptop, phone = laptop_context.new_page(), phone_context.new_page()
        static: dict[str, Response] = {}
        polls: list[str] = []

        def on_response(response: Response) -> None:
            if "/static/" in response.url:
                static.setdefault(response.url.rsplit("/", 1)[-1], response)

        def on_request(request: Request) -> None:
            if request.resource_type == "fetch":  # wait.js's poll, not a page load
                polls.append(request.url)

        laptop.on("response", on_response)
        laptop.on("request", on_request)

        laptop.goto(f"{site.url}/auth/login/")
        laptop.get_by_label("Email address").fill("erin@example.org")
        laptop.get_by_role("button", name="Email me a sign-in code").click()
        laptop.wait_for_url(f"{site.url}/auth/code/")
        number = laptop.locator(".match-number").inner_text()
        assert number.isdigit()

        body = site.smtp.wait_for(1).get_body(preferencelist=("plain",))
        assert body is not None
        link = re.search(rf"{re.escape(site.url)}/auth/link/\S+", str(body.get_content()))
        assert link, body.get_content()

        phone.goto(link.group(0))
        phone.get_by_label("Number shown on the device that asked").fill(number)
        phone.get_by_role("button", name="Approve", exact=True).click()
        expect(phone.get_by_role("heading", name="Approved")).to_be_visible()

        # Nobody touches the laptop: its page notices the approval by polling.
        laptop.wait_for_url(f"{site.url}/", timeout=20_000)
        expect(laptop.get_by_role("heading", name="You're signed in")).to_be_visible()
        expect(laptop.get_by_text("Signed in as erin@example.org")).to_be_visible()
        assert polls, "the waiting page signed in without its script polling"

        for name, kind in (("site.css", "text/css"), ("wait.js", "javascript")):
            assert name in static, sorted(static)
            assert static[name].status == 200, (name, static[name].status)
            assert kind in static[name].headers["content-type"], static[name].headers
    finally:
        laptop_context.close()
        phone_context.close()
