"""factory_boy factories; ``issue_secret`` gives a secret's raw values beside its hashes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import factory
from django.http import HttpRequest
from django.test import RequestFactory
from factory.declarations import LazyFunction, Sequence

from accounts.models import User
from passwordless import clock
from passwordless.crypto import hash_binding, hash_code, hash_token, mint_code, mint_token
from passwordless.models import LoginRequest, LoginSecret
from passwordless.services.sessions import binding_cookie_name


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = Sequence(lambda n: f"person{n}@example.org")
    password = factory.django.Password(None)


class LoginRequestFactory(factory.django.DjangoModelFactory[LoginRequest]):
    class Meta:
        model = LoginRequest

    email = Sequence(lambda n: f"requester{n}@example.org")
    expires_at = LazyFunction(lambda: clock.now() + timedelta(minutes=10))
    requester_ip = "127.0.0.1"
    user_agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


@dataclass
class IssuedSecret:
    code: str
    token: str
    secret: LoginSecret


def issue_secret(login_request: LoginRequest, *, code: str | None = None) -> IssuedSecret:
    """Mint a code and link for a request as the worker would, keeping the raw values."""
    code = code or mint_code()
    token = mint_token()
    secret = LoginSecret.objects.create(
        request=login_request,
        code_hash=hash_code(login_request.public_id, code),
        token_hash=hash_token(token),
        created_at=clock.now(),
        settled_at=clock.now(),  # its email went out
    )
    login_request.delivery = LoginRequest.Delivery.SENT
    login_request.sends += 1
    login_request.expires_at = secret.created_at + timedelta(minutes=10)
    login_request.save()
    return IssuedSecret(code=code, token=token, secret=secret)


def bound_request(login_request: LoginRequest) -> HttpRequest:
    """A request from the browser that started ``login_request`` (it holds the binding cookie)."""
    binding = "test-binding-secret"
    login_request.binding_hash = hash_binding(binding)
    login_request.save(update_fields=["binding_hash"])
    request = RequestFactory().post("/")
    request.COOKIES[binding_cookie_name()] = f"{login_request.public_id}.{binding}"
    return request
