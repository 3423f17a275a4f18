from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    """Who is signed in, with a sign-out button; or the way to sign in."""
    return render(request, "home.html")
