from django.apps import AppConfig


class PasswordlessConfig(AppConfig):
    name = "passwordless"
    verbose_name = "Passwordless sign-in"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks.
        from . import checks  # noqa: F401
