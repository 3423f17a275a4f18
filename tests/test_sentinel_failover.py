"""Redis Sentinel: the primary is killed under a stream of sign-ins, Sentinel promotes the
replica, and the site comes back by itself.

A primary and a replica (``--replicaof``) of the test's own and three Sentinels (quorum 2,
``down-after-milliseconds`` 1000) run on loopback ports from 26400 to 26499; gunicorn, a
Celery worker and beat run with ``REDIS_SENTINELS`` and ``REDIS_URL=redis://mymaster/0``:
the cache, the sessions, the rate limits and the broker (kombu's ``sentinel://``) all find
the primary through the Sentinels. Threads sign in without pause (the form, the email at the
SMTP sink, the code) and load pages as people signed in before; then the primary gets
``SIGKILL``. Measured and printed: how long sign-ins failed and with which statuses (503,
never 500, and no traceback in the web log), and how many of the sessions signed in during
the last second before the kill were lost with the replication that had not reached the
replica yet. After the promotion, sign-ins and the sessions from before work again without
any process restarted.

A planned failover (``SENTINEL FAILOVER``, the old primary still up) must move every
connection off the old primary: what is written there is lost once it becomes a replica.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from config import sentinel
from config.redis_cache import SentinelPrimaryPool
from passwordless.redis_probe import redis_url_problem
from tests import services
from tests.stack import (
    Process,
    SMTPServer,
    celery_beat,
    celery_worker,
    code_of,
    free_port,
    gunicorn,
    production_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SERVICE = "mymaster"
PORTS = range(26400, 26500)
#: A sign-in is a success only if its email arrives within this; otherwise it is counted
#: failed and the thread starts another (the sweeper may still send it later).
MAIL_WAIT = 8.0
SIGN_IN_THREADS = 3
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_SIGNED_IN = re.compile(r"Signed in as <strong>([^<]+)</strong>")


def _port_in_range(taken: set[int]) -> int:
    """A free loopback port from 26400-26499 (the range this test may use)."""
    candidates = [p for p in PORTS if p not in taken]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in 26400-26499")


def _until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.05)


def _quietly(probe: Callable[[], object]) -> bool:
    try:
        return bool(probe())
    except (redis.RedisError, OSError):
        return False


class Topology:
    """A primary, a replica and three Sentinels, each a redis-server of this test's own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        taken: set[int] = set()
        self.primary_port = _port_in_range(taken)
        self.replica_port = _port_in_range(taken)
        self.sentinel_ports = [_port_in_range(taken) for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> str:
        """``REDIS_SENTINELS``."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    @property
    def sentinel_list(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    def _server(self, port: int, *args: str) -> None:
        log = self.directory / f"redis-{port}.log"
        self.processes[port] = subprocess.Popen(
            ["redis-server", *args, "--logfile", str(log)], stdout=subprocess.DEVNULL
        )

    def _data_node(self, port: int, *extra: str) -> None:
        node_dir = self.directory / str(port)
        node_dir.mkdir()
        self._server(
            port,
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir)),
            *("--save", "", "--appendonly", "no"),
            *extra,
        )
        client = redis.Redis(port=port)
        _until(lambda: _quietly(client.ping), 10, f"redis-server on {port} did not start")

    def start(self) -> None:
        self._data_node(self.primary_port)
        self._data_node(self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        replica = redis.Redis(port=self.replica_port)
        _until(
            lambda: replica.info("replication").get("master_link_status") == "up",
            10,
            "the replica never synced",
        )
        for port in self.sentinel_ports:
            # Sentinel rewrites its configuration file: one each, in the test's directory.
            conf = self.directory / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._server(port, str(conf), "--sentinel")
        # A failover needs each Sentinel to know the replica and the two other Sentinels
        # (they find each other through the primary's hello channel, every 2 s).
        for port in self.sentinel_ports:
            sentinel = redis.Redis(port=port)
            _until(
                lambda s=sentinel: _quietly(lambda: _knows_everyone(s)),  # type: ignore[misc]
                20,
                f"the Sentinel on {port} never found the replica and its peers",
            )

    def primary(self) -> tuple[str, int]:
        """The primary the Sentinels name now."""
        sentinel = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        address: Any = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return str(address[0]), int(address[1])

    def kill_primary(self) -> None:
        self.processes[self.primary_port].send_signal(signal.SIGKILL)
        self.processes[self.primary_port].wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _knows_everyone(sentinel: redis.Redis) -> bool:
    state: Any = sentinel.sentinel_master(SERVICE)
    return int(state["num-slaves"]) == 1 and int(state["num-other-sentinels"]) == 2


@dataclass
class Answer:
    at: float
    status: int
    path: str


@dataclass
class Reply:
    status: int
    text: str


@dataclass
class SignIn:
    email: str
    started: float
    ended: float = 0.0
    ok: bool = False
    session: requests.Session = field(default_factory=requests.Session)


@dataclass
class Traffic:
    """What the threads saw: every answer, and every sign-in attempted."""

    base_url: str
    smtp: SMTPServer
    answers: list[Answer] = field(default_factory=list)
    sign_ins: list[SignIn] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def _send(self, session: requests.Session, method: str, path: str, **kw: Any) -> Reply:
        try:
            response = session.request(
                method, self.base_url + path, timeout=20, allow_redirects=False, **kw
            )
            reply = Reply(response.status_code, response.text)
        except requests.RequestException:
            reply = Reply(0, "")  # the connection failed: never expected
        with self.lock:
            self.answers.append(Answer(time.monotonic(), reply.status, path))
        return reply

    def _form(self, session: requests.Session, path: str) -> str | None:
        reply = self._send(session, "GET", path)
        match = _CSRF.search(reply.text) if reply.status == 200 else None
        return match.group(1) if match else None

    def _post(self, session: requests.Session, path: str, data: dict[str, str]) -> int:
        headers = {"Origin": self.base_url}
        return self._send(session, "POST", path, data=data, headers=headers).status

    def _mail_to(self, email: str, deadline: float) -> str | None:
        while time.monotonic() < deadline and not self.stop.is_set():
            for message in list(self.smtp.messages):
                if message["To"] == email:
                    return code_of(message)
            time.sleep(0.02)
        return None

    def sign_in(self, email: str) -> SignIn:
        attempt = SignIn(email, time.monotonic())
        with self.lock:
            self.sign_ins.append(attempt)
        session = attempt.session
        token = self._form(session, "/auth/login/")
        if token is None:
            return attempt
        data = {"csrfmiddlewaretoken": token, "email": email}
        if self._post(session, "/auth/login/", data) != 302:
            return attempt
        code = self._mail_to(email, time.monotonic() + MAIL_WAIT)
        token = self._form(session, "/auth/code/") if code else None
        if code is None or token is None:
            return attempt
        if self._post(session, "/auth/code/", {"csrfmiddlewaretoken": token, "code": code}) != 302:
            return attempt
        if self.signed_in_as(session) == email:
            attempt.ok, attempt.ended = True, time.monotonic()
        return attempt

    def signed_in_as(self, session: requests.Session) -> str | None:
        reply = self._send(session, "GET", "/")
        match = _SIGNED_IN.search(reply.text) if reply.status == 200 else None
        return match.group(1) if match else None

    def next_email(self) -> str:
        with self.lock:
            self.counter += 1
            return f"stream-{self.counter}@example.org"

    def sign_in_forever(self) -> None:
        while not self.stop.is_set():
            self.sign_in(self.next_email())

    def browse_forever(self, sessions: list[requests.Session]) -> None:
        while not self.stop.is_set():
            for session in sessions:
                self.signed_in_as(session)
            time.sleep(0.05)


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    if shutil.which("redis-server") is None or not _sentinel_installed():
        if services.REQUIRED:
            raise RuntimeError("redis-server with Sentinel (Debian's redis-sentinel) is needed")
        pytest.skip("Redis Sentinel (Debian's redis-sentinel) is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    topology = Topology(directory)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()


def _sentinel_installed() -> bool:
    return shutil.which("redis-sentinel") is not None or Path("/usr/bin/redis-sentinel").exists()


class Writer:
    """Plain ``SET``s on the primary, one every millisecond until it dies, each noted when
    the primary acknowledged it: what asynchronous replication loses, at a finer grain than
    the sign-ins give."""

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(port=port, db=1, socket_timeout=1)
        self.acked: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        for i in itertools.count():
            key = f"write:{i}"
            try:
                self.client.set(key, "1")
            except (redis.RedisError, OSError):
                return
            self.acked.append((time.monotonic(), key))
            time.sleep(0.001)

    def lost_since(self, since: float, port: int) -> tuple[int, int]:
        """(acknowledged since ``since``, missing from the server on ``port``)."""
        keys = [key for at, key in self.acked if at >= since]
        survivor = redis.Redis(port=port, db=1)
        present = survivor.pipeline()
        for key in keys:
            present.exists(key)
        return len(keys), sum(1 for found in present.execute() if not found)


@contextlib.contextmanager
def _site(
    topology: Topology, tmp_path: Path, *, worker: bool = True
) -> Iterator[tuple[str, SMTPServer, Process]]:
    """gunicorn with the Sentinel settings, and a worker and beat on the Redis broker; or,
    without ``worker``, the mail sent by the web process itself (no broker)."""
    port = free_port()
    with SMTPServer() as smtp:
        env = production_env(
            port,
            tmp_path / "var",
            REDIS_URL=f"redis://{SERVICE}/0",
            REDIS_SENTINELS=topology.sentinels,
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SEND_RATES_PER_EMAIL="100/m",
            SEND_RATES_PER_IP="100000/h",
            VERIFY_RATES_PER_IP="100000/5m",
            # The sweeper every second, for what waited two: a sign-in whose task was lost
            # with the primary still gets its email.
            SWEEP_INTERVAL="1",
            SWEEP_AFTER="2",
            WORKER_ALIVE_FILE=str(tmp_path / "worker.alive"),
        )
        if not worker:
            with gunicorn(env, tmp_path, port, workers=2) as web:
                yield f"http://127.0.0.1:{port}", smtp, web
            return
        del env["CELERY_BROKER_URL"]  # the broker is REDIS_URL's: through the Sentinels too
        # The worker and beat first: they boot while gunicorn's readiness is awaited.
        with (
            celery_worker(env, tmp_path),
            celery_beat(env, tmp_path),
            gunicorn(env, tmp_path, port, workers=2) as web,
        ):
            yield f"http://127.0.0.1:{port}", smtp, web


def test_the_primary_dies_and_sign_ins_come_back_by_themselves(
    topology: Topology, transactional_db: None, tmp_path: Path
) -> None:
    # The system check (E020) asks the Sentinels too: the service's primary answers, and a
    # database number it does not have is named.
    options = sentinel.cache_options(topology.sentinel_list)
    assert redis_url_problem(f"redis://{SERVICE}/0", options) is None
    refused = redis_url_problem(f"redis://{SERVICE}/16", options)
    assert refused == "database 16 does not exist on this server"

    with _site(topology, tmp_path) as (base_url, smtp, web):
        ready = requests.get(f"{base_url}/readyz", timeout=30)
        assert ready.status_code == 200, ready.text  # the caches and the broker, by Sentinel
        traffic = Traffic(base_url, smtp)
        before = [traffic.sign_in(f"before-{i}@example.org") for i in range(3)]
        assert all(s.ok for s in before), [a.status for a in traffic.answers]
        writer = Writer(topology.primary_port)
        threads = [
            threading.Thread(target=traffic.sign_in_forever) for _ in range(SIGN_IN_THREADS)
        ]
        threads.append(
            threading.Thread(target=traffic.browse_forever, args=([s.session for s in before],))
        )
        for thread in [*threads, writer.thread]:
            thread.start()
        try:
            time.sleep(2.5)
            old_primary = topology.primary()
            killed = time.monotonic()
            topology.kill_primary()
            _until(lambda: topology.primary() != old_primary, 30, "no promotion")
            promoted = time.monotonic()
            # Until a sign-in started after the promotion has gone through, then a little more.
            _until(
                lambda: any(s.ok and s.started > promoted for s in traffic.sign_ins),
                30,
                "no sign-in went through after the promotion",
            )
            time.sleep(1)
        finally:
            traffic.stop.set()
            for thread in [*threads, writer.thread]:
                thread.join(30)
        log = web.log()

        # The people signed in before are still signed in: no process was restarted.
        for attempt in before:
            assert traffic.signed_in_as(attempt.session) == attempt.email
        # The sessions signed in during the last second before the kill, read after it.
        last_second = [s for s in traffic.sign_ins if s.ok and killed - 1 <= s.ended < killed]
        lost = [s for s in last_second if traffic.signed_in_as(s.session) != s.email]
        writes, lost_writes = writer.lost_since(killed - 1, topology.primary()[1])

    after_kill = [a for a in traffic.answers if a.at >= killed]
    failed = [a for a in after_kill if a.status not in (200, 302)]
    last_failure = max((a.at for a in failed), default=killed)
    first_ok = min(s.started for s in traffic.sign_ins if s.ok and s.started > killed)
    print(
        f"\nSentinel failover: the replica promoted {promoted - killed:.1f}s after the kill; "
        f"answers failed until {last_failure - killed:.1f}s after it "
        f"({len(failed)} of {len(after_kill)}, statuses {sorted({a.status for a in failed})}); "
        f"the first sign-in to go through began {first_ok - killed:.1f}s after it. "
        f"Signed in during the last second before the kill: {len(last_second)}, "
        f"lost {len(lost)}; plain writes acknowledged then: {writes}, lost {lost_writes}. "
        f"Sign-ins: {sum(s.ok for s in traffic.sign_ins)} of {len(traffic.sign_ins)} started."
    )
    statuses = {a.status for a in traffic.answers}
    assert statuses <= {200, 302, 503}, statuses  # never a 500, nor a dropped connection (0)
    assert "Traceback" not in log, log[-3000:]


def test_a_planned_failover_moves_every_connection_off_the_old_primary(
    topology: Topology, transactional_db: None, tmp_path: Path
) -> None:
    """``SENTINEL FAILOVER``: the old primary stays up, and writable, for about ten seconds
    until Sentinel turns it into a replica, while the web processes hold connections to it.
    What they write there meanwhile is lost when it resyncs from the new primary (with
    redis-py's own pool, 35 of the 40 sessions signed in from the failover on, in one run).
    ``SentinelPrimaryPool`` asks the Sentinels again every second and leaves the old
    primary: only what was signed in within about a second of the switch may be lost, the
    sessions from before go on, and nothing fails with a 500. The mail goes out from the web
    process (no broker): the broker's connections are kombu's, which this pool does not
    cover."""
    with _site(topology, tmp_path, worker=False) as (base_url, smtp, web):
        traffic = Traffic(base_url, smtp)
        before = [traffic.sign_in(f"planned-{i}@example.org") for i in range(3)]
        assert all(s.ok for s in before), [a.status for a in traffic.answers]
        threads = [threading.Thread(target=traffic.sign_in_forever) for _ in range(2)]
        threads.append(
            threading.Thread(target=traffic.browse_forever, args=([s.session for s in before],))
        )
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.5)
            old_primary = topology.primary()
            asked = time.monotonic()
            redis.Redis(port=topology.sentinel_ports[0]).execute_command(
                "SENTINEL", "FAILOVER", SERVICE
            )
            _until(lambda: topology.primary() != old_primary, 30, "no failover")
            switched = time.monotonic()
            demoted = redis.Redis(port=old_primary[1])
            _until(lambda: demoted.info("replication")["role"] == "slave", 30, "not demoted")
            demoted_at = time.monotonic()
            _until(
                lambda: any(s.ok and s.started > switched for s in traffic.sign_ins),
                30,
                "no sign-in went through after the failover",
            )
            time.sleep(1)
        finally:
            traffic.stop.set()
            for thread in threads:
                thread.join(30)
        log = web.log()
        for attempt in before:
            assert traffic.signed_in_as(attempt.session) == attempt.email
        # Every session signed in since the failover was asked for, read now.
        after = [s for s in traffic.sign_ins if s.ok and s.ended > asked]
        lost = [s for s in after if traffic.signed_in_as(s.session) != s.email]

    during = [a for a in traffic.answers if a.at >= asked]
    failed = [a for a in during if a.status not in (200, 302)]
    print(
        f"\nPlanned failover: the new primary named {switched - asked:.1f}s after SENTINEL "
        f"FAILOVER, the old one a replica {demoted_at - asked:.1f}s after it; "
        f"{len(failed)} of {len(during)} answers failed from then on "
        f"({sorted({a.status for a in failed})}); signed in since it was asked: {len(after)}, "
        f"lost {len(lost)} (ended {[round(s.ended - switched, 1) for s in lost]}s after the "
        "switch)"
    )
    # A session created on the old primary in the switch's last moment is gone from the new
    # one: saving it again finds nothing to update (``config.session_store``'s SET XX), and
    # Django answers 400 (SessionInterrupted), as for a session ended meanwhile; the person
    # starts again. That is the loss counted above, never a 500.
    statuses = {a.status for a in traffic.answers}
    assert statuses <= {200, 302, 400, 503}, statuses
    assert "Traceback" not in log, log[-3000:]
    # Until each process has asked the Sentinels again (SentinelPrimaryPool.CHECK_INTERVAL,
    # with a margin), a sign-in may still land on the old primary; none after that.
    settled = switched + SentinelPrimaryPool.CHECK_INTERVAL + 0.5
    assert [s for s in lost if s.started > settled] == [], [s.started - switched for s in lost]
