"""The image, run: web, worker and beat containers on the host network against the machine's
PostgreSQL, Redis and RabbitMQ and an SMTP server on loopback, and a person signs in through
them. Once from plain ``docker run`` containers, once from ``docker-compose -f
docker-compose.yml -f docker-compose.ci.yml up``; each runs what the bin/ scripts run.

docker/ci builds the image and runs this module with ``PASSWORDLESS_IMAGE`` naming it. Without
that variable (``make test``) every test here is skipped: the image takes a Docker daemon and
a minute or more to build, which the rest of the suite does not need.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import requests

from tests import services
from tests.api_client import ApiClient
from tests.stack import SMTPServer, code_of, free_port, new_jwt_key

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("PASSWORDLESS_IMAGE", "")
#: Every container these tests start carries it, so that docker/ci can remove leftovers.
LABEL = "passwordless-ci"
DATABASE = os.environ.get("CONTAINER_DB_NAME", "passwordless_container")
RUN_REDIS_DB = 13  # the docker run stack's; compose's is 14
COMPOSE_REDIS_DB = 14
RABBITMQ_VHOST = "passwordless_container"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.ci.yml")
#: What the image's /app holds: the .dockerignore allowlist, and what the build made.
APP_FILES = {
    "MANIFEST.in",
    "README.md",
    "accounts",
    "bin",
    "config",
    "constraints.txt",
    "manage.py",
    "passwordless",
    "pyproject.toml",
    "static",
    "staticfiles",
    "templates",
    "var",
}


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr}{result.stdout}")
    return result.stdout.strip()


@pytest.fixture(scope="module")
def image() -> str:
    if not IMAGE:
        pytest.skip("PASSWORDLESS_IMAGE is not set: docker/ci builds the image and runs these")
    found = shutil.which("docker") and docker("image", "inspect", IMAGE, check=False)
    if not found or found == "[]":
        raise RuntimeError(f"PASSWORDLESS_IMAGE={IMAGE} is set, but docker has no such image")
    return IMAGE


@dataclass
class Machine:
    """The machine's services as the containers reach them, and an SMTP server to read."""

    smtp: SMTPServer
    web_port: int
    database_url: str
    jwt_key: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"


def _web_port() -> int:
    # Anything but the image's default, so that a healthy web proves the check reads BIND.
    while (port := free_port()) == 8000:
        pass
    return port


@contextlib.contextmanager
def _database() -> Iterator[str]:
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


@contextlib.contextmanager
def _redis_db(db: int) -> Iterator[str]:
    server = redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=db)
    server.flushdb()
    try:
        yield f"redis://127.0.0.1:{services.REDIS_PORT}/{db}"
    finally:
        server.flushdb()


@pytest.fixture
def machine(image: str) -> Iterator[Machine]:
    with _database() as database_url, SMTPServer() as smtp:
        # Newlines as \n: one line, for an env file; the settings turn them back.
        jwt_key = new_jwt_key().replace("\n", "\\n")
        yield Machine(smtp, _web_port(), database_url, jwt_key)


def _environment(machine: Machine, redis_url: str) -> dict[str, str]:
    """Production settings (DEBUG off) on plain-http loopback, as docker-compose.ci.yml has."""
    return {
        "DEBUG": "False",
        "SECRET_KEY": f"container-test-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "PASSWORDLESS_HASH_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "JWT_PRIVATE_KEY": machine.jwt_key,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": f"https://127.0.0.1:{machine.web_port}",
        "BIND": f"127.0.0.1:{machine.web_port}",
        "SECURE_SSL_REDIRECT": "False",
        "SECURE_COOKIES": "False",
        "DATABASE_URL": machine.database_url,
        "REDIS_URL": redis_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{machine.smtp.port}",
    }


def _state(container: str) -> dict[str, object]:
    state: dict[str, object] = json.loads(docker("inspect", "-f", "{{json .State}}", container))
    return state


def _health(container: str) -> str:
    health = _state(container).get("Health")
    return str(health["Status"]) if isinstance(health, dict) else "none"


def _healthy(container: str) -> Callable[[], bool]:
    return lambda: _health(container) == "healthy"


def _wait_for(
    what: str, ready: Callable[[], bool], containers: list[str], timeout: float = 90
) -> float:
    """Poll ``ready()`` until true; fail with the containers' logs. Returns seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        for container in containers:
            if _state(container).get("Status") not in ("running", "restarting"):
                raise AssertionError(f"{container} is not running:\n{_logs(containers)}")
        if ready():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"{what} not after {timeout}s:\n{_logs(containers)}")


def _log(container: str, tail: str = "all") -> str:
    """What the container wrote, stdout and stderr together."""
    result = subprocess.run(
        ["docker", "logs", "--tail", tail, container],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout


def _logs(containers: list[str]) -> str:
    return "\n".join(f"--- {c}\n{_log(c, tail='40')}" for c in containers)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:  # refused, or accepted while gunicorn boots
        return False


def _report(line: str) -> None:
    print(f"  {line}", flush=True)  # docker/ci shows it: pytest runs there with -s


def _post_form(browser: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    """Submit a form as a browser does: the CSRF token from the page, the Origin header."""
    page = browser.get(url, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    return browser.post(
        url,
        data={"csrfmiddlewaretoken": token.group(1), **data},
        headers={"Origin": url.split("/auth/")[0]},
        timeout=10,
    )


def test_the_image_carries_the_app_and_nothing_else(image: str) -> None:
    listing = docker("run", "--rm", "--label", LABEL, image, "ls", "-A", "/app").split()
    assert set(listing) == APP_FILES
    assert docker("run", "--rm", "--label", LABEL, image, "id", "-u") == "10001"
    size = int(docker("image", "inspect", "--format", "{{.Size}}", image))
    _report(f"image {image}: {size / 1e6:.0f} MB, /app holds {' '.join(sorted(listing))}")


@contextlib.contextmanager
def _docker_run(image: str, env_file: Path, prefix: str) -> Iterator[dict[str, str]]:
    """migrate once, then web, worker and beat, with the health checks and restart policy of
    docker-compose.yml; removed at the end, whatever happened."""
    common = ["--network", "host", "--env-file", str(env_file), "--label", LABEL]
    names = {kind: f"{prefix}-{kind}" for kind in ("web", "worker", "beat")}
    try:
        docker("run", "--rm", "--name", f"{prefix}-migrate", *common, image, "sh", "bin/migrate")
        restart = ["--detach", "--restart", "unless-stopped", *common]
        # The image's own check (bin/healthcheck), asked every 2 s instead of 30.
        docker("run", "--name", names["web"], *restart, "--health-interval", "2s", image)
        docker(
            "run", "--name", names["worker"], *restart,
            "--health-cmd", "sh bin/worker-alive", "--health-interval", "2s",
            image, "sh", "bin/worker",
        )  # fmt: skip
        beat = ["--no-healthcheck", image, "sh", "bin/beat"]
        docker("run", "--name", names["beat"], *restart, *beat)
        yield names
    finally:
        docker("rm", "--force", *names.values(), check=False)


def test_sign_in_through_web_worker_and_beat_containers(
    image: str, machine: Machine, tmp_path: Path
) -> None:
    with _redis_db(RUN_REDIS_DB) as redis_url:
        env_file = tmp_path / "container.env"
        env = _environment(machine, redis_url)
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        prefix = f"passwordless-ci-{uuid.uuid4().hex[:8]}"
        with _docker_run(image, env_file, prefix) as names:
            containers = list(names.values())
            base = machine.base_url
            waited = _wait_for("/healthz", lambda: _answers(f"{base}/healthz"), containers)
            _report(f"docker run: web answers /healthz on {env['BIND']} after {waited:.1f}s")

            browser = requests.Session()
            script = browser.get(f"{base}/static/passwordless/wait.js", timeout=10)
            assert script.status_code == 200 and "fetch(url" in script.text  # collected at build
            ready = browser.get(f"{base}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text

            response = _post_form(browser, f"{base}/auth/login/", {"email": "Alice@Example.org"})
            assert response.status_code == 200 and response.url.endswith("/auth/code/")
            message = machine.smtp.wait_for(1)
            assert message["To"] == "alice@example.org"
            response = _post_form(browser, f"{base}/auth/code/", {"code": code_of(message)})
            assert "Signed in as <strong>alice@example.org</strong>" in response.text
            _report("docker run: signed in by the HTML form, the code mailed by the worker")

            worker_log = _log(names["worker"])
            assert "send_login_email" in worker_log, worker_log  # this worker sent it
            for name in (names["web"], names["worker"]):
                waited = _wait_for(f"{name} healthy", _healthy(name), containers)
                _report(f"docker run: {name.removeprefix(prefix + '-')} healthy ({waited:.1f}s)")
            assert _health(names["beat"]) == "none"
            assert "beat: Starting" in _log(names["beat"])
            assert docker("exec", names["web"], "id", "-u") == "10001"


@contextlib.contextmanager
def _rabbitmq_vhost() -> Iterator[str | None]:
    """amqp:// on a vhost of these tests' own, or None without a RabbitMQ to manage."""
    if shutil.which("rabbitmqctl") is None or not services.answers("127.0.0.1", 5672):
        yield None
        return

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60, check=True)

    ctl("add_vhost", RABBITMQ_VHOST)
    try:
        ctl("set_permissions", "-p", RABBITMQ_VHOST, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{RABBITMQ_VHOST}"
    finally:
        ctl("delete_vhost", RABBITMQ_VHOST)


def _compose(project_dir: Path, env: dict[str, str], *args: str, timeout: float = 180) -> str:
    files = [arg for name in COMPOSE_FILES for arg in ("-f", str(ROOT / name))]
    result = subprocess.run(
        ["docker-compose", "--project-directory", str(project_dir), *files, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"docker-compose {' '.join(args)}: {result.stderr}{result.stdout}")
    return result.stdout.strip()


def test_sign_in_through_the_compose_stack(image: str, machine: Machine, tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        raise RuntimeError("docker-compose is not installed (docker/ci installs it)")
    # A directory of its own: compose wants the .env that env_file names (an empty one),
    # and a developer's .env stays out of the CI stack.
    project_dir = tmp_path / "compose"
    project_dir.mkdir()
    (project_dir / ".env").write_text("")
    project = f"passwordless-ci-{uuid.uuid4().hex[:8]}"
    with _redis_db(COMPOSE_REDIS_DB) as redis_url, _rabbitmq_vhost() as amqp_url:
        env = {
            "PATH": os.environ["PATH"],
            "COMPOSE_PROJECT_NAME": project,
            "PASSWORDLESS_IMAGE": image,
            "CI_WEB_PORT": str(machine.web_port),
            "CI_SMTP_PORT": str(machine.smtp.port),
            "CI_DATABASE_URL": machine.database_url,
            "CI_REDIS_URL": redis_url,
            "CI_CELERY_BROKER_URL": amqp_url or "",
            "CI_JWT_PRIVATE_KEY": machine.jwt_key,
        }
        try:
            started = time.monotonic()
            _compose(project_dir, env, "up", "--detach", "--no-build")
            _report(f"compose: up in {time.monotonic() - started:.1f}s")
            names = {service: f"{project}_{service}_1" for service in ("web", "worker", "beat")}
            containers = list(names.values())
            running = _compose(project_dir, env, "ps", "--services", "--filter", "status=running")
            assert set(running.split()) == set(names), running  # no bundled service
            base = machine.base_url
            waited = _wait_for("/healthz", lambda: _answers(f"{base}/healthz"), containers)
            broker = "RabbitMQ" if amqp_url else "Redis"
            _report(f"compose: web answers on 127.0.0.1:{machine.web_port} ({waited:.1f}s)")

            api = ApiClient(base)
            sent = api.send("bob@example.org")
            assert sent.status_code == 202, sent.text
            message = machine.smtp.wait_for(1)
            assert message["To"] == "bob@example.org"
            verified = api.verify_code(sent.json()["request_id"], code_of(message))
            assert verified.status_code == 200, verified.text
            me = api.me(verified.json()["access"])
            assert me.status_code == 200 and me.json()["user"]["email"] == "bob@example.org"
            _report(f"compose: signed in by the JSON API (mail by the worker, {broker} broker)")

            for name in (names["web"], names["worker"]):
                waited = _wait_for(f"{name} healthy", _healthy(name), containers)
                _report(f"compose: {name.split('_')[1]} healthy ({waited:.1f}s)")
            assert _health(names["beat"]) == "none"

            # restart: unless-stopped brings back a worker whose process ended, consuming.
            docker("exec", names["worker"], "sh", "-c", "kill -TERM 1")  # the shell's kill
            waited = _wait_for(
                "the worker restarted and ready",
                lambda: (
                    int(docker("inspect", "--format", "{{.RestartCount}}", names["worker"])) >= 1
                    and _log(names["worker"]).count("ready.") >= 2
                ),
                containers,
            )
            _report(f"compose: worker ended from inside, restarted and ready ({waited:.1f}s)")
        finally:
            started = time.monotonic()
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _compose(project_dir, env, "down", "--timeout", "10")
            _report(f"compose: down in {time.monotonic() - started:.1f}s")
