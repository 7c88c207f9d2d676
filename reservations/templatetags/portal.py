"""Template tags of the staff portal: times in a location's zone, people's names, and
optional includes.

``person`` and ``booker`` name the people of a booking without assuming they exist: a booking
pulled from a room calendar has no Reserva user behind it (``booked_by`` is empty, and
``requested_for`` too when the organizer is not a Reserva user).

``digits`` places the schedule's blocks without a ``style`` attribute (which the
Content-Security-Policy refuses): a number becomes classes that portal.css turns back into it.

``optional_include`` is how other apps add to the portal's pages without this app importing
them: ``{% optional_include "calendars/portal/reservation_sync.html" %}`` renders that template
with the current context when an installed app provides it, and nothing otherwise.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django import template
from django.template.loader import get_template
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from reservations import approvals
from reservations.models import REMOTE_SOURCES, Reservation, source_words

register = template.Library()


def _zone(value) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    if hasattr(value, "zone"):  # a Location or a Profile
        return value.zone
    return ZoneInfo(str(value))


@register.filter
def in_zone(moment: datetime | None, zone) -> datetime | None:
    """``{{ reservation.start|in_zone:location|time:"H:i" }}``: the wall-clock time there.

    Naive on purpose: Django's ``date`` and ``time`` filters convert aware values to the
    active zone (the site default), which would undo the conversion.
    """
    if moment is None:
        return None
    return moment.astimezone(_zone(zone)).replace(tzinfo=None)


@register.filter
def digits(value: float | None, prefix: str) -> str:
    """``class="block {{ block.left|digits:'at' }}"``: 47.25 -> ``at-t4 at-u7 at-d3``.

    A number from 0 to 100 (a percentage of the day, a slot count) as its tens, units and
    tenths, one class each; portal.css gives every class its part of a custom property
    (``--at-t: 40`` ...) and adds them up in ``calc()``. Rounded to a tenth: one pixel or so
    of a timeline. Inline ``style="left: ..."`` would need 'unsafe-inline' in the CSP.
    """
    tenths = min(max(round((value or 0) * 10), 0), 1000)
    return f"{prefix}-t{tenths // 100} {prefix}-u{tenths // 10 % 10} {prefix}-d{tenths % 10}"


@register.filter
def source_name(value: str) -> str:
    """A reservation's source in the portal's words ("Schedule", not "Event planner")."""
    return source_words(value)


@register.filter
def person(user) -> str:
    """A user's full name, else their username; "" for no user."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.filter
def booker(reservation: Reservation) -> str:
    """Who made the booking: the Reserva user, else the calendar organizer we know of, else
    where it came from (a booking made in Outlook or Google Calendar by someone unknown)."""
    if reservation.booked_by_id:
        return person(reservation.booked_by)
    if reservation.organizer_name or reservation.organizer_email:
        return reservation.organizer_name or reservation.organizer_email
    if reservation.source in REMOTE_SOURCES:
        return "Someone outside Reserva"
    return "—"


@register.simple_tag(takes_context=True)
def timespan(context, start: datetime, end: datetime, location, with_date: bool = True) -> str:
    """``Tue 24 Nov 2026, 10:00-11:00 Europe/London`` and, when the viewer's own zone differs,
    the same span on their clock."""
    zone = _zone(location)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    day = f"{local_start:%a %d %b %Y}, " if with_date else ""
    end_day = "" if local_end.date() == local_start.date() else f"{local_end:%a %d %b} "
    # format_html escapes its arguments into strings, so the times are formatted first.
    html = format_html(
        '<time datetime="{}">{}{}&ndash;{}{}</time> <span class="zone">{}</span>',
        start.isoformat(),
        day,
        f"{local_start:%H:%M}",
        end_day,
        f"{local_end:%H:%M}",
        zone.key,
    )
    profile = context.get("portal_profile")
    profile = profile() if callable(profile) else profile
    if profile is not None:
        own = profile.zone
        mine_start, mine_end = start.astimezone(own), end.astimezone(own)
        if mine_start.utcoffset() != local_start.utcoffset():
            other_day = "" if mine_start.date() == local_start.date() else f"{mine_start:%a} "
            html += format_html(
                ' <span class="your-time">({}{}&ndash;{} your time, {})</span>',
                other_day,
                f"{mine_start:%H:%M}",
                f"{mine_end:%H:%M}",
                own.key,
            )
    return html


@register.simple_tag(takes_context=True)
def day_cells(context, row) -> SafeString:
    """The day grid's half-hour cells of one space (``_schedule_grid.html``): a link that
    books a free one, else what starts there (``_schedule_blocks.html``), else why not.

    Built here rather than by a loop in the template: a location of 250 spaces open all day
    has 12,000 cells, and the template language spent about 1.5 s of CPU on them (six
    variable lookups, three ``in_zone|time`` filters and a ``{% url %}`` each) where this
    takes a few milliseconds. The markup is what the loop wrote, less the blank space
    between the cells. Every value is escaped or is a number or a formatted time.
    """
    location, day, planner = context["location"], context["day"], escape(context["planner"])
    zone = location.zone
    space = row.space
    name = escape(space.name)
    book = escape(reverse("portal:book"))
    query = f"?space={space.pk}&amp;date={day:%Y-%m-%d}"
    # Every row has the same half hours: each time is formatted once per page, not per cell.
    times: dict[datetime, str] = context.render_context.setdefault("day_cells_times", {})

    def hhmm(moment: datetime) -> str:
        found = times.get(moment)
        if found is None:
            found = times[moment] = f"{moment.astimezone(zone):%H:%M}"
        return found

    blocks = None
    cells = []
    for slot in row.slots:
        start = hhmm(slot.start)
        if slot.bookable:
            end = hhmm(slot.end)
            cells.append(
                f'<div class="slot" role="gridcell"><a class="slot-book" href="{book}{query}'
                f'&amp;start={start}&amp;end={end}&amp;via={planner}">'
                f'<span class="visually-hidden">Book {name} from {start}</span></a></div>'
            )
        elif slot.blocks or slot.closed:
            if blocks is None:
                blocks = get_template("reservations/_schedule_blocks.html").template
            with context.push(row=slot, tip="", week=False):
                inner = blocks.render(context)
            cells.append(f'<div class="slot slot-off" role="gridcell">{inner}</div>')
        else:
            state = "past" if slot.past else "not free"
            cells.append(
                f'<div class="slot slot-off" role="gridcell"><span class="visually-hidden">'
                f"{name} at {start}: {state}</span></div>"
            )
    return mark_safe("".join(cells))  # noqa: S308 - every part escaped above


@register.simple_tag(takes_context=True)
def optional_include(context, template_name: str) -> str:
    """Render ``template_name`` with the current context if it exists, else nothing. A miss
    costs little after the first: Django's cached template loader remembers it."""
    try:
        found = get_template(template_name)
    except template.TemplateDoesNotExist:
        return ""
    return found.render(context.flatten(), context.get("request"))


@register.filter
def approvers(reservation: Reservation) -> str:
    """Who approves this booking awaiting approval (the rule's group), for "Awaiting approval
    by Facilities"; empty when it awaits nothing."""
    if reservation.approval != "awaiting" or not reservation.holds_slot:
        return ""
    rule = approvals.rule_for(reservation.space)
    return rule.approvers.name if rule else "the approvers"


@register.filter
def is_approver(user) -> bool:
    """Whether the signed-in user approves bookings of some space (the nav's Approvals link)."""
    if not getattr(user, "is_authenticated", False):
        return False
    from ..views.approvals import approves_anything

    return approves_anything(user)
