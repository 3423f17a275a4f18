"""The floors: the least a view can do on this stack for each kind of endpoint.

Each goes through the same middleware as the project's own views.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

BENCH_USER_EMAIL = "floor@bench.test"


def bare_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def session_read_write(request: HttpRequest) -> JsonResponse:
    request.session["hits"] = request.session.get("hits", 0) + 1
    return JsonResponse({"hits": request.session["hits"]})


@csrf_exempt
def log_in(request: HttpRequest) -> JsonResponse:
    user = get_user_model()._default_manager.get(email=BENCH_USER_EMAIL)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"user": user.pk})


@login_required
def private(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.user.pk})


def load_user(request: HttpRequest) -> JsonResponse:
    user = get_user_model()._default_manager.get(email=BENCH_USER_EMAIL)
    return JsonResponse({"id": user.pk, "email": user.email})
