"""What a project puts on its own views: the step-up gate ("sudo mode").

``@reauthentication_required`` for function views, ``ReauthenticationRequiredMixin`` for
class-based ones (see ``docs/reauthentication.md``)."""

from .web.reauthentication import ReauthenticationRequiredMixin, reauthentication_required

__all__ = ["ReauthenticationRequiredMixin", "reauthentication_required"]
