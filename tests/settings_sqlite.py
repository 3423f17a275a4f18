"""The test settings on SQLite, the development default, whatever else answers.

``tests/test_session_state_read.py`` runs its database tests again under these settings,
in a process of its own (``--ds tests.settings_sqlite``): the statement
``SessionModelBackend`` writes must hold on SQLite too (its quoting, ``EXISTS`` as 0 or 1).
"""

from tests.settings import *  # noqa: F403

HAS_POSTGRES = False
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        # As config.settings has it for SQLite.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
