"""The mail path on each broker, Redis and RabbitMQ, with real processes: gunicorn, a Celery
worker (``bin/worker``), beat (``bin/beat``) and an SMTP server on loopback.

The broker is the test's own: a redis-server on a free port (AOF on, as in
docker-compose.yml), or a vhost of its own on the machine's RabbitMQ, and the tests stop and
start it. The worker must live through that, and every email must still go out: the next
sign-in's within a minute, and the sweeper's for a sign-in started while the broker was away.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis
import requests
from aiosmtpd.controller import Controller
from celery import Celery

from config.celery_app import STALLED_AFTER, is_alive
from passwordless.models import LoginRequest
from tests import services
from tests.stack import (
    ROOT,
    SMTPServer,
    _Collector,
    celery_beat,
    celery_worker,
    free_port,
    gunicorn,
    production_env,
)


def e2e(test: Callable[..., None]) -> Callable[..., None]:
    for mark in (pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis):
        test = mark(test)
    return test


RABBITMQ_VHOST = "passwordless_test"
SENT = LoginRequest.Delivery.SENT


class Broker(Protocol):
    name: str
    url: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


class RedisBroker:
    """A redis-server of the test's own: it can be shut down without touching anyone else's."""

    name = "redis"

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "yes", "--dir", str(self.directory)]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        _until(lambda: _quietly(client.ping), 10, "redis-server did not start")

    def stop(self) -> None:
        # SHUTDOWN, as a restart does it: the AOF is written, the clients are disconnected.
        redis.Redis(port=self.port).shutdown()
        if self._process is not None:
            self._process.wait(timeout=10)

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


class RabbitMQBroker:
    """The machine's RabbitMQ, in a vhost of the tests' own; stop_app closes every client
    connection and the listener, as a restarting broker does, and start_app reopens them."""

    name = "rabbitmq"
    url = f"amqp://guest:guest@127.0.0.1:5672/{RABBITMQ_VHOST}"

    def __init__(self) -> None:
        if shutil.which("rabbitmqctl") is None or not services.answers("127.0.0.1", 5672):
            if services.REQUIRED:
                raise RuntimeError("RabbitMQ is not answering on 127.0.0.1:5672")
            pytest.skip("RabbitMQ is not answering on 127.0.0.1:5672: test skipped")
        vhosts = _rabbitmqctl("list_vhosts", "--quiet", "--no-table-headers").split()
        if RABBITMQ_VHOST not in vhosts:
            _rabbitmqctl("add_vhost", RABBITMQ_VHOST)
            _rabbitmqctl("set_permissions", "-p", RABBITMQ_VHOST, "guest", ".*", ".*", ".*")
        self._purge()

    def start(self) -> None:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")
        _until(lambda: services.answers("127.0.0.1", 5672), 30, "RabbitMQ did not start")

    def stop(self) -> None:
        _rabbitmqctl("stop_app")

    def close(self) -> None:
        if not services.answers("127.0.0.1", 5672):
            self.start()  # always leave the machine's RabbitMQ running
        self._purge()

    def _purge(self) -> None:
        # What a test left (a message held back for later, say) must not reach the next one.
        _rabbitmqctl("purge_queue", "-p", RABBITMQ_VHOST, "celery", check=False)


def _rabbitmqctl(*args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr}")
    return result.stdout


def _quietly(probe: Any) -> bool:
    try:
        return bool(probe())
    except Exception:
        return False


def _until(condition: Any, timeout: float, message: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(every)


class _RefusingCollector(_Collector):
    """Answers 451 (try again later) to the first ``refusals`` messages."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals > 0:
            self.refusals -= 1
            return "451 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


class FlakySMTP(SMTPServer):
    def __init__(self, refusals: int = 0) -> None:
        super().__init__()
        self._collector = _RefusingCollector(refusals)
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)

    def wait_for_mail_to(self, address: str, timeout: float = 60) -> EmailMessage:
        found: list[EmailMessage] = []

        def arrived() -> bool:
            found[:] = [m for m in self.messages if m["To"] == address]
            return bool(found)

        _until(arrived, timeout, f"no mail to {address} after {timeout}s")
        return found[0]


@dataclass
class Stack:
    broker: Broker
    smtp: FlakySMTP
    env: dict[str, str]
    log_dir: Path
    base_url: str

    def sign_in(self, email: str) -> None:
        browser = requests.Session()
        page = browser.get(f"{self.base_url}/auth/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text
        response = browser.post(
            f"{self.base_url}/auth/login/",
            data={"csrfmiddlewaretoken": token.group(1), "email": email},
            headers={"Origin": self.base_url},
            timeout=30,
        )
        assert response.status_code == 200 and response.url.endswith("/auth/code/"), email

    def worker_alive(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(ROOT / "bin" / "worker-alive")],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

    def readyz(self) -> requests.Response:
        return requests.get(f"{self.base_url}/readyz", timeout=30)


def _broker(name: str, tmp_path: Path) -> Broker:
    if name == "redis":
        broker: Broker = RedisBroker(tmp_path)
        broker.start()
        return broker
    return RabbitMQBroker()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    broker = _broker(request.param, tmp_path)
    try:
        yield broker
    finally:
        broker.close()


def _stack(broker: Broker, smtp: FlakySMTP, tmp_path: Path) -> Iterator[Stack]:
    web_port = free_port()
    env = production_env(
        web_port,
        tmp_path / "var",
        CELERY_BROKER_URL=broker.url,
        EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        # The sweeper every second, for what waited two: the outage's sign-in goes out fast.
        SWEEP_INTERVAL="1",
        SWEEP_AFTER="2",
        WORKER_ALIVE_FILE=str(tmp_path / "worker.alive"),
        WORKER_ALIVE_INTERVAL="0.5",
        WORKER_ALIVE_MAX_AGE="5",
        LOG_LEVEL="DEBUG",
        # The same addresses for each broker, one after the other: no rate limit in the way.
        SEND_RATES_PER_EMAIL="100/m",
        SEND_RATES_PER_IP="1000/m",
    )
    with smtp, gunicorn(env, tmp_path, web_port):
        yield Stack(broker, smtp, env, tmp_path, f"http://127.0.0.1:{web_port}")


@pytest.fixture
def stack(broker: Broker, transactional_db: None, tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(broker, FlakySMTP(), tmp_path)


@pytest.fixture
def flaky_stack(broker: Broker, transactional_db: None, tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(broker, FlakySMTP(refusals=2), tmp_path)


def _hold_a_message(url: str) -> str:
    """Publish a task due in ten minutes, which the worker takes and holds unacknowledged
    until then, as it holds a mail task's retry waiting out its backoff."""
    probe = Celery("probe", set_as_current=False)
    # An explicit connection: Celery would read CELERY_BROKER_URL (memory://) from os.environ.
    with probe.connection_for_write(url) as connection:
        result = probe.send_task("passwordless.sweep_outbox", countdown=600, connection=connection)
    probe.close()
    return str(result.id)


def _wait_for_log(process: Any, text: str, timeout: float = 30) -> None:
    _until(lambda: text in process.log(), timeout, f"{text!r} not in {process.name}'s log")


def _delivery(email: str) -> str:
    return str(LoginRequest.objects.get(email=email).delivery)


@e2e
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)
def test_worker_survives_a_broker_restart_and_every_email_goes_out(stack: Stack) -> None:
    """The broker's server stops and starts while a worker holds a message it has not
    acknowledged (a retry waiting out its backoff, a task in flight). With Celery 5.7.0 on
    Redis the worker died there, "Unrecoverable error: AttributeError('NoneType' object has
    no attribute 'hostname')" in kombu's restore_unacked, and no email went out after it."""
    with (
        celery_worker(stack.env, stack.log_dir) as worker,
        celery_beat(stack.env, stack.log_dir) as beat,
    ):
        stack.sign_in("before@example.org")
        stack.smtp.wait_for_mail_to("before@example.org")
        _wait_for_log(worker, _hold_a_message(stack.broker.url))
        assert stack.worker_alive().returncode == 0

        stack.broker.stop()
        try:
            # Started while the broker is away: the normal answer, and the row waits.
            stack.sign_in("during@example.org")
            assert _delivery("during@example.org") == "pending"
            ready = stack.readyz()
            assert ready.status_code == 503 and ready.json()["failed"] == ["broker"]
            _wait_for_log(worker, "Connection to broker lost")
            time.sleep(2)  # the worker retries in the meantime
            worker.assert_running()
            alive = stack.worker_alive()
            assert alive.returncode == 0, alive.stderr  # waiting for the broker is alive
        finally:
            stack.broker.start()

        restarted = time.monotonic()
        stack.sign_in("after@example.org")
        stack.smtp.wait_for_mail_to("after@example.org", timeout=60)
        latency = time.monotonic() - restarted
        stack.smtp.wait_for_mail_to("during@example.org", timeout=60)  # by the sweeper
        print(
            f"{stack.broker.name}: the mail of the first sign-in after the restart {latency:.1f}s"
        )

        worker.assert_running()
        beat.assert_running()
        assert "Unrecoverable error" not in worker.log()
        assert stack.worker_alive().returncode == 0
        ready = stack.readyz()
        assert ready.status_code == 200, ready.text
        assert ready.json()["oldest_pending_email_seconds"] is None

    recipients = sorted(m["To"] for m in stack.smtp.messages)
    assert recipients == ["after@example.org", "before@example.org", "during@example.org"]
    assert set(LoginRequest.objects.values_list("delivery", flat=True)) == {SENT}
    assert stack.worker_alive().returncode != 0  # a stopped worker is not alive


@e2e
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)
def test_a_refusing_mail_server_is_retried_until_it_accepts(flaky_stack: Stack) -> None:
    """SMTP answers 451 twice: the task retries with backoff, through the broker, and the
    third try sends the one email."""
    stack = flaky_stack
    with celery_worker(stack.env, stack.log_dir) as worker:
        stack.sign_in("retried@example.org")
        stack.smtp.wait_for_mail_to("retried@example.org", timeout=60)
        log = worker.log()
    assert log.count("sign-in email deferred") == 2
    assert "Retry in" in log
    assert [m["To"] for m in stack.smtp.messages] == ["retried@example.org"]
    assert _delivery("retried@example.org") == SENT


@e2e
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_readyz_shows_how_long_the_outbox_has_waited(stack: Stack) -> None:
    """No worker runs: /readyz stays ready (200) and says how old the oldest unsent email is;
    an expired request no longer counts."""
    assert stack.readyz().json()["oldest_pending_email_seconds"] is None
    stack.sign_in("waiting@example.org")
    time.sleep(1.5)
    ready = stack.readyz()
    assert ready.status_code == 200
    waited = ready.json()["oldest_pending_email_seconds"]
    assert 1.5 <= waited < 30

    LoginRequest.objects.update(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
    assert stack.readyz().json()["oldest_pending_email_seconds"] is None


@e2e
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_worker_alive_fails_for_a_stopped_or_gone_worker(stack: Stack) -> None:
    with celery_worker(stack.env, stack.log_dir):
        _until(lambda: stack.worker_alive().returncode == 0, 30, "the worker never got alive")
        pid = int((stack.log_dir / "worker.alive").read_text())
        subprocess.run(["kill", "-STOP", str(pid)], check=True)  # frozen, as a hung process
        try:
            time.sleep(6.5)
            frozen = stack.worker_alive()
        finally:
            subprocess.run(["kill", "-CONT", str(pid)], check=True)
        assert frozen.returncode == 1 and "last heartbeat" in frozen.stderr, frozen
        _until(lambda: stack.worker_alive().returncode == 0, 10, "alive again after SIGCONT")
    gone = stack.worker_alive()
    assert gone.returncode == 1 and "no heartbeat file" in gone.stderr, gone


def test_a_loop_that_stopped_turning_is_not_alive_unless_the_broker_is_away() -> None:
    now = 1000.0
    assert is_alive(connected=True, last_turn=now - 1, now=now)
    assert not is_alive(connected=True, last_turn=now - STALLED_AFTER, now=now)
    # Reconnecting, or never connected yet: the loop does not turn, and that is fine.
    assert is_alive(connected=False, last_turn=now - 10 * STALLED_AFTER, now=now)
