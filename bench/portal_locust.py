"""The portal under load: a locust scenario of signed-in people using the portal at once.

Run by ``bench/portal_load.py`` (``make bench-portal``), which loads ``bench/booking.py``'s data
set, signs the people in (a session each, in ``--people-file``), starts the production stack and
runs ``locust -f bench/portal_locust.py --headless``; it then reads locust's figures and counts
double bookings in the database. Only locust (with its gevent) and the standard library are
imported here: locust runs in its own environment (``pip install locust==2.47.0``), not
Django's.

Each simulated person is one of the data set's people, already signed in (the session cookie
from the people file; signing in is not part of the mix), at their default location, and does,
after a think time of ``--think-min`` to ``--think-max`` seconds between pages:

======================  ======  ==========================================================
task                    weight  requests (locust name)
======================  ======  ==========================================================
find a space            40      ``find``: the search page for a random day, hour, size
schedule                25      ``schedule``: the day grid of their location, a day in the
                                next two weeks: half the time as it opens (all floors, the
                                first page of 50 spaces), half the time their own floor (one
                                of the location's, drawn for each person at the start)
my reservations         15      ``mine``: upcoming bookings, first page
book                    10      ``book form`` then ``book``: a free-looking room at a
                                random time in the next 60 days (409, taken meanwhile, is
                                an answer, not an error)
reschedule or cancel    5       ``reschedule form`` + ``reschedule`` (a room booking, to a
                                later hour that day, after it ends, else the next day: never
                                to an hour already past; a desk booking is not moved, see
                                ``_reschedule``) or ``cancel form`` + ``cancel``, of a
                                booking they made in this run (else one of their listed ones)
details                 5       ``detail``: one of their bookings
======================  ======  ==========================================================

Every other answer than the expected ones is a failure; the target is none.
"""

from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta
from pathlib import Path

import gevent
from locust import HttpUser, events, task

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
VERSION = re.compile(r'name="expected_version" value="(\d+)"')
LISTED = re.compile(r'href="/reservations/(\d+)/"')
CHANGEABLE = re.compile(r'href="/reservations/(\d+)/change/"')
CREATED = re.compile(r"/reservations/(\d+)/$")

_people: list[dict] = []
_rooms: dict[str, list[int]] = {}
_floors: dict[str, list[str]] = {}
_all_rooms: set[int] = set()


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument("--people-file", default="var/bench-portal-people.json")
    parser.add_argument("--think-min", type=float, default=0.2)
    parser.add_argument("--think-max", type=float, default=0.8)


@events.test_start.add_listener
def _load_people(environment, **kwargs) -> None:
    data = json.loads(Path(environment.parsed_options.people_file).read_text())
    _people[:] = data["people"]
    _rooms.update(data["rooms"])
    _all_rooms.update(pk for rooms in data["rooms"].values() for pk in rooms)
    _floors.update(data.get("floors", {}))
    PortalUser.cookie_name = data["cookie"]


def _think(user: PortalUser) -> float:
    options = user.environment.parsed_options
    return random.uniform(options.think_min, options.think_max)


class PortalUser(HttpUser):
    """One signed-in person of the data set."""

    cookie_name = "sessionid"
    wait_time = _think

    def on_start(self) -> None:
        person = _people.pop(0) if _people else None
        if person is None:
            raise RuntimeError("more locust users than people in the people file")
        self.location = str(person["location"])
        floors = _floors.get(self.location) or [""]
        self.floor = random.choice(floors)  # "": the location has no floors
        self.client.cookies.set(self.cookie_name, person["session"])
        self.made: list[int] = []  # bookings this person made in this run, still active
        self.listed: list[int] = []  # their bookings seen on "My reservations"
        # People do not all open their first page at the same instant: locust starts users
        # in bursts (``--spawn-rate`` a second), whose first pages would queue behind each
        # other and, think times being alike, keep meeting again for minutes; the queueing
        # showed as a p95 three times the server's (130 against 41 ms at 6 requests/s,
        # 14% of the cores busy). Each person's first page comes after a think time of
        # their own, from nothing to the longest.
        gevent.sleep(random.uniform(0, self.environment.parsed_options.think_max))

    # --- the mix --------------------------------------------------------------------------

    @task(40)
    def find(self) -> None:
        day, hour = self._some_time()
        self.client.get(
            "/",
            params={
                "location": self.location,
                "date": day.isoformat(),
                "start": f"{hour:02d}:00",
                "duration": random.choice(("30", "60", "120")),
                "capacity": str(random.choice((1, 1, 2, 4, 6))),
            },
            name="find",
        )

    @task(25)
    def schedule(self) -> None:
        day = date.today() + timedelta(days=random.randint(0, 13))
        params = {"location": self.location, "date": day.isoformat()}
        if self.floor and random.random() < 0.5:
            params["floor"] = self.floor
        self.client.get("/schedule/", params=params, name="schedule")

    @task(15)
    def mine(self) -> None:
        response = self.client.get("/my/", name="mine")
        self.listed = [int(pk) for pk in CHANGEABLE.findall(response.text)] or [
            int(pk) for pk in LISTED.findall(response.text)
        ]

    @task(10)
    def book(self) -> None:
        day, hour = self._some_time()
        fields = {
            "space": str(random.choice(_rooms[self.location])),
            "date": day.isoformat(),
            "start": f"{hour:02d}:{random.choice(('00', '30'))}",
        }
        fields["end"] = _later(fields["start"], random.choice((30, 60)))
        form = self.client.get("/book/", params=fields, name="book form")
        token = _csrf(form.text)
        with self.client.post(
            "/book/",
            data={**fields, "title": "Load test", "interval": "1", "csrfmiddlewaretoken": token},
            name="book",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code == 302 and CREATED.search(response.headers["Location"]):
                self.made.append(int(CREATED.search(response.headers["Location"]).group(1)))
                response.success()
            elif response.status_code == 409:
                response.success()  # taken since the form was shown: the page offers others
            else:
                response.failure(f"HTTP {response.status_code}")

    @task(5)
    def reschedule_or_cancel(self) -> None:
        pk = self._own_booking()
        if pk is None:
            return
        if random.random() < 0.5:
            self._reschedule(pk)
        else:
            self._cancel(pk)

    @task(5)
    def detail(self) -> None:
        pk = self._own_booking()
        if pk is not None:
            self.client.get(f"/reservations/{pk}/", name="detail")

    # --- helpers ----------------------------------------------------------------------------

    def _some_time(self) -> tuple[date, int]:
        return date.today() + timedelta(days=random.randint(1, 60)), random.randint(7, 18)

    def _own_booking(self) -> int | None:
        if self.made:
            return random.choice(self.made)
        if not self.listed:
            self.mine()
        return random.choice(self.listed) if self.listed else None

    def _reschedule(self, pk: int) -> None:
        form = self.client.get(f"/reservations/{pk}/change/", name="reschedule form")
        version = VERSION.search(form.text)
        space = re.search(r'<option value="(\d+)" selected>', form.text)
        day = re.search(r'name="date" value="([0-9-]+)"', form.text)
        start = re.search(r'name="start" value="([0-9:]+)"', form.text)
        end = re.search(r'name="end" value="([0-9:]+)"', form.text)
        if not (version and space and day and start and end):
            return  # no longer changeable (the page said why): nothing to post
        if int(space.group(1)) not in _all_rooms:
            # A desk: the data set's people hold a desk most days, and one person may hold
            # one desk at a time, so a random new hour mostly meets their other desk (400,
            # with the reason). People move rooms here; desks are cancelled or kept.
            return
        moved_day, start = _later_slot(date.fromisoformat(day.group(1)), start[1], end[1])
        with self.client.post(
            f"/reservations/{pk}/change/",
            data={
                "space": space.group(1),
                "date": moved_day.isoformat(),
                "start": start,
                "end": _later(start, 60),
                "title": "Load test",
                "expected_version": version.group(1),
                "csrfmiddlewaretoken": _csrf(form.text),
            },
            name="reschedule",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code in (302, 409):
                response.success()  # moved, or that hour is taken (the page offers others)
            else:
                response.failure(f"HTTP {response.status_code}")

    def _cancel(self, pk: int) -> None:
        form = self.client.get(f"/reservations/{pk}/cancel/", name="cancel form")
        version = VERSION.search(form.text)
        if version is None:
            return
        with self.client.post(
            f"/reservations/{pk}/cancel/",
            data={
                "reason": "",
                "scope": "this",
                "expected_version": version.group(1),
                "csrfmiddlewaretoken": _csrf(form.text),
            },
            name="cancel",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code == 302:
                response.success()
                for bookings in (self.made, self.listed):
                    if pk in bookings:
                        bookings.remove(pk)
            else:
                response.failure(f"HTTP {response.status_code}")


def _csrf(page: str) -> str:
    found = CSRF.search(page)
    return found.group(1) if found else ""


def _later_slot(day: date, start: str, end: str) -> tuple[date, str]:
    """A half hour to move a booking to: after its current end that day (a booking still
    changeable ends in the future, so this is never in the past, even for one of today's,
    whose earlier hours may be over), else one between 07:00 and 18:30 the next day (also
    when the booking ends after midnight)."""
    hour, minute = map(int, end.split(":"))
    first = (hour * 60 + minute + 29) // 30  # the first half hour at or after the end
    last = 22 * 2  # 22:00, so that the hour fits the day
    if first > last or end <= start:
        day, first, last = day + timedelta(days=1), 7 * 2, 18 * 2 + 1
    slot = random.randint(first, last)
    return day, f"{slot // 2:02d}:{slot % 2 * 30:02d}"


def _later(start: str, minutes: int) -> str:
    hour, minute = map(int, start.split(":"))
    total = min(hour * 60 + minute + minutes, 23 * 60 + 59)
    return f"{total // 60:02d}:{total % 60:02d}"
