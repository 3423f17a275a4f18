from importlib.util import find_spec

from django.apps import AppConfig


class PasswordlessConfig(AppConfig):
    name = "passwordless"
    verbose_name = "Passwordless sign-in"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: they need the app registry, which is ready only
        # now. They register the system checks, and sign users out when their account
        # changes.
        from . import checks  # noqa: F401
        from .receivers import connect

        connect()
        # Celery is an optional dependency. With it installed the tasks register in every
        # process, so that services.mail, which sends them by name, finds them (and runs
        # them in place under CELERY_TASK_ALWAYS_EAGER).
        if find_spec("celery") is not None:
            from . import tasks  # noqa: F401
