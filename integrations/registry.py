"""Provider kind -> descriptor (client class, OAuth flow, scopes, limits), imported lazily.

A provider is one package under ``integrations`` and one ``ProviderSpec`` here; importing the
registry does not import msal or google-auth, so a deployment that uses one provider never
loads the other's libraries. ``calendars`` asks the descriptor instead of branching on the
kind. ``public_hosts()`` is what every provider reaches on the public internet (the default
of the ``PROVIDER_ENDPOINT_ALLOWLIST`` setting).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import Any

from .base import CalendarClient
from .limiter import Limits


@dataclass(frozen=True)
class ProviderSpec:
    """What ``calendars`` needs to know about one provider kind, without importing it.

    ``reservation_source`` is the value of ``reservations.models.Source`` a booking pulled
    from this provider carries (``integrations`` does not import the ORM, so a plain value).
    ``room_calendar_is_mailbox`` says a room's own calendar is named by its address (Google's
    resource calendars), rather than by the empty id, a mailbox's default calendar (Graph).
    ``own_calendar_id`` is what names a person's own calendar.
    """

    kind: str
    client: str  # dotted path of the client class
    oauth: str  # dotted path of the module with the OAuth flow helpers
    auth: str  # dotted path of the module that mints tokens (``user_token``)
    public_hosts: str  # dotted path of the set of public hosts
    scopes: tuple[str, ...]  # delegated (personal) sign-in scopes
    idle_limit: timedelta  # a personal token unused this long is dead at the provider
    idle_warning: timedelta  # ... and this long is worth warning the person about
    reservation_source: str
    webhook_kind: str  # the PushSubscription.kind its notifications arrive as; "" = none (polled)
    room_calendar_is_mailbox: bool
    own_calendar_id: str
    acts_as_delegate: bool  # the app's credentials act as the delegated user (Google DWD)
    batch_size: int  # most operations in one batch request
    limits: Limits  # published per-mailbox request limits
    # People sign in with the provider and connect their own calendar (personal mode, the
    # portal's sign-in, Authorize on a space's setup page); Exchange Server's rooms are bound
    # with the sync user's credentials only.
    people_sign_in: bool = True
    # Change notifications come over streams a long-running process keeps open from Reserva's
    # side (Exchange Server: ``manage.py ews_listen``), rather than as webhooks.
    streams: bool = False
    # Personal mode without a personal token: the application's credentials act in the
    # person's own mailbox, named by their e-mail address (Exchange's ApplicationImpersonation:
    # the meeting is the person's, the room invited as a resource). Needs credentials that
    # may act as any user (not a delegate's Full Access to chosen mailboxes).
    personal_by_impersonation: bool = False

    def client_class(self) -> type[CalendarClient]:
        return _load(self.client)

    def oauth_module(self) -> Any:
        return import_module(self.oauth)

    def auth_module(self) -> Any:
        return import_module(self.auth)

    def default_calendar_id(self, mailbox: str) -> str:
        """The id naming a mailbox's own calendar when none is bound: Graph's empty id (the
        default calendar), Google's resource calendar, whose id is its address."""
        return mailbox if self.room_calendar_is_mailbox else ""


# Published per-mailbox limits: Exchange Online allows 4 concurrent requests and 10,000 per
# 10 minutes per app and mailbox; Google's default Calendar quota is per user per minute.
# Idle limits: Microsoft ends a refresh token unused for 90 days, Google one unused for six
# months. Batches: Graph's $batch takes 20 requests, Google's is kept at 50.
PROVIDERS: dict[str, ProviderSpec] = {
    "microsoft": ProviderSpec(
        kind="microsoft",
        client="integrations.microsoft.client.MicrosoftClient",
        oauth="integrations.microsoft.oauth",
        auth="integrations.microsoft.auth",
        public_hosts="integrations.microsoft.clouds.PUBLIC_HOSTS",
        scopes=("Calendars.ReadWrite",),
        idle_limit=timedelta(days=90),
        idle_warning=timedelta(days=80),
        reservation_source="exchange",
        webhook_kind="microsoft",
        room_calendar_is_mailbox=False,
        own_calendar_id="",
        acts_as_delegate=False,
        batch_size=20,
        limits=Limits(max_in_flight=4, max_per_window=10_000, window_seconds=600),
    ),
    "google": ProviderSpec(
        kind="google",
        client="integrations.google.client.GoogleClient",
        oauth="integrations.google.oauth",
        auth="integrations.google.auth",
        public_hosts="integrations.google.hosts.PUBLIC_HOSTS",
        scopes=("https://www.googleapis.com/auth/calendar",),
        idle_limit=timedelta(days=182),
        idle_warning=timedelta(days=150),
        reservation_source="google",
        webhook_kind="google",
        room_calendar_is_mailbox=True,
        own_calendar_id="primary",
        acts_as_delegate=True,
        batch_size=50,
        limits=Limits(max_in_flight=8, max_per_window=600, window_seconds=60),
    ),
    # Exchange Server on-premises: no per-person sign-in (the oauth/auth modules say so), no
    # public hosts (each server is allowed by name). Exchange's default throttling policy
    # allows 27 concurrent EWS connections per user (EwsMaxConcurrency) and charges an
    # impersonating service account's calls to the mailbox: 4 in flight per mailbox keeps a
    # handful of busy rooms inside that. Batches: multi-item requests of 50 items.
    "ews": ProviderSpec(
        kind="ews",
        client="integrations.ews.client.EwsClient",
        oauth="integrations.ews.oauth",
        auth="integrations.ews.auth",
        public_hosts="integrations.ews.hosts.PUBLIC_HOSTS",
        scopes=(),
        idle_limit=timedelta(days=36500),
        idle_warning=timedelta(days=36000),
        # Outlook on Exchange Server is Exchange too: a booking pulled from it says so.
        reservation_source="exchange",
        # No webhooks: change notifications are streaming subscriptions (streams=True), which
        # manage.py ews_listen keeps open; polling remains the fallback.
        webhook_kind="",
        room_calendar_is_mailbox=False,
        own_calendar_id="",
        acts_as_delegate=False,
        batch_size=50,
        limits=Limits(max_in_flight=4, max_per_window=600, window_seconds=60),
        people_sign_in=False,
        streams=True,
        personal_by_impersonation=True,
    ),
}


def spec(kind: str) -> ProviderSpec:
    """The descriptor for ``kind``; KeyError for a kind no package provides."""
    return PROVIDERS[kind]


def _load(path: str) -> Any:
    module_name, _, name = path.rpartition(".")
    return getattr(import_module(module_name), name)


def client_class(kind: str) -> type[CalendarClient]:
    """The client class for ``kind`` ("microsoft", "google" or "ews"); KeyError for others."""
    return spec(kind).client_class()


def sign_in_kinds() -> list[str]:
    """The kinds whose people sign in and connect their own calendars."""
    return [kind for kind, provider in PROVIDERS.items() if provider.people_sign_in]


def public_hosts() -> list[str]:
    """Every provider's public hosts, sorted (no provider library is imported)."""
    hosts: set[str] = set()
    for provider in PROVIDERS.values():
        hosts |= _load(provider.public_hosts)
    return sorted(hosts)
