from django.apps import AppConfig


class PasswordlessConfig(AppConfig):
    name = "passwordless"
    verbose_name = "Passwordless sign-in"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, and signs users out when their account changes.
        from . import checks  # noqa: F401
        from .receivers import connect

        connect()
