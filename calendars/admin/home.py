"""The admin home: what needs attention first, then the admin's pages grouped by use.

Each count is the number of rows the linked, filtered list shows (the same filter, the same
query), so a facilities team can go from "3 conflicts" to those three bookings in one click.
Read by ``templates/admin/index.html`` through the ``admin_home`` template tags. It lives in
``calendars`` because it counts sync facts; ``reservations`` never imports ``calendars``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from reservations import queries
from reservations.displays import offline_q
from reservations.models import (
    SLOT_HOLDING_STATUSES,
    Display,
    Location,
    Reservation,
    ReservationStatus,
)

from ..models import (
    BindingStatus,
    JobKind,
    JobStatus,
    LinkState,
    SpaceCalendar,
    SyncJob,
    SyncLink,
    UserToken,
    WebhookStatus,
)
from ..tokens import NEEDS_ATTENTION

# A job that has not finished yet (the "Exports running or queued" count and its filter).
IN_PROGRESS = (JobStatus.QUEUED, JobStatus.RUNNING)

# Sections in the order the people running the site use them, not alphabetically; a model
# listed nowhere lands in "Other" at the end, so a new admin page is never hidden.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Reservations",
        (
            "reservations.reservation",
            "reservations.series",
            "reservations.closure",
            "reservations.approvalrule",
            "reservations.bookinglimit",
            "reservations.spacedayusage",
        ),
    ),
    (
        "Spaces and locations",
        (
            "reservations.location",
            "reservations.space",
            "reservations.amenity",
            "reservations.floormap",
            "reservations.display",
        ),
    ),
    (
        "Calendar sync",
        (
            "calendars.spacecalendar",
            "calendars.calendarprovider",
            "calendars.syncsettings",
            "calendars.syncjob",
            "calendars.synclink",
            "calendars.connectionalias",
            "calendars.credentialalias",
        ),
    ),
    (
        "People and access",
        (
            "auth.user",
            "auth.group",
            "calendars.usertoken",
            "reservations.userdeactivation",
            "account.emailaddress",
            "socialaccount.socialaccount",
            "socialaccount.socialapp",
            "socialaccount.socialtoken",
        ),
    ),
    (
        "API",
        (
            "reservations.integrationaccount",
            "oauth2_provider.application",
            "oauth2_provider.accesstoken",
            "oauth2_provider.refreshtoken",
            "oauth2_provider.grant",
            "oauth2_provider.idtoken",
            "reservations.feedtoken",
        ),
    ),
)


@dataclass(frozen=True)
class Item:
    """One number on the home page and the filtered list that shows exactly those rows."""

    label: str
    count: int
    url: str
    section: str
    urgent: bool = True  # a problem when not zero (today's bookings are not)


@dataclass
class Section:
    name: str
    models: list[dict] = field(default_factory=list)


def sections(app_list: Iterable[dict]) -> list[Section]:
    """Regroup the admin's ``app_list`` (per app, alphabetical) into ``SECTIONS``."""
    by_key = {
        f"{app['app_label']}.{model['object_name'].lower()}": model
        for app in app_list
        for model in app["models"]
    }
    grouped = []
    for name, keys in SECTIONS:
        models = [by_key.pop(key) for key in keys if key in by_key]
        if models:
            grouped.append(Section(name, models))
    if by_key:
        grouped.append(Section("Other", sorted(by_key.values(), key=lambda m: str(m["name"]))))
    return grouped


def _changelist(model, **params: str) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _may_view(user: AbstractBaseUser | AnonymousUser, model) -> bool:
    opts = model._meta
    return any(
        user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")
        for action in ("view", "change")
    )


def attention(user: AbstractBaseUser | AnonymousUser, now: datetime | None = None) -> list[Item]:
    """The counts someone running the site should look at, each with its filtered list.

    Only what ``user`` may see; zero counts are kept (a zero is news too)."""
    now = now or timezone.now()
    items: list[Item] = []
    if _may_view(user, Reservation):
        items += [_conflicts(), *_todays_bookings(now)]
    if _may_view(user, Display):
        items.append(_displays_offline(now))
    if _may_view(user, SpaceCalendar):
        items += [_bindings_in_trouble(), _webhook_renewals_failing()]
    if _may_view(user, SyncLink):
        items.append(_failed_pushes())
    if _may_view(user, SyncJob):
        items.append(_exports_in_progress())
    if _may_view(user, UserToken):
        items.append(_tokens_in_trouble())
    return items


def _conflicts() -> Item:
    return Item(
        "Conflicts (remote events colliding with a booking)",
        Reservation.objects.filter(status=ReservationStatus.CONFLICTED).count(),
        _changelist(Reservation, conflicts="yes"),
        "Reservations",
    )


def _todays_bookings(now: datetime) -> list[Item]:
    """One count per location, of the bookings holding a slot on its local day."""
    locations = list(Location.objects.order_by("name"))
    today = (
        Reservation.objects.filter(queries.on_local_day(locations, now))
        .filter(status__in=SLOT_HOLDING_STATUSES)
        .values("space__location_id")
        .annotate(n=Count("pk"))
    )
    per_location = {row["space__location_id"]: row["n"] for row in today}
    return [
        Item(
            f"Today's bookings in {location.name}",
            per_location.get(location.pk, 0),
            _changelist(Reservation, day="today", space__location__id__exact=str(location.pk)),
            "Reservations",
            urgent=False,
        )
        for location in locations
    ]


def _displays_offline(now: datetime) -> Item:
    return Item(
        "Room displays offline",
        Display.objects.filter(offline_q(now)).count(),
        _changelist(Display, state="offline"),
        "Spaces and locations",
    )


def _bindings_in_trouble() -> Item:
    return Item(
        "Space calendars paused or failing",
        SpaceCalendar.objects.filter(
            status__in=(BindingStatus.PAUSED, BindingStatus.ERROR)
        ).count(),
        _changelist(SpaceCalendar, attention="yes"),
        "Calendar sync",
    )


def _webhook_renewals_failing() -> Item:
    return Item(
        "Webhook renewals failing",
        SpaceCalendar.objects.filter(webhook_subscriptions__status=WebhookStatus.FAILING)
        .distinct()
        .count(),
        _changelist(SpaceCalendar, webhook="failing"),
        "Calendar sync",
    )


def _failed_pushes() -> Item:
    return Item(
        "Failed pushes",
        SyncLink.objects.filter(state=LinkState.FAILED).count(),
        _changelist(SyncLink, state__exact=LinkState.FAILED),
        "Calendar sync",
    )


def _exports_in_progress() -> Item:
    return Item(
        "Exports running or queued",
        SyncJob.objects.filter(kind=JobKind.EXPORT, status__in=IN_PROGRESS).count(),
        _changelist(SyncJob, kind__exact=JobKind.EXPORT, progress="running"),
        "Calendar sync",
    )


def _tokens_in_trouble() -> Item:
    return Item(
        "Calendar tokens expiring, expired or revoked",
        UserToken.objects.filter(status__in=NEEDS_ATTENTION).count(),
        _changelist(UserToken, attention="yes"),
        "People and access",
    )
