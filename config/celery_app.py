"""The project's Celery app. Start a worker with ``bin/worker``; ``bin/worker-alive`` is its
liveness check.

The worker keeps a heartbeat file (``CELERY_WORKER_ALIVE_FILE``) fresh while it is well:
its event loop turns, or it is waiting for a broker that went away. A worker whose loop
stopped while connected (a hung socket, a wedged bootstep) lets the file go stale. The
check reads a file, not the broker: a broker outage must not make every worker look dead
and get them all restarted, and asking the broker (``celery inspect ping``) costs a
Python start-up, a connection and a broadcast every time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from celery import Celery, bootsteps

from config.logs import connect_celery

__all__ = ["Liveness", "app", "is_alive"]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)

#: A loop that has not turned for this long, while connected, is stalled. Longer than a
#: task's hard time limit (45 s): a solo pool runs its task on the loop's own thread.
STALLED_AFTER = 120.0


def is_alive(*, connected: bool, last_turn: float, now: float) -> bool:
    """Whether the heartbeat may be renewed: waiting for the broker, or a loop that turns."""
    return not connected or now - last_turn < STALLED_AFTER


class Liveness(bootsteps.StartStopStep):
    """A consumer bootstep: a timer on the event loop records each turn, and a thread of
    its own renews the heartbeat file while :func:`is_alive` says so.

    The thread starts with the consumer, before its first connection: a worker that waits
    for a broker still down when it started is alive too.
    """

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        conf = parent.app.conf
        self.path = Path(conf.worker_alive_file) if conf.get("worker_alive_file") else None
        self.interval = float(conf.get("worker_alive_interval") or 10.0)
        self.consumer = parent
        self.last_turn = time.monotonic()
        self._entry: Any = None
        self._done = threading.Event()
        if self.path is not None:
            threading.Thread(
                target=self._run, args=(self.path,), name="liveness", daemon=True
            ).start()

    def include_if(self, parent: Any) -> bool:
        return self.path is not None

    def start(self, parent: Any) -> None:
        # Once the broker connection is up, and again after every reconnect.
        self.last_turn = time.monotonic()
        self._entry = parent.timer.call_repeatedly(self.interval, self._turned)

    def stop(self, parent: Any) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None

    def shutdown(self, parent: Any) -> None:
        self.stop(parent)
        self._done.set()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _turned(self) -> None:
        self.last_turn = time.monotonic()

    def _connected(self) -> bool:
        # None while connecting, and after a connection loss (5.7) or collected (5.6).
        connection = self.consumer.connection
        try:
            return connection is not None and bool(connection.connected)
        except Exception:
            return False

    def _run(self, path: Path) -> None:
        was_connected = False
        while not self._done.is_set():
            connected = self._connected()
            if connected and not was_connected:
                self.last_turn = time.monotonic()  # the loop gets a full period to start
            was_connected = connected
            if is_alive(connected=connected, last_turn=self.last_turn, now=time.monotonic()):
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _write(path, f"{os.getpid()}\n")
                except OSError:
                    logger.warning("could not write the heartbeat file %s", path)
            self._done.wait(self.interval)


def _write(path: Path, text: str) -> None:
    """Replace the file whole, so that the check never reads half a pid."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


app = Celery("config")
# Every CELERY_* Django setting configures Celery (CELERY_BROKER_URL -> broker_url).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["consumer"].add(Liveness)
# Tasks log under the id of the request that queued them.
connect_celery()
