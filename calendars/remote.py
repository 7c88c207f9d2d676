"""From Django rows to the provider clients: clients built from the aliases, where a
reservation's event lives (``locate``, the one place that answers it), and what the event
says.

The sync engine (``calendars/sync/``) asks this module for a :class:`RemoteCalendar` and
never deals with a provider's differences: a calendar is a ``CalendarRef`` (mailbox and
calendar id), and every client (``integrations.base.CalendarClient``) takes from it what its
API needs (Microsoft the mailbox and the calendar id; Google the calendar id, acting as a
subject, the impersonated user).

Where the event lives follows the reservation's sync mailbox (DESIGN.md):

- ``room``: the room mailbox / resource calendar, with application credentials;
- ``user``: the requested-for user's own calendar, with their token, the room invited as a
  resource (personal mode); on Exchange Server, with the application's impersonation of
  their mailbox instead of a token (``ProviderSpec.personal_by_impersonation``);
- ``other``: the provider's delegated user's calendar, with application credentials, inviting
  the requested-for user, the settings' blocker user, and the room as a resource.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.urls import reverse

from integrations.base import (
    BatchOp,
    BatchResult,
    CalendarClient,
    CalendarInfo,
    CalendarRef,
    ChangePage,
    EndpointRefused,
    EventData,
    ProviderConfig,
    RemoteEvent,
    UserCredentials,
)
from integrations.http import HttpClient
from integrations.limiter import FileLimiter, Limiter, RedisLimiter
from integrations.registry import client_class, spec
from reservations.models import Approval, EventTitle, Reservation, SyncMailbox

from . import endpoints as endpoints_policy
from .models import (
    CalendarProvider,
    ConnectionAlias,
    SpaceCalendar,
    SyncLink,
    SyncSettings,
    UserToken,
)


class NotConnected(Exception):
    """The person has no usable token for this provider (personal mode)."""


@cache
def _limiter_backend(kind: str):
    limits = spec(kind).limits  # the provider's published per-mailbox limits
    if settings.REDIS_URL:
        import redis

        return RedisLimiter(
            redis.Redis.from_url(settings.REDIS_URL), limits, prefix=f"reserva:limit:{kind}"
        )
    return FileLimiter(settings.VAR_DIR / "limits" / kind, limits)


def limiter(kind: str) -> Limiter:
    backend = _limiter_backend(kind)
    return Limiter(backend, backend.limits)


def checked_endpoints(provider: CalendarProvider) -> dict[str, str]:
    """The connection alias's endpoints, each one allowed by ``PROVIDER_ENDPOINT_ALLOWLIST``.

    Raises ``EndpointRefused`` (permanent: the binding pauses, an administrator is told)
    before a client holding the credential exists: the admin form checks the same, but a row
    written some other way, or an allowlist narrowed since, must never get a secret sent to an
    address nobody allowed. A credential of another kind than its connection is refused too.
    """
    connection = provider.connection
    kinds = {provider.kind, connection.kind, provider.credential.kind}
    if len(kinds) > 1:
        raise EndpointRefused(
            f"The provider {provider.name}, its connection alias and its credential alias are "
            "not all of one kind; pick a credential alias of the connection's kind.",
            code="kind_mismatch",
        )
    endpoints = {
        # Not contacted (so not checked) when the credential gets no token from it.
        "authority_url": (
            connection.endpoint("authority_url") if provider.credential.uses_authority else ""
        ),
        "authorization_url": connection.endpoint("authorization_url"),
        "api_base_url": connection.endpoint("api_base_url"),
        "batch_url": connection.batch_url.rstrip("/"),
    }
    for name, url in endpoints.items():
        if url and (reason := endpoints_policy.refusal(url)):
            raise EndpointRefused(
                f"Nothing was sent: the {ConnectionAlias._meta.get_field(name).verbose_name} "
                f"of connection alias {connection.name} is refused. {reason}",
                code="endpoint_not_allowed",
            )
    return endpoints


def provider_config(provider: CalendarProvider, *, subject: str = "") -> ProviderConfig:
    connection, credential = provider.connection, provider.credential
    endpoints = checked_endpoints(provider)
    return ProviderConfig(
        kind=provider.kind,
        authority_url=endpoints["authority_url"],
        authorization_url=endpoints["authorization_url"],
        api_base_url=endpoints["api_base_url"],
        batch_url=endpoints["batch_url"],
        tenant_id=credential.tenant_id,
        client_id=credential.client_id,
        client_secret=credential.client_secret,
        service_account_key=credential.service_account_key,
        scopes=tuple(credential.scopes.split()),
        delegated_user=subject or provider.delegated_user_email,
        ca_bundle=connection.ca_bundle or None,
        timeout=float(connection.timeout_seconds),
        auth_method=credential.auth_method,
        username=credential.username,
        password=credential.password,
        resource_url=credential.resource_url,
        account_email=credential.account_email,
        impersonation=credential.access_type != "delegate",
        server_version=connection.server_version,
        folder=connection.calendar_folder,
    )


_clients: dict[tuple, CalendarClient] = {}
_clients_lock = threading.Lock()


def client_for(provider: CalendarProvider, *, subject: str = "") -> CalendarClient:
    """A client for the provider (cached per process while its configuration is unchanged)."""
    config = provider_config(provider, subject=subject)
    key = (
        provider.pk,
        hash(repr(config)),
        hash(config.client_secret),
        hash(config.password),
        hash(repr(config.service_account_key)),
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            http = HttpClient(
                ca_bundle=config.ca_bundle, timeout=config.timeout, limiter=limiter(provider.kind)
            )
            client = _clients[key] = client_class(provider.kind)(config, http)
        return client


@dataclass
class RemoteCalendar:
    """One remote calendar, reached with the right credentials; provider-neutral methods."""

    client: CalendarClient
    ref: CalendarRef
    as_user: UserCredentials | None = None
    token_row: UserToken | None = None

    def create(self, data: EventData) -> RemoteEvent:
        return self.client.create_event(self.ref, data, as_user=self.as_user)

    def update(self, event_id: str, data: EventData, version: str = "") -> RemoteEvent:
        return self.client.update_event(
            self.ref, event_id, data, version=version, as_user=self.as_user
        )

    def delete(self, event_id: str, version: str = "") -> None:
        self.client.delete_event(self.ref, event_id, version=version, as_user=self.as_user)

    def find(self, reservation_id: int) -> RemoteEvent | None:
        return self.client.find_by_reservation(self.ref, reservation_id, as_user=self.as_user)

    def creation_key(self, reservation_id: int) -> str:
        return self.client.creation_key(reservation_id)

    def made_by_create(self, event_id: str, key: str) -> bool:
        return self.client.made_by_create(event_id, key)

    @property
    def reads_tags_by_id(self) -> bool:
        """The change feed does not carry our tag; ``read_events`` reads it by id (Graph)."""
        return self.client.reads_tags_by_id

    def tagged_events(self, start: datetime, end: datetime) -> list[RemoteEvent] | None:
        """Every event in [start, end) with our tag, in one read, where the change feed does
        not carry the tag (Graph: a calendarView that expands it); None where it does."""
        return self.client.tagged_events(self.ref, start, end, as_user=self.as_user)

    @property
    def window_moves_look_removed(self) -> bool:
        """The change feed reports an event moved out of the sync window as removed."""
        return self.client.window_moves_look_removed

    @property
    def series_as_masters(self) -> bool:
        return self.client.series_as_masters

    def read_events(self, event_ids: list[str]) -> dict[str, RemoteEvent | None]:
        return self.client.read_events(self.ref, event_ids, as_user=self.as_user)

    def batch(self, ops: list[BatchOp]) -> list[BatchResult]:
        return self.client.batch(self.ref, ops, as_user=self.as_user)

    def changes(self, token: str | None, start: datetime, end: datetime) -> ChangePage:
        return self.client.changes(self.ref, token, start, end, as_user=self.as_user)

    def list_calendars(self) -> list[CalendarInfo]:
        return self.client.list_calendars(self.ref, as_user=self.as_user)

    def save_token(self) -> None:
        """Write a refreshed personal token back (encrypted), if the client changed it."""
        if self.as_user is not None and self.as_user.changed and self.token_row is not None:
            from django.db import transaction

            with transaction.atomic():
                row = UserToken.objects.select_for_update().get(pk=self.token_row.pk)
                row.token = self.as_user.token
                row.save(update_fields=["token"])
            self.as_user.changed = False


def room_calendar(binding: SpaceCalendar) -> RemoteCalendar:
    """The room mailbox / resource calendar itself, with application credentials."""
    provider = binding.provider
    calendar_id = binding.calendar_id or spec(provider.kind).default_calendar_id(
        binding.resource_email
    )
    return RemoteCalendar(client_for(provider), CalendarRef(binding.resource_email, calendar_id))


def link_calendar(link: SyncLink) -> RemoteCalendar:
    """The calendar a sync link's event lives in, with application credentials."""
    return RemoteCalendar(client_for(link.provider), CalendarRef(link.mailbox, link.calendar_id))


def delegated_calendar(provider: CalendarProvider) -> RemoteCalendar:
    mailbox = provider.delegated_user_email
    kind = spec(provider.kind)
    client = client_for(provider, subject=mailbox if kind.acts_as_delegate else "")
    return RemoteCalendar(client, CalendarRef(mailbox, kind.own_calendar_id))


def user_calendar(provider: CalendarProvider, user) -> RemoteCalendar:
    token = UserToken.objects.filter(user=user, provider=provider).first()
    return _personal_calendar(provider, user, token)


def _personal_calendar(provider: CalendarProvider, user, token: UserToken | None) -> RemoteCalendar:
    kind = spec(provider.kind)
    if kind.personal_by_impersonation:
        # No token: the application acts in the person's own mailbox (their address).
        if not user.email:
            raise NotConnected(f"{user} has no e-mail address to find their mailbox by.")
        return RemoteCalendar(
            client_for(provider),
            CalendarRef(user.email, kind.own_calendar_id),
            as_user=UserCredentials(account_email=user.email, token={}),
        )
    if token is None or token.token is None:
        raise NotConnected(f"{user} has not connected a {provider.get_kind_display()} calendar.")
    credentials = UserCredentials(account_email=token.account_email, token=token.token)
    calendar_id = spec(provider.kind).own_calendar_id
    return RemoteCalendar(
        client_for(provider),
        CalendarRef(token.account_email, calendar_id),
        as_user=credentials,
        token_row=token,
    )


@dataclass(frozen=True)
class Location:
    """Where a reservation's event lives, and how to reach it.

    ``locate`` reads the person's token (personal mode) once; ``place`` needs no network and
    no credentials, ``calendar()`` builds the client that writes there (``NotConnected`` when
    the person has no usable token).
    """

    binding: SpaceCalendar
    sync_mailbox: str  # a SyncMailbox value; "user" only when there is a person
    mailbox: str
    calendar_id: str
    user: Any = None
    token: UserToken | None = None

    @property
    def place(self):
        from .sync.plan import Place  # the planner's value type (sync imports this module)

        return Place(self.binding.provider_id, self.mailbox, self.calendar_id)

    def calendar(self) -> RemoteCalendar:
        provider = self.binding.provider
        if self.sync_mailbox == SyncMailbox.USER:
            return _personal_calendar(provider, self.user, self.token)
        if self.sync_mailbox == SyncMailbox.OTHER:
            return delegated_calendar(provider)
        return room_calendar(self.binding)


def locate(reservation: Reservation, binding: SpaceCalendar) -> Location:
    """The one answer to "where does this reservation's event live" (DESIGN.md: the sync
    mailbox decides). A person's calendar is named by their token's account (their e-mail
    address until they connect; always their address where the application acts in their
    mailbox: ``ProviderSpec.personal_by_impersonation``)."""
    provider = binding.provider
    kind = spec(provider.kind)
    person = reservation.requested_for
    if reservation.sync_mailbox == SyncMailbox.USER and person is not None:
        token = UserToken.objects.filter(user_id=reservation.requested_for_id, provider=provider)
        row = None if kind.personal_by_impersonation else token.first()
        mailbox = row.account_email if row else person.email
        return Location(
            binding, SyncMailbox.USER, mailbox, kind.own_calendar_id, user=person, token=row
        )
    if reservation.sync_mailbox == SyncMailbox.OTHER:
        return Location(
            binding, SyncMailbox.OTHER, provider.delegated_user_email, kind.own_calendar_id
        )
    calendar_id = binding.calendar_id or kind.default_calendar_id(binding.resource_email)
    return Location(binding, SyncMailbox.ROOM, binding.resource_email, calendar_id)


def event_title(reservation: Reservation) -> str:
    """The remote event's subject, by the location's event-title option (LibCal's)."""
    person = reservation.requested_for
    name = (
        (person.get_full_name() or person.get_username())
        if person
        else (reservation.organizer_name or "Reserved")
    )
    email = person.email if person else reservation.organizer_email
    option = reservation.space.location.event_title
    if option == EventTitle.PUBLIC_NICKNAME:
        return reservation.public_nickname or "Reserved"
    if option == EventTitle.PATRON_NAME_EMAIL and email:
        return f"{name} ({email})"
    return name


# What ``event_data`` reads of a reservation and of its person, for reads of many at once
# (``Reservation.objects.only(*EVENT_FIELDS)``, the export's batches): a field it reads that
# is not listed here costs a query per reservation (tests/calendars/test_export.py counts
# them). It reads ``reservation.space`` and its location too.
EVENT_FIELDS = (
    "space_id",
    "requested_for_id",
    "start",
    "end",
    "title",
    "description",
    "public_nickname",
    "organizer_name",
    "organizer_email",
    "attendees",
    "sync_mailbox",
    "approval",
    "requested_for__username",
    "requested_for__first_name",
    "requested_for__last_name",
    "requested_for__email",
)


def event_data(reservation: Reservation, binding: SpaceCalendar) -> EventData:
    space = reservation.space
    link = settings.PUBLIC_BASE_URL + reverse("portal:detail", args=[reservation.pk])
    lines = [f"Booked in Reserva: {space.name}, {space.location.name}."]
    if reservation.title:
        lines.append(f"Title: {reservation.title}")
    if reservation.description:
        lines.append(reservation.description)
    lines.append(link)
    attendees: list[str] = []
    resources: list[str] = []
    if reservation.sync_mailbox in (SyncMailbox.USER, SyncMailbox.OTHER):
        resources.append(binding.resource_email)
    if reservation.sync_mailbox == SyncMailbox.OTHER:
        if reservation.requested_for is not None and reservation.requested_for.email:
            attendees.append(reservation.requested_for.email)
        blocker = SyncSettings.load().blocker_user
        if blocker is not None and blocker.email and blocker.email not in attendees:
            attendees.append(blocker.email)
    attendees += [a for a in reservation.attendees if a not in attendees]
    return EventData(
        reservation_id=reservation.pk,
        subject=event_title(reservation),
        start=reservation.start,
        end=reservation.end,
        body="\n".join(lines),
        location=f"{space.name}, {space.location.name}",
        time_zone=space.location.time_zone,
        attendees=tuple(attendees),
        resources=tuple(resources),
        # Awaiting approval: the room is held, tentatively (Graph showAs, Google status). A
        # personal-mode booking waiting for the room's own answer stays as it was (busy).
        tentative=reservation.approval == Approval.AWAITING,
    )
