from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from passwordless.admin import skip_privileged
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


#: What only a superuser may set: each of them can grant every other right.
SUPERUSER_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def is_privileged(user: User) -> bool:
    """A staff member or superuser: their account can grant rights, and their address is the
    credential to it, so only a superuser may change it or act on it."""
    return user.is_staff or user.is_superuser


@admin.register(User)
class UserAdmin(BaseUserAdmin):  # type: ignore[type-arg]
    """Django's permissions decide, and above them one rule: only a superuser may change a
    staff or superuser account, or anyone's rights. The change form, the password form,
    deletion and every action enforce it, so a crafted POST cannot go around the page."""

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

    # Who may change whom.

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return super().has_change_permission(request, obj) and self.may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self.may_manage(request, obj)

    def may_manage(self, request: HttpRequest, user: User | None) -> bool:
        return user is None or _is_superuser(request) or not is_privileged(user)

    def manageable(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        """The selected accounts this admin may act on; the others are reported, not touched."""
        return skip_privileged(self, request, queryset, "", "staff account(s)")

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and not _is_superuser(request):
            # Read-only fields are not in the form at all: a crafted POST cannot set them.
            return (*fields, *SUPERUSER_FIELDS)
        return fields

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None) -> Any:
        if obj is None or _is_superuser(request):
            return super().get_fieldsets(request, obj)  # without an object: the add form
        # Others see the rights read-only; the long list of permissions is left out.
        return tuple(
            (
                name,
                {**options, "fields": [f for f in options["fields"] if f != "user_permissions"]},
            )
            for name, options in self.fieldsets
        )

    # Actions: each needs the change permission, and skips staff for a non-superuser.

    @admin.action(description="Email a sign-in code and link", permissions=["change"])
    def email_sign_in_link(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        sent = 0
        for user in self.manageable(request, queryset).filter(is_active=True):
            try:
                start_sign_in(user.email)
                sent += 1
            except SignInError as error:
                self.message_user(request, f"{user.email}: {error.message}", messages.WARNING)
        self.message_user(request, f"Sent {sent} sign-in email(s).", messages.SUCCESS)

    @admin.action(
        description="Sign out everywhere (every device and API token)", permissions=["change"]
    )
    def sign_out_everywhere(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = self.manageable(request, queryset)
        ended = sum(end_all_sessions(user, reason="admin") for user in users)
        self.message_user(request, f"Ended {ended} session(s).", messages.SUCCESS)

    @admin.action(description="Deactivate (and sign out everywhere)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(self.manageable(request, queryset).filter(is_active=True))
        for user in users:
            user.is_active = False
            user.save(update_fields=["is_active"])  # the app's receiver ends every session
        self.message_user(request, f"Deactivated {len(users)} user(s).", messages.SUCCESS)

    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
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


def _is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin):
    """A group's permissions are rights: a member who could edit them could grant themselves
    anything, so only a superuser may add, change or delete groups; others may look."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        return _is_superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        return _is_superuser(request)
