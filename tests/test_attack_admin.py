"""The admin's rights follow Django's permissions: staff with too few attack over HTTP.

Staff are signed in with ``force_login`` and their session cookie handed to a scripted
browser: the admin's own sign-in is tested elsewhere (``test_admin_login``), and what is
attacked here is what a signed-in staff member can do. Forms are posted as an attacker
would craft them, with every field Django's user form knows, not only those shown.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.test import Client

from accounts.models import User
from passwordless.models import UserSession
from tests.attacker import Browser

pytestmark = pytest.mark.django_db(transaction=True)

Fields = list[tuple[str, str]]
USERS = "/admin/accounts/user/"
SESSIONS = "/admin/passwordless/usersession/"


class _FormFields(HTMLParser):
    """The fields a browser would submit from a page's forms (checked boxes, chosen options)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: Fields = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type") or "text"
            if kind in ("submit", "button", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value") or "on"))  # as browsers send
                return
            self.fields.append((name, a.get("value") or ""))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.fields.append((self._select, a.get("value") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def form_fields(page: str) -> Fields:
    parser = _FormFields()
    parser.feed(page)
    return [(k, v) for k, v in parser.fields if k not in ("csrfmiddlewaretoken", "q")]


def staff(email: str, *perms: str, superuser: bool = False) -> User:
    """A staff member holding ``perms`` ("accounts.view_user"...), or a superuser."""
    if superuser:
        return User.objects.create_superuser(email)
    user = User.objects.create_user(email, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def admin_browser(site: str, user: User) -> Browser:
    """A browser holding a session of ``user``, as if they had signed in."""
    client = Client()
    client.force_login(user)
    browser = Browser(site)
    name = settings.SESSION_COOKIE_NAME
    browser.session.cookies.set(name, client.cookies[name].value)
    return browser


def post_form(browser: Browser, path: str, fields: Fields) -> requests.Response:
    """POST ``fields`` (repeated names allowed) with the CSRF token and Origin a browser sends."""
    token = browser.csrf_token(path)
    return browser.session.post(
        browser.url(path),
        data=[*fields, ("csrfmiddlewaretoken", token)],
        headers={"Origin": browser.base_url},
        allow_redirects=False,
        timeout=20,
    )


def run_action(browser: Browser, path: str, action: str, *pks: int) -> requests.Response:
    fields = [("action", action), ("index", "0"), *(("_selected_action", str(pk)) for pk in pks)]
    return post_form(browser, path, fields)


def change(fields: Fields, **values: str | list[str]) -> Fields:
    """``fields`` with each named field replaced (a list for a multiple choice)."""
    kept = [(k, v) for k, v in fields if k not in values]
    for name, value in values.items():
        kept += [(name, v) for v in ([value] if isinstance(value, str) else value)]
    return kept


def _perm_id(codename: str) -> str:
    return str(Permission.objects.get(codename=codename).pk)


def test_view_only_staff_get_no_action_and_cannot_post_one(site: str) -> None:
    root = staff("root@example.org", superuser=True)
    bob = User.objects.create_user("bob@example.org")
    viewer = admin_browser(site, staff("viewer@example.org", "accounts.view_user"))
    admin_browser(site, root).get("/admin/")  # root is signed in somewhere
    page = viewer.get(USERS)
    assert page.status_code == 200 and 'name="action"' not in page.text

    for action in ("deactivate", "sign_out_everywhere", "email_sign_in_link"):
        run_action(viewer, USERS, action, root.pk, bob.pk)

    assert User.objects.filter(is_active=True, pk__in=[root.pk, bob.pk]).count() == 2
    assert UserSession.objects.filter(user=root, ended_at=None).count() == 1
    assert mail.outbox == []


def test_a_user_changer_cannot_take_a_superuser_over_by_its_address(site: str) -> None:
    root = staff("root@example.org", superuser=True)
    mallory = admin_browser(
        site, staff("mallory@example.org", "accounts.view_user", "accounts.change_user")
    )
    page = f"{USERS}{root.pk}/change/"
    shown = mallory.get(page)
    assert shown.status_code == 200 and 'name="email"' not in shown.text  # read-only
    # The form as a superuser sees it, with the address swapped for one mallory reads.
    crafted = change(form_fields(admin_browser(site, root).get(page).text), email="m@evil.test")
    crafted.append(("_save", "Save"))
    assert post_form(mallory, page, crafted).status_code == 403
    password = [("password1", "pw-Mallory-1234"), ("password2", "pw-Mallory-1234")]
    assert post_form(mallory, f"{USERS}{root.pk}/password/", password).status_code == 403
    root.refresh_from_db()
    assert root.email == "root@example.org" and not root.has_usable_password()


def test_a_user_changer_cannot_grant_rights_by_a_crafted_post(site: str) -> None:
    root = staff("root@example.org", superuser=True)
    bob = User.objects.create_user("bob@example.org")
    me = staff("mallory@example.org", "accounts.view_user", "accounts.change_user")
    mallory = admin_browser(site, me)
    admins = Group.objects.create(name="admins")
    page = f"{USERS}{bob.pk}/change/"
    editable = mallory.get(page).text
    assert 'name="email"' in editable and 'name="is_active"' in editable
    assert 'name="is_superuser"' not in editable and 'name="user_permissions"' not in editable

    crafted = change(
        form_fields(admin_browser(site, root).get(page).text),
        email="bob.new@example.org",
        is_staff="on",
        is_superuser="on",
        groups=[str(admins.pk)],
        user_permissions=[_perm_id("change_user")],
    )
    crafted.append(("_save", "Save"))
    assert post_form(mallory, page, crafted).status_code == 302  # an ordinary user: allowed
    bob.refresh_from_db()
    assert bob.email == "bob.new@example.org" and bob.is_active  # what she may change
    assert (bob.is_staff, bob.is_superuser) == (False, False)
    assert not bob.groups.exists() and not bob.user_permissions.exists()

    # Nor on her own account: she is staff, and only a superuser changes staff.
    own = f"{USERS}{me.pk}/change/"
    crafted = change(form_fields(admin_browser(site, root).get(own).text), is_superuser="on")
    crafted.append(("_save", "Save"))
    assert post_form(mallory, own, crafted).status_code == 403
    me.refresh_from_db()
    assert not me.is_superuser


def test_a_user_changers_actions_skip_staff_accounts(site: str) -> None:
    root = staff("root@example.org", superuser=True)
    colleague = staff("colleague@example.org")
    bob = User.objects.create_user("bob@example.org")
    mallory = admin_browser(
        site, staff("mallory@example.org", "accounts.view_user", "accounts.change_user")
    )
    admin_browser(site, root).get("/admin/")
    assert 'value="deactivate"' in mallory.get(USERS).text  # she has the actions

    run_action(mallory, USERS, "email_sign_in_link", root.pk, colleague.pk)
    run_action(mallory, USERS, "sign_out_everywhere", root.pk)
    response = run_action(mallory, USERS, "deactivate", root.pk, colleague.pk, bob.pk)
    shown = mallory.get(response.headers["Location"]).text
    assert "Skipped 2 staff account(s): only a superuser may act on them." in shown

    assert not User.objects.get(pk=bob.pk).is_active  # an ordinary account: allowed
    assert User.objects.filter(pk__in=[root.pk, colleague.pk], is_active=True).count() == 2
    assert UserSession.objects.filter(user=root, ended_at=None).count() == 1
    assert mail.outbox == []


def test_a_user_deleter_cannot_delete_a_superuser(site: str) -> None:
    root = staff("root@example.org", superuser=True)
    mallory = admin_browser(
        site, staff("mallory@example.org", "accounts.view_user", "accounts.delete_user")
    )
    confirm = run_action(mallory, USERS, "delete_selected", root.pk)
    assert "Cannot delete user" in confirm.text or confirm.status_code == 403
    post_form(
        mallory,
        USERS,
        [("action", "delete_selected"), ("_selected_action", str(root.pk)), ("post", "yes")],
    )
    deleted = post_form(mallory, f"{USERS}{root.pk}/delete/", [("post", "yes")])
    assert deleted.status_code == 403
    assert User.objects.filter(pk=root.pk).exists()


def test_ending_sessions_needs_the_permission_and_spares_staff(site: str) -> None:
    root = staff("root@example.org", superuser=True)
    admin_browser(site, root).get("/admin/")
    alice = User.objects.create_user("alice@example.org")
    admin_browser(site, alice).get("/")
    rows = {row.user_id: row.pk for row in UserSession.objects.all()}
    viewer = admin_browser(site, staff("viewer@example.org", "passwordless.view_usersession"))
    assert 'name="action"' not in viewer.get(SESSIONS).text
    run_action(viewer, SESSIONS, "end_sessions", rows[alice.pk], rows[root.pk])
    assert UserSession.objects.filter(ended_at=None, pk__in=rows.values()).count() == 2

    operator = admin_browser(
        site,
        staff(
            "operator@example.org",
            "passwordless.view_usersession",
            "passwordless.change_usersession",
        ),
    )
    response = run_action(operator, SESSIONS, "end_sessions", rows[alice.pk], rows[root.pk])
    assert "Skipped 1 session(s) of staff" in operator.get(response.headers["Location"]).text
    assert UserSession.objects.get(pk=rows[alice.pk]).ended_at is not None
    assert UserSession.objects.get(pk=rows[root.pk]).ended_at is None


def test_a_superuser_edits_user_permissions(site: str) -> None:
    root = admin_browser(site, staff("root@example.org", superuser=True))
    bob = User.objects.create_user("bob@example.org", is_staff=True)
    page = f"{USERS}{bob.pk}/change/"
    fields = form_fields(root.get(page).text)
    assert 'name="user_permissions"' in root.get(page).text
    granted = change(fields, user_permissions=[_perm_id("view_user")])
    assert post_form(root, page, [*granted, ("_save", "Save")]).status_code == 302
    assert User.objects.get(pk=bob.pk).has_perm("accounts.view_user")


def test_a_group_changer_cannot_grant_themselves_rights_through_a_group(site: str) -> None:
    """Found by review: Django's Group admin let a member with change_group post every
    permission to their own group."""
    mod = staff("mod@example.org", "auth.change_group", "auth.view_group", "auth.add_group")
    crew = Group.objects.create(name="crew")
    mod.groups.add(crew)
    browser = admin_browser(site, mod)
    page = f"/admin/auth/group/{crew.pk}/change/"
    every = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]
    answer = post_form(browser, page, [("name", "crew"), *(("permissions", p) for p in every)])
    assert answer.status_code == 403
    created = post_form(
        browser, "/admin/auth/group/add/", [("name", "all"), ("permissions", every[0])]
    )
    assert created.status_code == 403
    assert crew.permissions.count() == 0 and not Group.objects.filter(name="all").exists()
    fresh = User.objects.get(pk=mod.pk)
    assert not fresh.has_perm("accounts.delete_user")
    assert browser.get("/admin/auth/group/").status_code == 200  # looking is still allowed
