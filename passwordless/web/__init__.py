"""The HTML surface: the sign-in pages, the emailed link, the devices page and the admin's
sign-in. Each view parses, calls one service and renders; ``passwordless.urls`` routes them."""
