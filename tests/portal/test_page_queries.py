"""What the busiest portal pages cost in queries, pinned so that a change that adds a read to
every request, or one per listed booking, fails here (``bench/portal_pages.py`` measures the
same pages on the benchmark's data set with PostgreSQL).

Every signed-in page reads the session, the user, the user's permissions, whether they approve
anything (the Approvals link), their calendar tokens (the banner) and, when it shows a time,
their profile; the counts below are that plus the page's own reads.
"""

from __future__ import annotations

from datetime import time as clock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reservations.models import Closure
from tests.conftest import local
from tests.support.portal import DAY

pytestmark = pytest.mark.django_db


def closure_reads(queries) -> int:
    return sum('FROM "reservations_closure"' in q["sql"] for q in queries)


def test_find_reads_the_location_wide_closures_once_for_the_search_and_the_quick_box(
    alice_client, office, frozen_now
):
    frozen_now(local(office.location, DAY, 10))  # open: the quick box and the search both ask
    Closure.objects.create(
        location=office.location,
        start_date=DAY,
        end_date=DAY,
        start_time=clock(15),
        end_time=clock(17),
        reason="Fire drill",
    )
    with CaptureQueriesContext(connection) as queries:
        response = alice_client.get(reverse("portal:find"))
    body = response.content.decode()
    assert "Quick reservation" in body and response.context["spaces"]
    assert not response.context.get("problem") and not response.context["quick_closed"]
    # The location's own closures once (search and quick box), and the spaces' for the results.
    assert closure_reads(queries) == 2


def test_find_still_says_the_location_is_closed_in_the_box_and_the_search(
    alice_client, office, frozen_now
):
    frozen_now(local(office.location, DAY, 10))
    Closure.objects.create(
        location=office.location, start_date=DAY, end_date=DAY, reason="Fire drill"
    )
    response = alice_client.get(reverse("portal:find"))
    assert "Fire drill" in response.context["quick_closed"]
    assert "Fire drill" in response.context["problem"]


def test_schedule_reads_the_location_asked_for_from_the_pickers_list(alice_client, office):
    with CaptureQueriesContext(connection) as queries:
        response = alice_client.get(
            reverse("portal:schedule"), {"location": office.location.pk, "date": DAY}
        )
    assert response.context["location"] == office.location
    assert f'<option value="{office.location.pk}" selected>HQ</option>' in (
        response.content.decode()
    )
    assert sum('FROM "reservations_location"' in q["sql"] for q in queries) == 1


def test_schedule_of_a_location_that_is_not_there_opens_the_persons_default(
    alice_client, alice, office, make_location
):
    from reservations.models import Profile

    other = make_location("Annex")
    Profile.objects.create(user=alice, default_location=other)
    for asked in ("999999", "nope", ""):
        response = alice_client.get(reverse("portal:schedule"), {"location": asked, "date": DAY})
        assert response.context["location"] == other


def location_reads(queries) -> int:
    return sum('FROM "reservations_location"' in q["sql"] for q in queries)


def test_find_reads_the_location_searched_once_for_the_view_and_the_form(
    alice_client, office, make_location
):
    make_location("Annex")
    search = {"location": office.location.pk, "date": DAY, "start": "10:00", "duration": 60}
    with CaptureQueriesContext(connection) as queries:
        response = alice_client.get(reverse("portal:find"), search)
    assert response.context["form"].cleaned_data["location"] is response.context["location"]
    assert [s.name for s in response.context["spaces"]] == [
        "Booth",
        "Desk 1",
        "Small room",
        "Big room",
    ]
    assert location_reads(queries) == 2  # the view's, and the select's options
    # A location that is not there is still refused by the form.
    response = alice_client.get(reverse("portal:find"), {**search, "location": "999999"})
    assert "Select a valid choice" in response.content.decode()


# The whole count of each page of the load test's mix, as a person with ten bookings sees it,
# exactly: a page that reads less should lower its figure here. Five are every signed-in
# page's: the session, the user, the permissions, the Approvals link and the token banner.
PAGE_QUERIES = {
    # + profile, the first location (alice has no default), hours, closures (the location's,
    # its spaces'), buffers, the free spaces, their amenities, location and amenity options
    "find": 15,
    # + locations, floors, hours, spaces, closures, bookings, approval rules, bindings
    "schedule": 13,
    "mine": 9,  # + profile, count, page, bindings
    "detail": 10,  # + profile, booking, bindings, history, sync links
    "change": 10,
    "book form": 10,
}


@pytest.fixture
def pages(alice_client, alice, office, make_reservation, frozen_now):
    made = [
        make_reservation(office.small, user=alice, start=local(office.location, DAY, hour))
        for hour in range(8, 18)
    ]
    frozen_now(local(office.location, DAY, 7, 40))  # open, the bookings still to come
    return {
        "find": (reverse("portal:find"), {}),
        "schedule": (reverse("portal:schedule"), {"location": office.location.pk, "date": DAY}),
        "mine": (reverse("portal:mine"), {}),
        "detail": (reverse("portal:detail", args=[made[0].pk]), {}),
        "change": (reverse("portal:change", args=[made[0].pk]), {}),
        "book form": (
            reverse("portal:book"),
            {"space": office.big.pk, "date": DAY, "start": "10:00", "end": "11:00"},
        ),
    }


@pytest.mark.parametrize("page", PAGE_QUERIES)
def test_page_query_count(alice_client, pages, page, django_assert_num_queries):
    url, params = pages[page]
    alice_client.get(url, params)  # the first visit makes the person's profile
    with django_assert_num_queries(PAGE_QUERIES[page]):
        response = alice_client.get(url, params)
    assert response.status_code == 200
