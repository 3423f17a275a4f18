"""A project that serves the app's pages but not its JSON API (``tests/test_mount_points.py``)."""

from django.urls import include, path

urlpatterns = [path("auth/", include("passwordless.urls"))]
