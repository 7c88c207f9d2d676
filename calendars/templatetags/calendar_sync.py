"""Sync facts for the portal's templates (``{% load calendar_sync %}``).

- ``{% sync_rows reservation occurrences as rows %}``: per occurrence (or the one reservation),
  its sync status in words and its remote sync ID, for the details page
  (``calendars/portal/reservation_sync.html``, pulled in by the portal's hook);
- ``rows|unsettled``: whether the page should ask again (some occurrence not sent yet);
- ``{% paused_sync_alert user as alert %}``: for staff who administer calendars, a line when
  some room's sync is paused (the banner in ``calendars/portal/banners.html``).
"""

from __future__ import annotations

from django import template

from calendars.models import BindingStatus, LinkState, SpaceCalendar, SyncLink
from calendars.policies import binding_for

register = template.Library()

STATE_WORDS = {
    LinkState.PENDING: "Waiting to be sent to the calendar",
    LinkState.SYNCED: "In the calendar",
    LinkState.PAUSED: "Paused: the calendar connection needs attention",
    LinkState.FAILED: "Not sent yet: retrying",
    LinkState.REMOVED: "Removed from the calendar",
}


@register.simple_tag
def sync_rows(reservation, occurrences=None) -> list[dict]:
    """One row per occurrence with a sync status; empty when nothing of it syncs."""
    items = list(occurrences or []) or [reservation]
    links = {link.reservation_id: link for link in SyncLink.objects.filter(
        reservation_id__in=[r.pk for r in items])}  # fmt: skip
    rows = []
    for item in items:
        link = links.get(item.pk)
        if link is None:
            if binding_for(item) is None:
                continue  # this occurrence's space does not sync
            status, sync_id = STATE_WORDS[LinkState.PENDING], ""
        else:
            status, sync_id = STATE_WORDS.get(link.state, link.state), link.external_id
            if link.state == LinkState.SYNCED and not item.holds_slot:
                status = "Removed from the calendar"
        rows.append(
            {"reservation": item, "status": status, "sync_id": sync_id, "state": getattr(
                link, "state", LinkState.PENDING)}
        )  # fmt: skip
    return rows


UNSETTLED = (LinkState.PENDING, LinkState.FAILED)  # the calendar has not answered yet


@register.filter
def unsettled(rows: list[dict]) -> bool:
    """Whether some occurrence is still on its way to the calendar (the details page asks
    again until none is)."""
    return any(row["state"] in UNSETTLED for row in rows)


@register.simple_tag
def paused_sync_alert(user) -> str:
    if not (getattr(user, "is_staff", False) and user.has_perm("calendars.change_spacecalendar")):
        return ""
    paused = SpaceCalendar.objects.filter(status=BindingStatus.PAUSED, enabled=True).count()
    if not paused:
        return ""
    return (
        f"Calendar sync is paused for {paused} room(s): the connection needs attention. "
        "Changes wait and are sent once it is fixed and resumed."
    )
