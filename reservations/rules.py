"""Who may do what to a reservation, and why not.

A small registry of policies. The booking service asks every registered policy before any
write; the portal asks the same question to grey out what a user cannot change, and shows the
same reason. Other apps (``calendars`` registers the sync-mode rules) add policies in their
``AppConfig.ready()``, so the rules hold for every entry point without this app importing them.

A policy is a callable ``(action, user, reservation, source) -> Decision | None``; ``None``
means "no opinion". ``source`` is where the action comes from (a ``Source`` value: the portal,
the event planner, the REST API...). For ``Action.CREATE`` the reservation is an unsaved
instance with the requested values filled in. The first refusal wins.

*Preloads* let a policy fetch what it needs for a whole page of bookings at once: the portal
hands them the page (``preload``) before it asks about each booking.

The same module keeps another, smaller registry: *placements*, which decide a new
reservation's sync mailbox (``room``, ``user`` or ``other``, see DESIGN.md). ``calendars``
registers the sync-mode placement; without one, blockers go to the delegated mailbox and
everything else to the room's.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from .models import Reservation


class Action(enum.StrEnum):
    CREATE = "create"
    CHANGE = "change"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOWED = Decision(True)

Policy = Callable[["Action", "AbstractBaseUser", "Reservation", str], Decision | None]
Placement = Callable[["Reservation", str], str | None]
Preload = Callable[[list["Reservation"]], None]

_policies: list[Policy] = []
_placements: list[Placement] = []
_preloads: list[Preload] = []


def register(policy: Policy) -> Policy:
    """Add a policy (usable as a decorator). Registering the same one twice is a no-op."""
    if policy not in _policies:
        _policies.append(policy)
    return policy


def unregister(policy: Policy) -> None:
    if policy in _policies:
        _policies.remove(policy)


def check(
    action: Action, user: AbstractBaseUser, reservation: Reservation, source: str = "portal"
) -> Decision:
    """Ask every policy; return the first refusal, or ALLOWED."""
    for policy in _policies:
        decision = policy(action, user, reservation, source)
        if decision is not None and not decision.allowed:
            return decision
    return ALLOWED


def register_preload(preload: Preload) -> Preload:
    """Add a preload: a callable given a page of reservations before the portal asks the
    policies about each of them, so that a policy's own lookups (a space's calendar binding)
    can be fetched for the whole page in one query instead of one per booking."""
    if preload not in _preloads:
        _preloads.append(preload)
    return preload


def unregister_preload(preload: Preload) -> None:
    if preload in _preloads:
        _preloads.remove(preload)


def preload(reservations: Iterable[Reservation]) -> None:
    """Hand ``reservations`` to every registered preload (nothing to do for none)."""
    batch = list(reservations)
    if batch:
        for each in _preloads:
            each(batch)


def register_placement(placement: Placement) -> Placement:
    if placement not in _placements:
        _placements.append(placement)
    return placement


def unregister_placement(placement: Placement) -> None:
    if placement in _placements:
        _placements.remove(placement)


def sync_mailbox_for(reservation: Reservation, source: str) -> str:
    """Where a new reservation's synced event lives: the first placement with an answer."""
    from .models import ReservationKind, SyncMailbox

    for placement in _placements:
        mailbox = placement(reservation, source)
        if mailbox is not None:
            return mailbox
    return SyncMailbox.OTHER if reservation.kind == ReservationKind.BLOCKER else SyncMailbox.ROOM


def can_manage_all(user: AbstractBaseUser) -> bool:
    return bool(user.is_active and user.has_perm("reservations.manage_all"))


def is_own(user: AbstractBaseUser, reservation: Reservation) -> bool:
    """The person's own booking: booked for them, or by them."""
    return user.pk in (reservation.requested_for_id, reservation.booked_by_id)


@register
def ownership_policy(
    action: Action, user: AbstractBaseUser, reservation: Reservation, source: str
) -> Decision | None:
    """Built-in rule: people manage their own bookings; the admin role manages all; booking
    for someone else needs the on-behalf permission."""
    if not user.is_active:
        return Decision(False, _("Your account is deactivated."))
    if source == "display":  # Source.DISPLAY: a room's paired tablet (reservations.displays)
        return _display_policy(user, reservation)
    if can_manage_all(user):
        return ALLOWED
    if action is Action.CREATE:
        if reservation.requested_for_id not in (None, user.pk) and not user.has_perm(
            "reservations.book_on_behalf"
        ):
            return Decision(False, _("You may only book for yourself."))
        return None
    if is_own(user, reservation):
        return None
    return Decision(False, _("This is someone else's reservation."))


def _display_policy(user: AbstractBaseUser, reservation: Reservation) -> Decision | None:
    """A paired room display acts for everyone at its door, in its own room only: it books
    there (as itself), and ends early, extends or checks in the bookings of that room; the
    other policies (sync modes) still have their say."""
    from .models import Display

    if not Display.acts_for(user, reservation.space_id):
        return Decision(False, _("Only a paired display of this room can act from it."))
    return None
