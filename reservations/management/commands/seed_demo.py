"""Create demo data: three locations in different zones (London HQ and the New York Office
with ~15 spaces each, and a small Berlin Office whose one room, Spree, syncs with the
sandbox's Exchange Server over EWS), four users, a week of
bookings, closures (a room under maintenance on a day next week, Christmas Day every year),
limits per person (a contractor at her limit of two active bookings at London HQ, staff
booking 14 days ahead, facilities 365), an approval room (London's Trent, approved by the
Facilities group, with one of alice's bookings awaiting approval), a check-in room
(Severn at London HQ) with a no-show the beat task releases within a minute and a booking
Alice can check in to, a paired room display for Thames at London HQ whose address uses the
fixed demo token ``DEMO_DISPLAY_TOKEN`` (``make run`` prints it; only in the demo: a real
display gets a random token when it is paired), drawn floor maps of London HQ's floors 1-3 with
its spaces placed, drawn photos of four rooms, and eight weeks of past bookings with
check-ins and no-shows for the Insights page (``reservations.management.demo_history``;
``--history-weeks 0`` leaves them out, as most tests do: they are most of its run time).
Idempotent: running it again creates nothing twice (the check-in pair is made again, around
the new "now", once the last pair is over).

When the ``calendars`` app is installed it then runs ``seed_demo_calendars`` (by name, so this
app imports nothing from it): providers pointing at the local sandbox and spaces bound to the
sandbox's rooms. The demo people's addresses are the sandbox's accounts, so "Sign in with
Microsoft / Google" works for them in ``make run``."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from reservations import demo_maps, displays, floormaps, receivers, services
from reservations.management import demo_history
from reservations.models import (
    Amenity,
    ApprovalRule,
    BookingLimit,
    Closure,
    Display,
    EventTitle,
    FloorMap,
    Location,
    OpeningHours,
    Reservation,
    Source,
    Space,
    SpaceKind,
)

DEMO_USERS = [
    # username, password, first, last, role, email (alice and bob: the sandbox's accounts, with
    # the names the sandbox gives them, so an event reads the same in both)
    ("admin", "reserva-admin", "Ada", "Admin", "admin", "admin@example.com"),
    ("alice", "reserva-alice", "Alice", "Adams", "assistant", "alice@contoso.test"),
    ("bob", "reserva-bob", "Bob", "Brown", "staff", "bob@contoso.test"),
    ("carol", "reserva-carol", "Carol", "Contractor", "contractor", "carol@example.com"),
]
AMENITIES = [
    "Display",
    "Video conferencing",
    "Whiteboard",
    "Phone",
    "Standing desk",
    "Wheelchair access",
]
LOCATIONS = [
    {
        "name": "London HQ",
        "address": "1 Example Street, London",
        "time_zone": "Europe/London",
        "event_title": EventTitle.PATRON_NAME,
        "hours": (time(7), time(20)),
    },
    {
        "name": "New York Office",
        "address": "500 Sample Avenue, New York",
        "time_zone": "America/New_York",
        "event_title": EventTitle.PUBLIC_NICKNAME,
        "hours": (time(8), time(19)),
    },
    {
        # One room, bound to the EWS sandbox's room mailbox spree@contoso.test
        # (calendars.demo.EWS_BINDINGS); no desks, no study hall.
        "name": "Berlin Office",
        "address": "Beispielstraße 1, Berlin",
        "time_zone": "Europe/Berlin",
        "event_title": EventTitle.PATRON_NAME,
        "hours": (time(8), time(18)),
        "rooms": [
            ("Spree", "1", SpaceKind.ROOM, 6, ["Display", "Video conferencing"], True),
        ],
        "study_hall": False,
    },
]
# (name, floor, kind, capacity, amenities, allows_group)
ROOMS = [
    ("Thames", "1", SpaceKind.ROOM, 12, ["Display", "Video conferencing", "Whiteboard"], True),
    ("Severn", "1", SpaceKind.ROOM, 6, ["Display", "Whiteboard"], True),
    ("Avon", "2", SpaceKind.ROOM, 4, ["Display"], False),
    ("Trent", "2", SpaceKind.ROOM, 8, ["Video conferencing", "Wheelchair access"], True),
    ("Phone booth 1", "2", SpaceKind.ROOM, 1, ["Phone"], False),
    ("Phone booth 2", "3", SpaceKind.ROOM, 1, ["Phone"], False),
    ("Desk 3.01", "3", SpaceKind.DESK, 1, ["Standing desk"], False),
    ("Desk 3.02", "3", SpaceKind.DESK, 1, [], False),
    ("Desk 3.03", "3", SpaceKind.DESK, 1, ["Standing desk"], False),
    ("Desk 3.04", "3", SpaceKind.DESK, 1, [], False),
]
SEATS_PER_CONTAINER = 4
MAINTENANCE = ("London HQ", "Avon", "Maintenance: a new display is being fitted")
# Setup and cleanup minutes (reservations.buffers): the big rooms are rearranged between
# meetings, so the schedule shows hatched edges around their bookings.
BUFFERS = {"Thames": (15, 15)}
# Check-in is required in this room (a space-level override; reservations.checkin).
CHECK_IN_ROOM = ("London HQ", "Severn")
# A room whose bookings need approval (reservations.approvals): the admin user approves them.
APPROVAL_ROOM = ("London HQ", "Trent", "Facilities")
# Limits per person at London HQ (reservations.limits): group -> BookingLimit fields.
LIMITS_AT = "London HQ"
LIMITS = {
    "Contractors": {"max_active_bookings": 2, "max_hours_per_week": 10},
    "Staff": {"booking_window_days": 14},
    "Facilities": {"booking_window_days": 365},
}
# A paired room display (reservations.displays) for Thames, at a fixed, documented address so
# `make run` can print it: http://127.0.0.1:8000/display/demo-thames-display/. Only the demo
# has a known token; a display paired in the admin gets a random one.
DISPLAY_ROOM = ("London HQ", "Thames")
DEMO_DISPLAY_TOKEN = "demo-thames-display"  # noqa: S105 - a published demo address, not a secret
# Drawn floor plans (reservations.demo_maps) with the floors' spaces placed on them, and the
# rooms that get a drawn photo.
FLOOR_MAPS = ("London HQ", ("1", "2", "3"))
PHOTOS = ("Thames", "Severn", "Avon", "Trent")
# Names of a demo database from before the demo people took the sandbox's names.
OLD_NAMES = {"alice": ("Alice", "Archer"), "bob": ("Bob", "Baker")}
# Who is in which group: carol already holds two bookings, so a third is refused.
MEMBERS = {"Contractors": ["carol"], "Staff": ["alice", "bob"], "Facilities": ["admin"]}


class Command(BaseCommand):
    help = "Load demo locations, spaces, users and a week of reservations (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        # Passed on to seed_demo_calendars; the defaults are make run's.
        parser.add_argument("--sandbox-port", type=int, default=8443)
        parser.add_argument("--sandbox-state-dir", default="var/sandbox")
        parser.add_argument("--portal-port", type=int, default=8000)
        parser.add_argument(
            "--history-weeks",
            type=int,
            default=demo_history.WEEKS,
            help="Weeks of past bookings for the Insights page (0: none; about 2 s a week). "
            "Tests that do not look at Insights pass 0.",
        )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            users = self._users()
            locations = self._locations()
            self._closures(locations)
            self._approvals(locations, users)
            self._limits(users, locations)
            self._display(locations, users["admin"])
            self._floor_maps(locations)
        with receivers.emails_muted():  # demo bookings need no emails in the console
            created = self._contractor_bookings(users["carol"], locations)
            created += self._reservations(users, locations)
            created += self._check_in(users, locations)
            # Eight weeks of past bookings for the Insights page (once; before the spaces
            # are bound to the sandbox, so none is pushed there).
            created += demo_history.add(
                [users["alice"], users["bob"], users["admin"]],
                locations,
                weeks=options["history_weeks"],
            )
        if apps.is_installed("calendars"):
            call_command(
                "seed_demo_calendars",
                sandbox_port=options["sandbox_port"],
                sandbox_state_dir=options["sandbox_state_dir"],
                portal_port=options["portal_port"],
                stdout=self.stdout,
                verbosity=options["verbosity"],
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {Space.objects.count()} spaces, {created} new reservations."
            )
        )
        for username, password, *_ in DEMO_USERS:
            self.stdout.write(f"  log in as {username} / {password}")

    def _users(self) -> dict[str, object]:
        User = get_user_model()
        admins, _ = Group.objects.get_or_create(name="Reservation admins")
        admins.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="reservations",
                codename__in=["manage_all", "book_on_behalf"],
            )
        )
        on_behalf = Permission.objects.get(
            content_type__app_label="reservations", codename="book_on_behalf"
        )
        users = {}
        for username, password, first, last, role, email in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": email},
            )
            if not created and user.email == f"{username}@example.com" != email:
                user.email = email  # a demo database from before the sandbox addresses
                user.save(update_fields=["email"])
            if not created and (user.first_name, user.last_name) == OLD_NAMES.get(username):
                user.first_name, user.last_name = first, last  # the sandbox's names
                user.save(update_fields=["first_name", "last_name"])
            if created:
                user.set_password(password)
                user.is_staff = user.is_superuser = role == "admin"
                user.save()
                if role == "admin":
                    user.groups.add(admins)
                if role == "assistant":
                    user.user_permissions.add(on_behalf)
            users[username] = user
        return users

    def _locations(self) -> list[Location]:
        amenities = {name: Amenity.objects.get_or_create(name=name)[0] for name in AMENITIES}
        locations = []
        for spec in LOCATIONS:
            location, _ = Location.objects.get_or_create(
                name=spec["name"],
                defaults={
                    "address": spec["address"],
                    "time_zone": spec["time_zone"],
                    "event_title": spec["event_title"],
                },
            )
            opens, closes = spec["hours"]
            for weekday in range(5):
                OpeningHours.objects.get_or_create(
                    location=location, weekday=weekday, defaults={"opens": opens, "closes": closes}
                )
            for name, floor, kind, capacity, tags, group in spec.get("rooms", ROOMS):
                space, created = Space.objects.get_or_create(
                    location=location,
                    name=name,
                    defaults={
                        "floor": floor,
                        "kind": kind,
                        "capacity": capacity,
                        "allows_group": group,
                        "setup_minutes": BUFFERS.get(name, (0, 0))[0],
                        "cleanup_minutes": BUFFERS.get(name, (0, 0))[1],
                    },
                )
                if created:
                    space.amenities.set([amenities[t] for t in tags])
            if spec.get("study_hall", True):
                self._study_hall(location)
            locations.append(location)
        return locations

    def _study_hall(self, location: Location) -> None:
        """A container whose seats are booked one by one."""
        hall, _ = Space.objects.get_or_create(
            location=location,
            name="Quiet study hall",
            defaults={
                "floor": "4",
                "kind": SpaceKind.CONTAINER,
                "capacity": SEATS_PER_CONTAINER,
                "is_reservable": False,
            },
        )
        for n in range(1, SEATS_PER_CONTAINER + 1):
            Space.objects.get_or_create(
                location=location,
                name=f"Study seat {n}",
                defaults={"floor": "4", "kind": SpaceKind.SEAT, "container": hall},
            )

    def _floor_maps(self, locations: list[Location]) -> None:
        """Drawn plans of London HQ's floors 1-3 with its spaces placed on them, and drawn
        photos of a few rooms (``reservations.demo_maps``), stored under MEDIA_ROOT. A map or
        photo whose file has gone (``make clean`` kept the database) is drawn again."""
        location_name, floors = FLOOR_MAPS
        location = next((loc for loc in locations if loc.name == location_name), None)
        if location is None:
            return
        for floor in floors:
            floor_map = FloorMap.objects.filter(location=location, floor=floor).first()
            if floor_map is None or not default_storage.exists(floor_map.image.name):
                floor_map = floor_map or FloorMap(location=location, floor=floor)
                plan = demo_maps.floor_plan(location.name, floor)
                floor_map.image = ContentFile(plan, name=f"floor-{floor}.svg")
                floor_map.save()
            for space in location.spaces.filter(floor=floor, map_x__isnull=True):
                where = demo_maps.position(floor, space.name)
                if where is not None:
                    floormaps.place(space, floor_map, *where)
        for space in location.spaces.filter(name__in=PHOTOS).prefetch_related("amenities"):
            if space.photo and default_storage.exists(space.photo.name):
                continue
            screen = any(a.name == "Display" for a in space.amenities.all())
            photo = demo_maps.room_photo(space.name, space.capacity, screen=screen)
            space.photo = ContentFile(photo, name=f"{space.name}.svg")
            space.save(update_fields=["photo"])

    def _closures(self, locations: list[Location]) -> None:
        """Avon is closed on Tuesday next week (the demo's bookings skip it, the schedule
        shows why); every location is closed on 25 December, every year."""
        location_name, space_name, reason = MAINTENANCE
        london = next(loc for loc in locations if loc.name == location_name)
        today = timezone.now().astimezone(london.zone).date()
        tuesday_next_week = today + timedelta(days=7 - today.weekday() + 1)
        Closure.objects.get_or_create(
            location=london,
            space=Space.objects.get(location=london, name=space_name),
            reason=reason,
            defaults={"start_date": tuesday_next_week, "end_date": tuesday_next_week},
        )
        for location in locations:
            christmas = datetime(today.year, 12, 25).date()
            Closure.objects.get_or_create(
                location=location,
                space=None,
                reason="Christmas Day",
                defaults={"start_date": christmas, "end_date": christmas, "yearly": True},
            )

    def _approvals(self, locations: list[Location], users) -> None:
        """London's Trent needs approval by the Facilities group (the demo admin)."""
        location_name, room_name, group_name = APPROVAL_ROOM
        london = next(loc for loc in locations if loc.name == location_name)
        room = Space.objects.get(location=london, name=room_name)
        facilities, _ = Group.objects.get_or_create(name=group_name)
        facilities.user_set.add(users["admin"])
        ApprovalRule.objects.get_or_create(
            location=london, space=room, defaults={"approvers": facilities}
        )

    def _display(self, locations: list[Location], admin) -> None:
        """Thames's demo display, paired with the demo token (seen now, so the "not seen"
        alert waits 15 minutes for someone to open it). Thames requires check-in, so a
        booking made on the display can be checked in there too."""
        location_name, room_name = DISPLAY_ROOM
        london = next(loc for loc in locations if loc.name == location_name)
        room = Space.objects.get(location=london, name=room_name)
        if room.check_in_required is None:
            room.check_in_required = True
            room.save(update_fields=["check_in_required"])
        display = Display.objects.filter(space=room).order_by("pk").first()
        if display is None:
            display = displays.create(space=room, name="Demo tablet", created_by=admin).display
        if display.token_hash != displays.hash_token(DEMO_DISPLAY_TOKEN) or not display.is_active:
            displays.set_token(display, DEMO_DISPLAY_TOKEN)
            displays.record_seen(display)

    def _awaiting_booking(self, location: Location, today, person) -> int:
        """alice's booking of the approval room, awaiting approval, three weekdays ahead (well
        before its 24-hour deadline), for the approvals queue."""
        room = location.spaces.filter(name=APPROVAL_ROOM[1]).first()
        if room is None:
            return 0
        day, weekdays = today, 0
        while weekdays < 3:
            day += timedelta(days=1)
            weekdays += day.weekday() < 5
        start = datetime.combine(day, time(10), tzinfo=location.zone)
        try:
            services.book(
                actor=person, space=room, start=start, end=start + timedelta(hours=2),
                title="Quarterly review with the board", public_nickname=person.first_name,
                source=Source.PORTAL,
            )  # fmt: skip
        except services.BookingError:
            return 0
        return 1

    def _limits(self, users, locations: list[Location]) -> None:
        """Contractors may hold two active bookings and 10 hours a week at London HQ; staff
        book 14 days ahead there, facilities 365 (the location's horizon is 90)."""
        london = next(loc for loc in locations if loc.name == LIMITS_AT)
        for name, values in LIMITS.items():
            group, _ = Group.objects.get_or_create(name=name)
            BookingLimit.objects.get_or_create(location=london, group=group, defaults=values)
            group.user_set.add(*(users[username] for username in MEMBERS[name]))

    def _contractor_bookings(self, carol, locations: list[Location]) -> int:
        """Carol's two bookings at London HQ on the next two weekdays: her limit, so the next
        one she tries is refused with "Contractors may hold at most 2 active bookings..."."""
        if Reservation.objects.filter(requested_for=carol).exists():
            return 0
        london = next(loc for loc in locations if loc.name == LIMITS_AT)
        day = timezone.now().astimezone(london.zone).date()
        created = 0
        for space_name, hour, hours in (("Desk 3.04", 9, 3), ("Severn", 14, 1)):
            day += timedelta(days=1)
            while day.weekday() >= 5:
                day += timedelta(days=1)
            start = datetime.combine(day, time(hour), tzinfo=london.zone)
            try:
                services.book(
                    actor=carol, space=Space.objects.get(location=london, name=space_name),
                    start=start, end=start + timedelta(hours=hours), title="Site survey",
                    public_nickname=carol.first_name, source=Source.PORTAL,
                )  # fmt: skip
            except services.BookingError:
                continue
            created += 1
        return created

    def _reservations(self, users, locations: list[Location]) -> int:
        demo_people = [users["alice"], users["bob"]]
        if Reservation.objects.filter(requested_for__in=demo_people).exists():
            return 0
        rng = random.Random(42)  # the same week every time
        now = timezone.now()
        created = 0
        for location in locations:
            zone = location.zone
            rooms = list(
                location.spaces.exclude(kind=SpaceKind.CONTAINER)
                .exclude(approval_rules__isnull=False)  # its one demo booking is below
                .order_by("name")
            )
            today = now.astimezone(zone).date()
            created += self._buffered_booking(location, today, users["bob"])
            created += self._awaiting_booking(location, today, users["alice"])
            for offset in range(7):
                day = today + timedelta(days=offset)
                if day.weekday() >= 5:
                    continue
                # Berlin has one room; London and New York (first, so their week is the
                # same as before Berlin came) take six of theirs.
                for room in rng.sample(rooms, k=min(6, len(rooms))):
                    hour = rng.randint(8, 16)
                    start = datetime.combine(day, time(hour), tzinfo=zone)
                    if start < now:
                        continue
                    person = rng.choice(demo_people)
                    try:
                        services.book(
                            actor=person,
                            space=room,
                            start=start,
                            end=start + timedelta(minutes=rng.choice([30, 60, 90])),
                            title=rng.choice(
                                [
                                    "Team sync",
                                    "1:1",
                                    "Planning",
                                    "Interview",
                                    "Focus time",
                                    "Client call",
                                ]
                            ),
                            public_nickname=person.first_name,
                            source=Source.PORTAL,
                        )
                        created += 1
                    except services.BookingError:
                        continue
        return created

    def _check_in(self, users, locations: list[Location]) -> int:
        """Severn requires check-in: Bob's booking started 20 minutes ago and nobody checked
        in (the beat task releases it within a minute of ``make run`` starting), and Alice's
        starts in 10 minutes, so her check-in window is open (My reservations shows Check in).

        Outside London HQ's opening hours (nights, weekends) nobody can book around "now", so
        the pair comes at the next opening instead: Bob's from the opening time (released 15
        minutes later), Alice's half an hour after. Both are ordinary portal bookings, synced
        to the room's calendar like every other."""
        location_name, space_name = CHECK_IN_ROOM
        location = next((loc for loc in locations if loc.name == location_name), None)
        if location is None:
            return 0
        room = location.spaces.get(name=space_name)
        if room.check_in_required is None:
            room.check_in_required = True
            room.save(update_fields=["check_in_required"])
        now = timezone.now().replace(second=0, microsecond=0)
        if room.reservations.filter(end__gt=now, title__startswith="Check-in demo").exists():
            return 0
        pair = (
            (users["bob"], now - timedelta(minutes=20)),  # 30 minutes, until Alice's starts
            (users["alice"], now + timedelta(minutes=10)),
        )
        if any(services.slot_problem(room, start, start + timedelta(minutes=30), now=start)
               for _person, start in pair):  # fmt: skip
            opens = _next_opening(location, now)
            if opens is None:
                return 0
            pair = ((users["bob"], opens), (users["alice"], opens + timedelta(minutes=30)))
        return sum(self._demo_booking(room, person, start) for person, start in pair)

    def _demo_booking(self, room: Space, person, start) -> int:
        try:
            services.book(
                actor=person, space=room, start=start, end=start + timedelta(minutes=30),
                title=f"Check-in demo: {person.first_name}", public_nickname=person.first_name,
                source=Source.PORTAL, now=min(start, timezone.now()) - timedelta(minutes=1),
            )  # fmt: skip
        except services.BookingError:
            return 0  # taken (a demo booking of the random week), or closed that day
        return 1

    def _buffered_booking(self, location: Location, today, person) -> int:
        """A booking in the room with buffers on the next weekday, so the schedule shows its
        hatched setup and cleanup edges (the random week below may add more)."""
        day = today + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        room = location.spaces.filter(name__in=BUFFERS).first()
        if room is None:
            return 0
        start = datetime.combine(day, time(12), tzinfo=location.zone)
        try:
            services.book(
                actor=person, space=room, start=start, end=start + timedelta(hours=1),
                title="Lunch and learn", public_nickname=person.first_name, source=Source.PORTAL,
            )  # fmt: skip
        except services.BookingError:
            return 0
        return 1


def _next_opening(location: Location, now: datetime) -> datetime | None:
    """The next time the location opens after ``now`` (within a week), as an aware datetime."""
    hours = {h.weekday: h for h in location.opening_hours.all()}
    today = now.astimezone(location.zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() in hours:
            opens = datetime.combine(day, hours[day.weekday()].opens, tzinfo=location.zone)
            if opens > now:
                return opens
    return None
