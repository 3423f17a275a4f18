from django.urls import path

from .web import link_views, session_views, views

app_name = "passwordless"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("code/", views.CodeView.as_view(), name="code"),
    path("code/resend/", views.resend_view, name="resend"),
    path("code/status/", views.WaitStatusView.as_view(), name="wait-status"),
    path("link/", link_views.LinkConfirmView.as_view(), name="link-confirm"),
    path("link/<str:token>/", link_views.LinkView.as_view(), name="link"),
    path("logout/", views.logout_view, name="logout"),
    path("sessions/", session_views.SessionsView.as_view(), name="sessions"),
]
