"""Property-based runs of the API (schemathesis + hypothesis).

First against its own OpenAPI schema: every operation gets generated requests, valid and
invalid, as an authenticated integration that may book for anyone; no response may be a 5xx or
break the documented schema (errors included: the schema documents the error shape for every
operation). Then a stateful run (hypothesis' rule-based state machine): bookings, then PATCHes
and series with date-times from year 1 to year 9999, checking every answer and that a refusal
writes nothing. Bounded, derandomized examples keep both replayable and well under a minute.
Not skipped: CI runs them in both database legs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    multiple,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from config.wsgi import application
from reservations.api.errors import ERROR_SCHEMA
from reservations.models import Amenity, IntegrationRole, Reservation


@pytest.fixture
def _keep_test_connection(db, bearer):
    """Calling the WSGI app directly (not Django's test client) would close the connection
    that holds the test's transaction at the end of each request; Django's client disconnects
    this handler for the same reason (and connects it again after each of its requests, so
    this runs after ``bearer`` got its token through the test client)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(_keep_test_connection, make_space):
    space = make_space(name="Fuzz room")
    space.amenities.add(Amenity.objects.create(name="Screen"))
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def bearer(as_integration):
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    return client._credentials["HTTP_AUTHORIZATION"]


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, bearer, settings_api_rate):
    case.call_and_validate(
        headers={"Authorization": bearer},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


@pytest.fixture
def settings_api_rate(settings):
    settings.API_RATE_LIMIT = ""  # the fuzzer sends bursts; throttling has its own test


# --- a stateful run: book, then PATCH and book series with times from the whole calendar -------

# Offsets at both ends of what the API accepts, zones east and west of UTC (whose local mean
# time at year 1 has odd offsets), and UTC: year 1 and year 9999 overflow differently in each.
ZONES = [
    UTC,
    dt_timezone(timedelta(hours=14)),
    dt_timezone(timedelta(hours=-12)),
    ZoneInfo("Europe/Zurich"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Pacific/Kiritimati"),
]
EDGES = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, 0, 30, tzinfo=dt_timezone(timedelta(hours=1))),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 0, tzinfo=dt_timezone(timedelta(hours=-1))),
    datetime(1899, 12, 31, 23, 59, tzinfo=UTC),
    datetime(3000, 1, 1, tzinfo=UTC),
]


def moments(bookable_from: datetime) -> st.SearchStrategy[str]:
    """ISO 8601 date-times across Python's whole range (year 1 to 9999), the edges themselves,
    and times that can be booked, so the run also reaches real bookings to PATCH."""
    anywhere = st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.sampled_from(ZONES),
    )
    bookable = st.integers(0, 14 * 24 * 4).map(lambda q: bookable_from + timedelta(minutes=15 * q))
    return st.one_of(anywhere, st.sampled_from(EDGES), bookable).map(lambda d: d.isoformat())


LENGTHS = st.none() | st.integers(1, 16).map(lambda q: timedelta(minutes=15 * q))


def end_of(start: str | None, end: str | None, length: timedelta | None) -> str | None:
    """``start`` + ``length`` when both are given and representable, else ``end``: most ends
    then come after their start, and some bookings and moves succeed."""
    if start is None or length is None:
        return end
    try:
        return (datetime.fromisoformat(start) + length).isoformat()
    except OverflowError:
        return end


def run_booking_machine(client: APIClient, space, bookable_from: datetime) -> None:
    times = moments(bookable_from)
    days = st.one_of(
        st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
        st.integers(0, 60).map(lambda n: bookable_from.date() + timedelta(days=n)),
    )

    class BookingMachine(RuleBasedStateMachine):
        """Every answer is below 500, JSON, and in the documented error shape when it is an
        error; a refused write leaves the database as it was (no half-written record)."""

        reservations = Bundle("reservations")

        def __init__(self) -> None:
            super().__init__()
            # Each example starts from the same database: replayable, and no pile-up of slots.
            self._savepoint = transaction.atomic()
            self._savepoint.__enter__()

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self._savepoint.__exit__(None, None, None)

        def check(self, response) -> dict:
            assert response.status_code < 500, response.content[:500]
            assert response["Content-Type"] == "application/json", response.content[:200]
            body = response.json()
            if response.status_code >= 400:
                jsonschema.validate(body, ERROR_SCHEMA)
            return body

        @initialize(target=reservations)
        def a_booking(self):
            start = bookable_from + timedelta(days=20)
            payload = {"space": space.pk, "start": start.isoformat(), "end": start.isoformat()}
            payload["end"] = (start + timedelta(hours=1)).isoformat()
            response = client.post("/api/v1/reservations/", payload, format="json")
            assert response.status_code == 201, response.content
            return response.json()["id"]

        @rule(target=reservations, start=times, end=times, length=LENGTHS)
        def book(self, start, end, length):
            end = end_of(start, end, length)
            before = Reservation.objects.count()
            payload = {"space": space.pk, "start": start, "end": end, "title": "Fuzz"}
            response = client.post("/api/v1/reservations/", payload, format="json")
            body = self.check(response)
            if response.status_code == 201:
                return multiple(body["id"])
            assert Reservation.objects.count() == before
            return multiple()

        @rule(
            reservation=reservations,
            start=st.none() | times,
            end=st.none() | times,
            length=LENGTHS,
            extra=st.sampled_from([{}, {"title": "Moved"}, {"status": "cancelled"}]),
        )
        def patch(self, reservation, start, end, length, extra):
            end = end_of(start, end, length)
            before = Reservation.objects.values().get(pk=reservation)
            payload = {**extra, **{k: v for k, v in (("start", start), ("end", end)) if v}}
            response = client.patch(f"/api/v1/reservations/{reservation}/", payload, format="json")
            self.check(response)
            if response.status_code != 200:
                assert Reservation.objects.values().get(pk=reservation) == before

        @rule(
            start=times,
            end=times,
            length=LENGTHS,
            frequency=st.sampled_from(["daily", "weekly", "monthly_day", "monthly_weekday"]),
            interval=st.integers(1, 99),
            count=st.none() | st.integers(1, 4) | st.integers(1, 366),
            until=st.none() | days,
        )
        def series(self, start, end, length, frequency, interval, count, until):
            end = end_of(start, end, length)
            before = Reservation.objects.count()
            recurrence = {"frequency": frequency, "interval": interval, "count": count}
            recurrence["until"] = until.isoformat() if until else None
            payload = {"space": space.pk, "start": start, "end": end, "recurrence": recurrence}
            response = client.post("/api/v1/reservations/series/", payload, format="json")
            self.check(response)
            if response.status_code != 201:
                assert Reservation.objects.count() == before

    run_state_machine_as_test(
        BookingMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=8,
            derandomize=True,  # the same examples every run: a failure replays
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_patch_and_series_survive_datetimes_from_the_whole_calendar(
    as_integration, make_location, make_space, settings_api_rate
):
    location = make_location(time_zone="Europe/Zurich", booking_horizon_days=60)
    space = make_space(location)
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    client.raise_request_exception = False  # a 500 is reported as such, with its body
    # 09:00 tomorrow at the location: the machine's first booking (an hour, 20 days on) must
    # fit in one local day whenever the suite runs (from now + a day, it crossed midnight
    # when run between 22:00 and 23:00 UTC).
    tomorrow = datetime.now(UTC).astimezone(location.zone).date() + timedelta(days=1)
    run_booking_machine(client, space, datetime.combine(tomorrow, clock(9), tzinfo=location.zone))
