from django.contrib import admin
from django.urls import include, path

from passwordless.api.views import jwks_view
from passwordless.web.admin_login import admin_login_view

from . import health, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("auth/", include("passwordless.urls")),
    path("api/auth/", include("passwordless.api.urls")),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    # The admin signs in through the email flow too; before the admin's own URLs.
    path("admin/login/", admin_login_view, name="admin-login"),
    path("admin/", admin.site.urls),
    # 404 unless DEBUG is on and the request comes from this machine (see config.devinbox).
    path("dev/inbox/", include("config.devinbox")),
]

# A database or Redis that fails outside a view still gets the calm 503 page.
handler500 = "passwordless.middleware.server_error"
