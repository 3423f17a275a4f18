from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from passwordless.errors import SignInError
from passwordless.models import AuthEvent, UserSession
from passwordless.services import end_all_sessions, start_sign_in

from .forms import UserChangeAdminForm, UserCreationAdminForm
from .models import User


class UserSessionInline(admin.TabularInline):  # type: ignore[type-arg]
    """The user's signed-in devices, read-only; end them from the sessions admin."""

    model = UserSession
    fk_name = "user"
    fields = ("kind", "device", "network", "method", "created_at", "last_seen_at", "ended_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserSession]:
        return super().get_queryset(request).filter(ended_at=None)


@admin.register(User)
class UserAdmin(BaseUserAdmin):  # type: ignore[type-arg]
    add_form = UserCreationAdminForm
    form = UserChangeAdminForm
    ordering = ("email",)
    search_fields = ("email",)
    list_display = (
        "email",
        "is_active",
        "is_staff",
        "last_login",
        "last_sign_in_method",
        "date_joined",
    )
    list_filter = ("is_active", "is_staff", "is_superuser")
    actions = ("email_sign_in_link", "sign_out_everywhere", "deactivate")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        last_method = AuthEvent.objects.filter(user=OuterRef("pk"), kind="signed_in").order_by(
            "-created_at"
        )
        users: QuerySet[User] = super().get_queryset(request)
        return users.annotate(last_method=Subquery(last_method.values("method")[:1]))

    @admin.display(description="last sign-in by", ordering="last_method")
    def last_sign_in_method(self, user: User) -> str:
        return getattr(user, "last_method", None) or "-"

    inlines = (UserSessionInline,)

    @admin.action(description="Email a sign-in code and link")
    def email_sign_in_link(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        sent = 0
        for user in queryset.filter(is_active=True):
            try:
                start_sign_in(user.email)
                sent += 1
            except SignInError as error:
                self.message_user(request, f"{user.email}: {error.message}", messages.WARNING)
        self.message_user(request, f"Sent {sent} sign-in email(s).", messages.SUCCESS)

    @admin.action(description="Sign out everywhere (every device and API token)")
    def sign_out_everywhere(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        ended = sum(end_all_sessions(user, reason="admin") for user in queryset)
        self.message_user(request, f"Ended {ended} session(s).", messages.SUCCESS)

    @admin.action(description="Deactivate (and sign out everywhere)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset.filter(is_active=True))
        for user in users:
            user.is_active = False
            user.save(update_fields=["is_active"])  # the app's receiver ends every session
        self.message_user(request, f"Deactivated {len(users)} user(s).", messages.SUCCESS)

    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ("last_login", "date_joined")
