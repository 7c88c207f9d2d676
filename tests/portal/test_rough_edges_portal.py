"""The portal's small slips (issue 19, item 5), checked as a person meets them: the offers
after a clash when rescheduling, the schedule on a closed day, quick reservation when the
location is closed, the recurrence fields, the upcoming list's pager, counts and plain words.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from reservations import services
from tests.conftest import local, next_weekday
from tests.portal.test_views import change_form

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)  # a Wednesday next week


def test_a_clash_when_rescheduling_offers_the_same_room_later_and_rooms_as_big(
    alice_client, alice, bob, office
):
    location = office.location
    mine = services.book(
        actor=alice,
        space=office.small,
        start=local(location, DAY, 11, 30),
        end=local(location, DAY, 12, 30),
    ).reservations[0]
    services.book(
        actor=bob, space=office.small, start=local(location, DAY, 10), end=local(location, DAY, 11)
    )
    url = reverse("portal:change", args=[mine.pk])
    response = alice_client.post(url, change_form(mine, start="10:30", end="12:00"))
    assert response.status_code == 409
    # 11:00-12:30 is free once Alice's own booking (11:30-12:30) moves out of the way.
    first = response.context["conflict"].next_free[0]
    assert (f"{first[0]:%H:%M}", f"{first[1]:%H:%M}") == ("11:00", "12:30")
    body = response.content.decode()
    assert "Small room is free next:" in body
    # Other rooms for the 4 people the small room holds: the big room, not the booth or desk.
    assert [space.name for space in response.context["options"]] == ["Big room"]
    assert "Free at the same time for 4 people or more" in body

    taken = f'name="use_time" value="{DAY.isoformat()} 11:00 12:30"'
    assert taken in body
    response = alice_client.post(
        url, {**change_form(mine, start="10:30", end="12:00"), "use_time": taken.split('"')[3]}
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.start, mine.end) == (local(location, DAY, 11), local(location, DAY, 12, 30))
    assert mine.end - mine.start == timedelta(minutes=90)
