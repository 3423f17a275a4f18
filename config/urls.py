from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("auth/", include("passwordless.urls")),
    path("admin/", admin.site.urls),
    # Answers 404 unless DEBUG is on.
    path("dev/inbox/", include("config.devinbox")),
]
