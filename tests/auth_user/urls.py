from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"user={request.user.get_username() or '-'}")


urlpatterns = [
    path("", home),
    path("auth/", include("passwordless.urls")),
]
