"""The project's URLs and, under ``/bench/floor/``, the floor views."""

from django.urls import path

from bench import views
from config.urls import handler500
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("bench/floor/json", views.bare_json),
    path("bench/floor/session", views.session_read_write),
    path("bench/floor/login", views.log_in),
    path("bench/floor/private", views.private),
    path("bench/floor/user", views.load_user),
    *project_urlpatterns,
]

__all__ = ["handler500", "urlpatterns"]
