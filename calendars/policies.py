"""The sync-mode rules, registered with ``reservations.rules`` in ``CalendarsConfig.ready()``.

From ServiceNow's personal authentication mode (../shared/seeds/000_*.txt) and DESIGN.md:

- Normal mode: the event lives in the room's calendar, written with application credentials;
  anyone the portal allows may change or cancel.
- Strict mode: people's reservations of synced spaces live in the delegated user's calendar
  (sync mailbox ``other``), and only those may be changed or cancelled.
- Personal mode: people act with their own token: the event is created in their own calendar
  with the room invited (sync mailbox ``user``). A person may create a synced reservation only
  for themselves; group reservations are refused for synced spaces; changes need the same
  person, a valid personal token, and a portal-like source when the sync mailbox is ``user``.
  On Exchange Server the application acts in their mailbox by impersonation instead of a
  token, so "a valid token" there means an e-mail address that names their mailbox.
- Blockers always go to the delegated calendar; REST-API reservations always use application
  credentials (the room's calendar). Spaces that do not sync keep every option.

Every refusal carries the reason the portal shows on greyed-out reservations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from integrations.registry import spec
from reservations.models import ReservationKind, Source, SyncMailbox
from reservations.rules import Action, Decision

from .models import SpaceCalendar, SyncMode, SyncSettings, TokenStatus, UserToken

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from reservations.models import Reservation

# Where a person acts in their own name (ServiceNow: portal, event planner, quick, mobile).
PERSONAL_SOURCES = frozenset({Source.PORTAL, Source.EVENT_PLANNER, Source.QUICK, Source.MOBILE})
USABLE_TOKEN = (TokenStatus.VALID, TokenStatus.EXPIRING)


def binding_for(reservation: Reservation) -> SpaceCalendar | None:
    """The space's active calendar binding, or None when the space does not sync.

    Remembered on the Space instance (one query per space and request, not per reservation:
    the portal asks about every booking it lists).
    """
    space = reservation.space
    if not hasattr(space, "_sync_binding"):
        space._sync_binding = (
            SpaceCalendar.objects.select_related("provider").filter(space_id=space.pk).first()
        )
    binding = space._sync_binding
    if binding is None or not binding.enabled or not binding.provider.is_active:
        return None
    return binding


def settings_for(reservation: Reservation) -> SyncSettings:
    """The sync settings, as preloaded for the reservation's page, else read now."""
    preloaded = getattr(reservation, "_sync_settings", None)
    return preloaded if preloaded is not None else SyncSettings.load()


def preload_bindings(reservations: list[Reservation]) -> None:
    """Fetch the calendar bindings of a page of reservations' spaces in one query and remember
    each on its Space instance, where ``binding_for`` looks first, and the sync settings once
    for the page (registered with ``reservations.rules.register_preload``: My reservations
    asked once per space and twice per booking).

    The settings are read only when some booking of the page is of a space that syncs: the
    policy asks for them after ``binding_for``, never for a space that does not sync, and a
    page of desks then costs no read of them at all.
    """
    spaces = {r.space_id: r.space for r in reservations if not hasattr(r.space, "_sync_binding")}
    if spaces:
        found = {
            binding.space_id: binding
            for binding in SpaceCalendar.objects.select_related("provider").filter(
                space_id__in=spaces
            )
        }
        for pk, space in spaces.items():
            space._sync_binding = found.get(pk)
    synced = [r for r in reservations if binding_for(r) is not None]
    if synced:
        sync_settings = SyncSettings.load()
        for reservation in synced:
            reservation._sync_settings = sync_settings


def has_usable_token(user: AbstractBaseUser, binding: SpaceCalendar) -> bool:
    """Whether Reserva can act in the person's own calendar: their token is usable, or (on
    Exchange Server, ``ProviderSpec.personal_by_impersonation``) the application acts in
    their mailbox, found by their e-mail address."""
    if spec(binding.provider.kind).personal_by_impersonation:
        return bool(user.email)
    return UserToken.objects.filter(
        user=user, provider_id=binding.provider_id, status__in=USABLE_TOKEN
    ).exists()


def placement(reservation: Reservation, source: str) -> str | None:
    """The sync mailbox of a new reservation of a synced space, by mode and source."""
    binding = binding_for(reservation)
    if binding is None:
        return None
    if reservation.kind == ReservationKind.BLOCKER:
        return SyncMailbox.OTHER
    if source in (Source.REST_API, Source.ADMIN, Source.EXCHANGE, Source.GOOGLE):
        return SyncMailbox.ROOM  # system-to-system credentials
    mode = SyncSettings.load().mode
    if mode == SyncMode.STRICT:
        return SyncMailbox.OTHER
    if mode == SyncMode.PERSONAL and source in PERSONAL_SOURCES:
        return SyncMailbox.USER
    return SyncMailbox.ROOM


def sync_mode_policy(
    action: Action, user: AbstractBaseUser, reservation: Reservation, source: str
) -> Decision | None:
    binding = binding_for(reservation)
    if binding is None:
        return None  # spaces that do not sync keep every option
    if reservation.source in (Source.EXCHANGE, Source.GOOGLE) and action is not Action.CREATE:
        provider = binding.provider.get_kind_display()
        return Decision(
            False,
            _("This booking was made in %(provider)s; change it there.") % {"provider": provider},
        )
    mode = settings_for(reservation).mode
    if mode == SyncMode.STRICT:
        if action is not Action.CREATE and reservation.sync_mailbox != SyncMailbox.OTHER:
            return Decision(
                False,
                _(
                    "Your organisation manages this booking in the room's calendar, so it cannot "
                    "be changed here: ask an administrator to change or cancel it."
                ),
            )
        return None
    if mode != SyncMode.PERSONAL:
        return None
    if action is Action.CREATE:
        if source not in PERSONAL_SOURCES:
            return None  # REST API and admin bookings use application credentials
        if reservation.kind == ReservationKind.GROUP:
            return Decision(
                False,
                _("Group reservations are not available for rooms that sync with a calendar."),
            )
        if reservation.kind == ReservationKind.BLOCKER:
            return None  # lives in the delegated calendar
        if reservation.requested_for_id not in (None, user.pk):
            return Decision(
                False, _("Rooms that sync with a calendar can only be booked for yourself.")
            )
        if not has_usable_token(user, binding):
            return Decision(False, _no_own_calendar(binding))
        return None
    if reservation.sync_mailbox != SyncMailbox.USER:
        return None
    if source in (Source.EXCHANGE, Source.GOOGLE) and reservation.requested_for_id == user.pk:
        # They moved it in their own calendar, where it lives; the pull applies it as them.
        return None
    if source not in PERSONAL_SOURCES:
        return Decision(
            False,
            _(
                "This booking lives in its owner's own calendar; only they can change it, in the "
                "portal."
            ),
        )
    if reservation.requested_for_id != user.pk:
        return Decision(
            False,
            _(
                "Only the person this booking is for can change it, because it lives in their own "
                "calendar."
            ),
        )
    if not has_usable_token(user, binding):
        if spec(binding.provider.kind).personal_by_impersonation:
            return Decision(False, _no_own_calendar(binding))
        return Decision(
            False, _("Your calendar connection has expired; reconnect it to change this booking.")
        )
    return None


def _no_own_calendar(binding: SpaceCalendar) -> str:
    if spec(binding.provider.kind).personal_by_impersonation:
        return _(
            "Your account has no e-mail address, so your own calendar cannot be found: ask an "
            "administrator to add the address of your mailbox."
        )
    return _("Connect your calendar first (Connect my calendar) to book rooms that sync with it.")
