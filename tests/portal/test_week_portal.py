"""The week view of one space (``/schedule/space/<id>/?week=``): seven days of the location,
a booking on its own day, other people's titles hidden, closures with their reason, buffers
kept free, released and cancelled bookings not busy, closed weekdays, the links between the
day grid and the week, and bad input."""

from __future__ import annotations

import re
from datetime import time as clock
from datetime import timedelta

import pytest
from django.urls import reverse

from reservations import services
from reservations.models import Closure, ReservationStatus, SpaceKind
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)  # a Wednesday next week
MONDAY = DAY - timedelta(days=2)
THURSDAY = DAY + timedelta(days=1)


def week(client, space, day=DAY, **params):
    url = reverse("portal:schedule_space", args=[space.pk])
    return client.get(url, {"week": day.isoformat(), **params})


def column(response, day):
    return next(c for c in response.context["columns"] if c.day == day)


def book_link(space, day, start: str, end: str) -> str:
    return (
        f"/book/?space={space.pk}&amp;date={day.isoformat()}&amp;start={start}&amp;end={end}"
        "&amp;via=planner"
    )


def book(user, space, day, hour, minutes=60, **extra):
    start = local(space.location, day, hour)
    return services.book(
        actor=user, space=space, start=start, end=start + timedelta(minutes=minutes), **extra
    ).reservations[0]


def test_the_week_runs_monday_to_sunday_with_a_booking_on_its_day(alice_client, alice, office):
    mine = book(alice, office.small, DAY, 10, title="Design review")
    response = week(alice_client, office.small)
    assert response.status_code == 200
    assert [c.day for c in response.context["columns"]] == [
        MONDAY + timedelta(days=n) for n in range(7)
    ]
    assert [b.reservation for b in column(response, DAY).row.blocks] == [mine]
    assert all(not c.row.blocks for c in response.context["columns"] if c.day != DAY)
    body = response.content.decode()
    assert "Design review" in body and f'href="/reservations/{mine.pk}/"' in body
    # Thursday 10:00 is offered (an hour, prefilled); Wednesday 10:00 is not.
    assert book_link(office.small, THURSDAY, "10:00", "11:00") in body
    assert book_link(office.small, DAY, "10:00", "11:00") not in body
    assert book_link(office.small, DAY, "11:00", "12:00") in body
    # The half-hour rows span the location's opening hours (07:00-20:00).
    assert response.context["labels"][0] == "07:00" and response.context["labels"][-1] == "19:30"


def test_another_persons_title_and_name_are_hidden(alice_client, bob, office):
    book(bob, office.small, DAY, 10, title="Secret merger talks")
    book(bob, office.small, THURSDAY, 10, title="Board pay", public_nickname="Strategy")
    body = week(alice_client, office.small).content.decode()
    assert "Secret merger talks" not in body and "Board pay" not in body
    assert "Bob" not in body
    columns = week(alice_client, office.small).context["columns"]
    assert [b.label for c in columns for b in c.row.blocks] == ["Booked", "Strategy"]
    assert not re.search(r'href="[^"]*/reservations/\d', body)  # nor a link to them


def test_a_closure_is_shown_with_its_reason_and_nothing_offered(alice_client, office):
    Closure.objects.create(
        location=office.location, space=office.small, start_date=THURSDAY, end_date=THURSDAY,
        reason="New carpets",
    )  # fmt: skip
    Closure.objects.create(
        location=office.location, start_date=DAY, end_date=DAY, start_time=clock(14),
        reason="Fire drill",
    )  # fmt: skip
    response = week(alice_client, office.small)
    body = response.content.decode()
    assert f"Small room is closed on {THURSDAY:%a %d %b %Y}: New carpets." in body
    assert (
        f"HQ is closed from 14:00 on {DAY:%a %d %b %Y} until the end of the day: Fire drill."
        in body
    )
    assert f"date={THURSDAY.isoformat()}&amp;start=" not in body
    assert book_link(office.small, DAY, "13:00", "14:00") in body  # until the drill
    assert f"date={DAY.isoformat()}&amp;start=14:00" not in body
    assert [b.reason for b in column(response, THURSDAY).row.closed] == [
        f"Small room is closed on {THURSDAY:%a %d %b %Y}: New carpets."
    ]


def test_released_and_cancelled_bookings_do_not_hold_their_slot(alice_client, bob, office):
    office.location.check_in_required = True
    office.location.save()
    released = book(bob, office.small, MONDAY, 10)
    start = local(office.location, MONDAY, 10)
    services.release_no_show(reservation=released, now=start + timedelta(minutes=30))
    released.refresh_from_db()
    assert released.status == ReservationStatus.RELEASED
    cancelled = book(bob, office.small, DAY, 10)
    services.cancel(actor=bob, reservation=cancelled)
    response = week(alice_client, office.small)
    assert all(not c.row.blocks for c in response.context["columns"])
    body = response.content.decode()
    assert book_link(office.small, MONDAY, "10:00", "11:00") in body
    assert book_link(office.small, DAY, "10:00", "11:00") in body


def test_buffers_are_drawn_and_the_half_hours_they_need_are_not_offered(alice_client, bob, office):
    office.small.setup_minutes, office.small.cleanup_minutes = 15, 30
    office.small.save()
    book(bob, office.small, DAY, 10)  # holds 09:45-11:30
    body = week(alice_client, office.small).content.decode()
    assert body.count('class="buffer buffer-setup') == 1
    assert body.count('class="buffer buffer-cleanup') == 1
    assert "Setup / cleanup (kept free)" in body
    for taken in ("09:00", "09:30", "11:00", "11:30"):
        assert f"date={DAY.isoformat()}&amp;start={taken}&amp;" not in body, taken
    assert book_link(office.small, DAY, "08:30", "09:15") in body  # its cleanup ends at 09:45
    assert book_link(office.small, DAY, "12:00", "13:00") in body


def test_previous_and_next_week_and_back_to_this_week(alice_client, office):
    response = week(alice_client, office.small, DAY)
    body = response.content.decode()
    assert f'href="?week={(MONDAY - timedelta(days=7)).isoformat()}"' in body
    assert f'href="?week={(MONDAY + timedelta(days=7)).isoformat()}"' in body
    assert "This week" in body  # DAY is next week
    later = week(alice_client, office.small, MONDAY + timedelta(days=7))
    assert later.context["columns"][0].day == MONDAY + timedelta(days=7)
    # Any day of a week shows that week, from its Monday.
    assert week(alice_client, office.small, DAY + timedelta(days=4)).context["monday"] == MONDAY


def test_the_day_grid_links_each_space_to_its_week_and_back(alice_client, office):
    grid = alice_client.get(
        reverse("portal:schedule"), {"location": office.location.pk, "date": DAY.isoformat()}
    ).content.decode()
    assert f'href="/schedule/space/{office.small.pk}/?week={DAY.isoformat()}"' in grid
    body = week(alice_client, office.small).content.decode()
    back = f'href="/schedule/?location={office.location.pk}&amp;date={DAY.isoformat()}"'
    assert back in body  # "All spaces on ..." and the crumbs
    # Each day's heading opens that day's grid.
    assert (
        f'href="/schedule/?location={office.location.pk}&amp;date={THURSDAY.isoformat()}"' in body
    )


def test_a_weekday_the_location_does_not_open_keeps_its_column_shut(
    alice_client, make_location, make_space
):
    location = make_location("Annex", opens=clock(9), closes=clock(17), weekdays=range(5))
    room = make_space(location, name="Loft")
    response = week(alice_client, room)
    saturday = column(response, MONDAY + timedelta(days=5))
    assert saturday.note == "Annex is closed on Saturdays."
    assert all(slot.shut and not slot.free for slot in saturday.row.slots)
    body = response.content.decode()
    assert "Annex is closed on Saturdays." in body
    assert f"date={(MONDAY + timedelta(days=5)).isoformat()}&amp;" not in body
    assert response.context["labels"][0] == "09:00" and response.context["labels"][-1] == "16:30"


def test_the_rows_span_the_weeks_widest_hours_and_a_shorter_day_is_shut_outside_its_own(
    alice_client, make_location, make_space
):
    location = make_location("Annex", opens=clock(9), closes=clock(17), weekdays=range(5))
    saturday = MONDAY + timedelta(days=5)
    location.opening_hours.create(weekday=5, opens=clock(10), closes=clock(13))
    room = make_space(location, name="Loft")
    response = week(alice_client, room)
    slots = column(response, saturday).row.slots
    assert len(slots) == len(response.context["labels"]) == 16  # 09:00-17:00
    offered = [f"{s.start:%H:%M}" for s in slots if s.free]
    assert offered == ["10:00", "10:30", "11:00", "11:30", "12:00", "12:30"]


def test_bad_input_is_a_404_or_this_week(alice_client, office, make_space):
    hall = make_space(office.location, name="Hall", kind=SpaceKind.CONTAINER)
    hidden = make_space(office.location, name="Store", is_reservable=False)
    for pk in (999999, hall.pk, hidden.pk, 10**20):
        url = f"/schedule/space/{pk}/"
        assert alice_client.get(url).status_code == 404, pk
    for bad in ("2026-02-31", "yesterday", "9999-12-31", "0001-01-01", ""):
        response = week(alice_client, office.small, **{"week": bad})
        assert response.status_code == 200, bad
        assert response.context["monday"] == response.context["this_week"], bad


def test_signed_out_is_sent_to_sign_in(client, office):
    response = week(client, office.small)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_week_reads_the_same_few_queries_however_many_bookings(
    alice_client, alice, office, django_assert_max_num_queries
):
    book(alice, office.small, MONDAY, 10)
    with django_assert_max_num_queries(40) as few:
        week(alice_client, office.small)
    for day in range(1, 7):
        for hour in (8, 12, 16):
            book(alice, office.small, MONDAY + timedelta(days=day), hour)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = week(alice_client, office.small)
    assert sum(len(c.row.blocks) for c in response.context["columns"]) == 19
