"""Settings of the load benchmark: the production settings, plus three changes.

- ``bench.urls`` adds the floor views beside the project's URLs.
- The adapter mints predictable codes and links, so wrk completes sign-ins.
  ``passwordless.E013`` refuses that adapter everywhere else; here it is silenced.
- The server listens on plain HTTP on loopback, so ``PASSWORDLESS_SITE_URL`` is
  ``http://127.0.0.1:…`` (``passwordless.E003`` silenced), and the rate limits are
  raised far above the load (they are still checked on every request).

Everything else (DEBUG off, sessions in Redis, PostgreSQL with persistent
connections, a Celery broker) comes from the environment ``bench.load`` sets.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
PASSWORDLESS_ADAPTER = "bench.adapter.PredictableAdapter"
SILENCED_SYSTEM_CHECKS = ["passwordless.E003", "passwordless.E013"]

PASSWORDLESS_SEND_RATES_PER_EMAIL = "1000/m"
PASSWORDLESS_SEND_RATES_PER_IP = "100000000/h"
PASSWORDLESS_VERIFY_RATES_PER_IP = "100000000/h"
PASSWORDLESS_POLL_RATES_PER_IP = "100000000/h"
