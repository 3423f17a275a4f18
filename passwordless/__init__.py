"""Passwordless sign-in for Django: one email carrying a short code and a magic link."""

__version__ = "0.1.0"
