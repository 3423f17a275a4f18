"""The project's Celery app. Start a worker with:

celery -A config.celery_app worker --loglevel=INFO
"""

import os

from celery import Celery

from config.logs import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
# Every CELERY_* Django setting configures Celery (CELERY_BROKER_URL -> broker_url).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Tasks log under the id of the request that queued them.
connect_celery()
