"""Real processes on loopback for end-to-end tests: an SMTP server, gunicorn, a Celery worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.controller import Controller

from tests import services

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: Called with each message as it arrives, before the server answers the DATA command.
OnMessage = Callable[[EmailMessage], None]


class _Collector:
    def __init__(self, on_message: OnMessage | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Condition()
        self.on_message = on_message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        if self.on_message is not None:
            # In a thread, so that other connections are served meanwhile; the sender
            # waits for its answer until the hook returns.
            await asyncio.get_running_loop().run_in_executor(None, self.on_message, parsed)
        with self.arrived:
            self.messages.append(parsed)
            self.arrived.notify_all()
        return "250 Message accepted"


class SMTPServer:
    """aiosmtpd on 127.0.0.1 that keeps every message it accepts.

    ``on_message``, if given, sees each message before the sender hears that it was
    accepted: what a mail scanner that opens links at delivery time does.
    """

    def __init__(self, on_message: OnMessage | None = None) -> None:
        self.port = free_port()
        self._collector = _Collector(on_message)
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SMTPServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        return self._collector.messages

    def wait_for(self, count: int, timeout: float = 60) -> EmailMessage:
        """Block until ``count`` messages have arrived and return the last."""
        deadline = time.monotonic() + timeout
        with self._collector.arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self.messages)} of {count} messages after {timeout}s"
                    )
                self._collector.arrived.wait(left)
        return self.messages[count - 1]


class Process:
    """A child process whose output goes to a log file that tests can read."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        """The child's process id: the program itself, since bin/web and bin/worker exec it."""
        return self._proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def assert_running(self) -> None:
        if self._proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self._proc.returncode}):\n{self.log()}")


def new_jwt_key() -> str:
    """A fresh Ed25519 private key in PEM, for JWT_PRIVATE_KEY."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


def project_env(**overrides: str) -> dict[str, str]:
    """The environment of a project process: only what the settings read, plus PATH."""
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.update(overrides)
    return env


def production_env(port: int, var_dir: Path, **overrides: str) -> dict[str, str]:
    """A project process as production runs it (DEBUG off: no debug pages) on plain-http
    loopback, on the test database and Redis database 11 (every use, told apart by prefix)."""
    from django.db import connection

    return project_env(
        **{
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            "REDIS_URL": f"redis://127.0.0.1:{services.REDIS_PORT}/11",
            "CELERY_BROKER_URL": "memory://",
            "SITE_URL": f"http://127.0.0.1:{port}",
            "SECRET_KEY": "production-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "JWT_PRIVATE_KEY": new_jwt_key(),
            "VAR_DIR": str(var_dir),
            "DEBUG": "False",
            "SECURE_SSL_REDIRECT": "False",
            "SECURE_COOKIES": "False",
            "ALLOWED_HOSTS": "127.0.0.1",
            # issue 18: scripted browsers fill the email form faster than any person.
            "FORM_MIN_SECONDS": "0",
            **overrides,
        }
    )


@contextmanager
def gunicorn(
    env: dict[str, str],
    log_dir: Path,
    port: int,
    workers: int = 1,
    ready_path: str = "/auth/login/",
) -> Iterator[Process]:
    # bin/web is what the containers run (docker-compose.yml): the tests run it too.
    web_env = {**env, "PYTHON": sys.executable, "BIND": f"127.0.0.1:{port}"}
    web_env["WEB_WORKERS"] = str(workers)
    process = Process(f"gunicorn-{port}", ["sh", str(ROOT / "bin" / "web")], web_env, log_dir)
    try:
        _wait_for_http(f"http://127.0.0.1:{port}{ready_path}", process)
        yield process
    finally:
        process.stop()


@contextmanager
def _running(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Iterator[Process]:
    process = Process(name, args, env, log_dir)
    try:
        yield process
    finally:
        process.stop()


def celery_worker(
    env: dict[str, str], log_dir: Path, name: str = "celery-worker", options: Sequence[str] = ()
) -> Any:
    """A real worker, as bin/worker runs it (``with celery_worker(...) as worker``). Workers
    running side by side need their own ``name`` (it names the log and the Celery node)."""
    args = ["--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if name != "celery-worker":
        args.append(f"--hostname={name}@%h")
    worker_env = {**env, "PYTHON": sys.executable, "LOG_LEVEL": "DEBUG"}
    return _running(
        name, ["sh", str(ROOT / "bin" / "worker"), *args, *options], worker_env, log_dir
    )


def migrate(env: dict[str, str], log_dir: Path) -> None:
    """Create the tables of the database ``env`` names, as the release step does (bin/migrate).

    Without the system checks: a test's plain-http loopback ``SITE_URL`` fails the
    production ones, which the tests of the checks cover.
    """
    log = log_dir / "migrate.log"
    with log.open("wb") as out:
        done = subprocess.run(
            ["sh", str(ROOT / "bin" / "migrate"), "--skip-checks"],
            cwd=ROOT,
            env={**env, "PYTHON": sys.executable},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode:
        raise RuntimeError(f"migrate failed:\n{log.read_text(errors='replace')}")


def mail_text(message: EmailMessage) -> str:
    """The text part of an email received by ``SMTPServer``."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None, message
    return str(body.get_content())


def code_of(message: EmailMessage) -> str:
    """The code of a sign-in email received by ``SMTPServer``."""
    return code_and_link(message)[0]


def link_token_of(message: EmailMessage) -> str:
    """The token in the link of a sign-in email received by ``SMTPServer``."""
    return code_and_link(message)[1].rstrip("/").rsplit("/", 1)[-1]


def code_and_link(message: EmailMessage) -> tuple[str, str]:
    """The code and the link of a sign-in email received by ``SMTPServer``."""
    text = mail_text(message)
    code = re.search(r"^\s+(\d{6})\s*$", text, re.MULTILINE)
    link = re.search(r"(https?://[^/\s]+/auth/link/[A-Za-z0-9_-]+/)", text)
    assert code and link, text
    return code.group(1), link.group(1)


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


class PostgresCluster:
    """A PostgreSQL server of the test's own, in a temporary directory, on a free port:
    one that a test may stop and start. As root, it runs as the ``postgres`` user."""

    def __init__(self, directory: Path, bin_dir: Path) -> None:
        self.port = free_port()
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self._bin = bin_dir
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(directory, "postgres")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self._bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a private PostgreSQL (``PostgresCluster``); skip the test if it is not installed.

    Its directory is a new one under the system's temporary directory, which the
    ``postgres`` user can reach (pytest's ``tmp_path`` is private to the user running it).
    """
    import pytest

    bin_dir = _postgres_bin()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    directory = Path(tempfile.mkdtemp(prefix="passwordless-pg-"))
    try:
        cluster = PostgresCluster(directory, bin_dir)
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop()  # unless the test stopped it already
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def celery_beat(env: dict[str, str], log_dir: Path) -> Any:
    """Celery beat, as bin/beat runs it, with its schedule file in ``log_dir``."""
    beat_env = {**env, "PYTHON": sys.executable, "BEAT_SCHEDULE": str(log_dir / "beat-schedule")}
    return _running("celery-beat", ["sh", str(ROOT / "bin" / "beat")], beat_env, log_dir)


def _wait_for_http(url: str, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.assert_running()
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or a first request slow on a busy machine
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout}s:\n{process.log()}")
