"""Google's public hosts for calendar sync and its OAuth flows.

Kept apart from ``auth`` (which loads google-auth) so that settings can name these hosts
without importing a provider library.
"""

from __future__ import annotations

PUBLIC_HOSTS = frozenset(
    {
        "oauth2.googleapis.com",  # token endpoint (service account and authorization code)
        "accounts.google.com",  # where people sign in and grant access
        "www.googleapis.com",  # Calendar API and its batch endpoint
    }
)
