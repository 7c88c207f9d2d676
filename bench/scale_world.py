"""The scale bench's world: the sandbox's rooms, Reserva's bindings to them, the changes made
on both sides, and the check that each reached the other side (``bench/scale.py``)."""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import requests
from scale_stack import ROOT, Stack, free_port, sync_quiet

MS_ROOM = "scale-{:04d}@contoso.test"
GOOGLE_ROOM = "c_5ca1e{:06d}@resource.calendar.google.com"
GOOGLE_DELEGATE = "scale-sync-{:03d}@northwind.test"
GOOGLE_SERVICE_ACCOUNT = "reserva-sync@reserva-sandbox.iam.gserviceaccount.com"
QUIET_SECONDS = 5
GRAPH_MAILBOX_PER_10_MIN = 10_000  # Outlook service limits, per app and mailbox


# --- the sandbox ------------------------------------------------------------------------------


def sandbox_config(ms_rooms: int, google_rooms: int, delegates: int) -> dict:
    from integrations.sandbox.config import default_config
    from integrations.sandbox.google.directory import DEFAULTS as GOOGLE_DEFAULTS

    config = default_config()
    tenant = config["microsoft"]["tenants"][0]
    tenant["rooms"] += [
        {
            "id": f"5ca1e000-{i:04d}-4f3e-b1d2-00000000c000",
            "email": MS_ROOM.format(i),
            "display_name": f"Scale room {i}",
            "capacity": 8,
            "building": "Scale",
            "floor": 1,
        }
        for i in range(ms_rooms)
    ]
    google = json.loads(json.dumps(GOOGLE_DEFAULTS))
    google["users"] += [
        {"email": GOOGLE_DELEGATE.format(d), "name": f"Scale sync {d}"} for d in range(delegates)
    ]
    google["resources"] += [
        {
            "email": GOOGLE_ROOM.format(i),
            "name": f"Scale room G{i}",
            "capacity": 8,
            "building_id": "Scale",
            "floor": "1",
            "writers": [GOOGLE_SERVICE_ACCOUNT, GOOGLE_DELEGATE.format(delegate_of(i, delegates))],
            "readers": [],
        }
        for i in range(google_rooms)
    ]
    config["google"] = google
    config["sandbox"]["limits"] = {
        "graph": {
            "max_in_flight": 4,
            "max_requests": GRAPH_MAILBOX_PER_10_MIN,
            "window_seconds": 600,
        },
    }
    config["sandbox"]["log_size"] = 2000
    return config


def delegate_of(google_room: int, delegates: int) -> int:
    return google_room % delegates


class Sandbox:
    """The control API of the sandbox subprocess."""

    def __init__(self, base_url: str, ca_file: Path) -> None:
        self.base_url, self.ca_file = base_url, ca_file
        self._local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            session = requests.Session()
            session.trust_env = False
            session.verify = str(self.ca_file)
            self._local.session = session
        return self._local.session

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session().request(
            method, f"{self.base_url}/_sandbox/api/{path}", timeout=60, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def counters(self) -> dict[str, dict[str, int]]:
        return self.call("GET", "counters")


def start_sandbox(stack: Stack, state: Path, config: dict) -> Sandbox:
    port = free_port()
    (state / "scale-config.json").write_text(json.dumps(config))
    stack.start(
        "sandbox",
        [
            sys.executable,
            "-m",
            "integrations.sandbox",
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--config",
            str(state / "scale-config.json"),
        ],
    )
    sandbox = Sandbox(f"https://127.0.0.1:{port}", state / "ca.pem")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack.check()
        try:
            if sandbox.ca_file.exists():
                sandbox.call("GET", "state")
                return sandbox
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit("the sandbox did not start within 60 s")


# --- Django, the world ------------------------------------------------------------------------


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


@dataclass
class Room:
    index: int
    kind: str  # "microsoft" / "google"
    calendar: str  # mailbox / calendar id
    binding_id: int
    space_id: int
    remote_events: list[str]  # event ids made "in Outlook / Google", newest last
    local_bookings: list[int]  # reservation ids made in Reserva, newest last
    remote_starts: dict[str, datetime]
    local_starts: dict[int, datetime]


def make_world(sandbox: Sandbox, rooms: int, per_user: int) -> tuple[Any, list[Room]]:
    """A staff user, a UTC location, one Microsoft provider, one Google provider per delegated
    user, and ``rooms`` spaces bound to the sandbox's scale rooms (bindings are saved one by
    one, so the receivers queue each one's webhook subscription, as the admin does)."""
    from django.contrib.auth import get_user_model

    from calendars.models import (
        CalendarProvider,
        ConnectionAlias,
        CredentialAlias,
        ProviderKind,
        SpaceCalendar,
    )
    from integrations.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
    from reservations.models import Location, OpeningHours, Space

    user = get_user_model().objects.create_user(
        "scale",
        email="scale@example.com",
        first_name="Scale",
        last_name="Bench",
        is_staff=True,
        is_superuser=True,
    )
    location = Location.objects.create(name="Scale campus", time_zone="UTC")
    OpeningHours.objects.bulk_create(
        OpeningHours(location=location, weekday=day, opens=dt_time(0), closes=dt_time(23, 59))
        for day in range(7)
    )
    base = sandbox.base_url
    ms = CalendarProvider.objects.create(
        name="Scale Microsoft 365",
        kind=ProviderKind.MICROSOFT,
        connection=ConnectionAlias.objects.create(
            name="Scale Microsoft",
            kind=ProviderKind.MICROSOFT,
            authority_url=base,
            authorization_url=base,
            api_base_url=f"{base}/v1.0",
            ca_bundle=str(sandbox.ca_file),
        ),
        credential=CredentialAlias.objects.create(
            name="Scale Microsoft app",
            kind=ProviderKind.MICROSOFT,
            tenant_id=DEMO_TENANT_ID,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            scopes="Calendars.ReadWrite",
        ),
        delegated_user_email="reserva-blocker@contoso.test",
    )
    ms_rooms, google_rooms = rooms - rooms // 2, rooms // 2
    delegates = max(1, math.ceil(google_rooms / per_user))
    key = json.loads((Path(sandbox.ca_file).parent / "google" / "reserva-sync.json").read_text())
    google_connection = ConnectionAlias.objects.create(
        name="Scale Google",
        kind=ProviderKind.GOOGLE,
        authority_url=f"{base}/google/oauth2/token",
        authorization_url=f"{base}/google/o/oauth2/v2/auth",
        api_base_url=f"{base}/google/calendar/v3",
        ca_bundle=str(sandbox.ca_file),
    )
    google_credential = CredentialAlias.objects.create(
        name="Scale Google app",
        kind=ProviderKind.GOOGLE,
        client_id="284719300001-reservasandbox.apps.googleusercontent.com",
        client_secret="GOCSPX-sandbox-demo-not-a-real-secret",  # noqa: S106 - the sandbox's
        service_account_key=key,
        scopes="https://www.googleapis.com/auth/calendar",
    )
    google = [
        CalendarProvider.objects.create(
            name=f"Scale Google {d}",
            kind=ProviderKind.GOOGLE,
            connection=google_connection,
            credential=google_credential,
            delegated_user_email=GOOGLE_DELEGATE.format(d),
        )
        for d in range(delegates)
    ]
    world = []
    for i in range(rooms):
        if i < ms_rooms:
            kind, calendar, provider, extra = "microsoft", MS_ROOM.format(i), ms, {}
        else:
            g = i - ms_rooms
            calendar = GOOGLE_ROOM.format(g)
            kind, provider = "google", google[delegate_of(g, delegates)]
            extra = {"calendar_id": calendar}
        space = Space.objects.create(location=location, name=f"Scale {i:04d}", capacity=8)
        binding = SpaceCalendar.objects.create(
            space=space,
            provider=provider,
            resource_email=calendar,
            calendar_name="Calendar",
            **extra,
        )
        world.append(Room(i, kind, calendar, binding.pk, space.pk, [], [], {}, {}))
    return user, world


def graph_time(when: datetime) -> dict[str, str]:
    return {"dateTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def event_path(room: Room, event_id: str = "") -> str:
    kind = "microsoft/mailboxes" if room.kind == "microsoft" else "google/calendars"
    return f"{kind}/{room.calendar}/events" + (f"/{event_id}" if event_id else "")


def event_times(room: Room, start: datetime) -> dict[str, Any]:
    end = start + timedelta(minutes=30)
    if room.kind == "microsoft":
        return {"start": graph_time(start), "end": graph_time(end)}
    return {"start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}


# --- the changes ------------------------------------------------------------------------------


@dataclass
class Change:
    side: str  # "remote" (made in the calendar) / "local" (made in Reserva)
    op: str  # "create" / "move"
    room: int
    ref: str  # event id (remote) / reservation id (local)
    start: datetime  # the start it sets
    sent: float  # time.time() just before the call
    late: float  # seconds behind its schedule
    error: str = ""


class Driver:
    """Makes the changes: remote ones through the sandbox's control API, local ones through
    ``reservations.services``; each room's latest event / booking is the one moved."""

    def __init__(self, sandbox: Sandbox, user: Any, rooms: list[Room], day0: datetime) -> None:
        self.sandbox, self.user, self.rooms, self.day0 = sandbox, user, rooms, day0
        self.locks = {room.index: threading.Lock() for room in rooms}

    def remote(self, room: Room, op: str, scheduled: float) -> Change:
        with self.locks[room.index]:
            if op == "create":
                ref, start = "", self.day0 + timedelta(days=len(room.remote_events), hours=8)
            else:
                ref = room.remote_events[-1]
                start = room.remote_starts[ref] + timedelta(minutes=30)
            sent = time.time()
            try:
                if op == "create":
                    title = {"subject" if room.kind == "microsoft" else "summary": "Scale remote"}
                    made = self.sandbox.call(
                        "POST", event_path(room), json={**title, **event_times(room, start)}
                    )
                    ref = made["id"]
                    room.remote_events.append(ref)
                else:
                    self.sandbox.call("PATCH", event_path(room, ref), json=event_times(room, start))
                room.remote_starts[ref] = start
                return Change("remote", op, room.index, ref, start, sent, sent - scheduled)
            except requests.RequestException as exc:
                return Change("remote", op, room.index, ref, start, sent, 0, str(exc))

    def local(self, room: Room, op: str, scheduled: float) -> Change:
        from django.db import close_old_connections

        from reservations import services
        from reservations.models import Reservation, Space

        close_old_connections()
        with self.locks[room.index]:
            sent = time.time()
            ref = ""
            try:
                if op == "create":
                    start = self.day0 + timedelta(days=len(room.local_bookings), hours=14)
                    made = services.book(
                        actor=self.user,
                        space=Space.objects.get(pk=room.space_id),
                        start=start,
                        end=start + timedelta(minutes=30),
                        title="Scale local",
                    ).reservations[0]
                    ref = made.pk
                    room.local_bookings.append(ref)
                else:
                    ref = room.local_bookings[-1]
                    start = room.local_starts[ref] + timedelta(minutes=30)
                    services.change(
                        actor=self.user,
                        reservation=Reservation.objects.get(pk=ref),
                        start=start,
                        end=start + timedelta(minutes=30),
                    )
                room.local_starts[ref] = start
                return Change("local", op, room.index, str(ref), start, sent, sent - scheduled)
            except Exception as exc:  # a refusal is a finding: reported, not raised
                return Change("local", op, room.index, str(ref), self.day0, sent, 0, repr(exc))


def schedule(rooms: list[Room], seconds: float, speed: float) -> list[tuple[float, str, Room, str]]:
    """(offset, side, room, op): each room's remote and local changes every 3600 / speed s,
    the rooms spread evenly over the period, remote and local half a period apart; create and
    move in turn (by room, so both kinds come from the first period on)."""
    period = 3600.0 / speed
    plan = []
    for room in rooms:
        for side, shift in (("remote", 0.0), ("local", 0.5)):
            first = (room.index + shift) / len(rooms) * period
            for k in itertools.count():
                at = first + k * period
                if at >= seconds:
                    break
                plan.append((at, side, room, "create" if (room.index + k) % 2 else "move"))
    plan.sort(key=lambda item: item[0])
    return plan


def in_step(rooms: list[Room]) -> bool:
    """Every room's events and bookings, as the driver last set them, are on the other side
    (two queries: what ``verify`` checks in detail at the end)."""
    from calendars.models import LinkState
    from reservations.models import Reservation

    remote = {ref: start for room in rooms for ref, start in room.remote_starts.items()}
    found = dict(
        Reservation.objects.filter(sync_link__external_id__in=remote).values_list(
            "sync_link__external_id", "start"
        )
    )
    if any(found.get(ref) != start for ref, start in remote.items()):
        return False
    local = [ref for room in rooms for ref in room.local_starts]
    rows = Reservation.objects.filter(pk__in=local).values_list(
        "version", "sync_link__pushed_version", "sync_link__state"
    )
    return len(rows) == len(local) and all(
        pushed is not None and pushed >= version and state == LinkState.SYNCED
        for version, pushed, state in rows
    )


def settled(rooms: list[Room], redis_client: Any, sandbox: Sandbox) -> Callable[[], bool]:
    """A check: in step and quiet, and still quiet with no provider request for
    ``QUIET_SECONDS`` (the sandbox delivers notifications one at a time from a queue of its
    own: one can still be on its way when Reserva's queues first look empty)."""

    def requests_so_far() -> int:
        return sum(sandbox.counters().get("service", {}).values())

    def check() -> bool:
        if not (in_step(rooms) and sync_quiet(redis_client)):
            return False
        seen = requests_so_far()
        for _ in range(QUIET_SECONDS):
            time.sleep(1)
            if not sync_quiet(redis_client) or requests_so_far() != seen:
                return False
        return True

    return check


# --- verification -----------------------------------------------------------------------------


def parse_remote_time(value: dict[str, str] | str | None) -> datetime | None:
    if not value:
        return None
    if isinstance(value, dict):
        text, zone = value.get("dateTime", ""), value.get("timeZone", "UTC")
        if not text:
            return None
        moment = datetime.fromisoformat(text.rstrip("Z")[:26])
        if moment.tzinfo is None:
            from zoneinfo import ZoneInfo

            moment = moment.replace(tzinfo=UTC if zone in ("UTC", "") else ZoneInfo(zone))
        return moment.astimezone(UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")[:26] + "+00:00").astimezone(UTC)


def stamp(text: str) -> float:
    """A sandbox write time (Graph: 7 fraction digits; Google: milliseconds) as epoch seconds."""
    head, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(head).replace(tzinfo=UTC)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def verify(
    sandbox: Sandbox, rooms: list[Room], changes: list[Change]
) -> tuple[list, list, list, dict[str, list[float]]]:
    """Per change, when it was applied on the other side: (remote lags, local lags, misses,
    lags by direction and provider)."""
    from reservations.models import Reservation

    history = Reservation.history.model
    remote_lags: list[float] = []
    local_lags: list[float] = []
    misses: list[str] = []
    by_room = {room.index: room for room in rooms}
    by_kind: dict[str, list[float]] = {}
    events: dict[int, dict[str, dict]] = {}

    def room_events(index: int) -> dict[str, dict]:
        if index not in events:
            items = sandbox.call("GET", event_path(by_room[index]))["value"]
            events[index] = {e["id"]: e for e in items}
        return events[index]

    for change in changes:
        if change.error:
            misses.append(f"{change.side} {change.op} room {change.room}: not made: {change.error}")
            continue
        if change.side == "remote":
            reservation = (
                Reservation.objects.filter(sync_link__external_id=change.ref)
                .values_list("pk", flat=True)
                .first()
            )
            rows = history.objects.filter(id=reservation) if reservation else history.objects.none()
            if change.op == "move":
                rows = rows.filter(start=change.start)
            first = rows.order_by("history_date").values_list("history_date", flat=True).first()
            if first is None:
                misses.append(
                    f"remote {change.op} room {change.room}: event {change.ref} -> "
                    f"reservation {reservation or 'none'}, start {change.start:%Y-%m-%d %H:%M} "
                    "not in Reserva"
                )
            else:
                remote_lags.append(max(0.0, first.timestamp() - change.sent))
                key = f"remote->Reserva {by_room[change.room].kind}"
                by_kind.setdefault(key, []).append(remote_lags[-1])
            continue
        link = (
            Reservation.objects.filter(pk=int(change.ref))
            .values_list("sync_link__external_id", flat=True)
            .first()
        )
        event = room_events(change.room).get(link or "")
        if event is None or event.get("isCancelled") or event.get("status") == "cancelled":
            misses.append(
                f"local {change.op} room {change.room}: reservation {change.ref} -> "
                f"event {link or 'none'} not in the calendar"
            )
            continue
        latest = by_room[change.room].local_starts[int(change.ref)]  # later moves supersede
        if parse_remote_time(event.get("start")) != latest:
            misses.append(
                f"local {change.op} room {change.room}: reservation {change.ref}: event {link} "
                f"starts {event.get('start')}, not {latest:%Y-%m-%d %H:%M}"
            )
            continue
        if change.op == "create":
            written = event.get("createdDateTime") or event.get("created")
        else:
            written = event.get("lastModifiedDateTime") or event.get("updated")
        local_lags.append(max(0.0, stamp(written) - change.sent))
        key = f"local->{by_room[change.room].kind}"
        by_kind.setdefault(key, []).append(local_lags[-1])
    return remote_lags, local_lags, misses, by_kind
