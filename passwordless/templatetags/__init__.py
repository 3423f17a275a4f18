"""Template tags of the app: ``{% load passkeys %}``."""
