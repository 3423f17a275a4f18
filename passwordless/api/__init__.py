"""The sign-in flow as JSON, for single-page apps, mobile apps and other services."""
