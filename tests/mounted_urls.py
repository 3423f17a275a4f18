"""A project that mounts the app elsewhere than ours: the pages at ``/signin/``, the API
at ``/v2/auth/`` (``tests/test_mount_points.py``)."""

from django.contrib import admin
from django.urls import include, path

from passwordless.api.views import jwks_view

urlpatterns = [
    path("signin/", include("passwordless.urls")),
    path("v2/auth/", include("passwordless.api.urls")),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("admin/", admin.site.urls),
]
