"""The pure pull planner (``calendars.sync.pull.plan_pull``): a table of cases, no database,
no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendars.sync.pull import event_times, plan_pull
from integrations.base import RemoteEvent
from tests.support.plan import WINDOW, H, T, bucket, ev, link, res


def ours(id=1, start=T, end=T + H, *, subject="Board", nickname=True, **kw):
    """A portal booking whose event is in the room's calendar, titled ``subject`` by Reserva
    (its public nickname when ``nickname``, else the person's name)."""
    return res(id, start, end, source="portal", subject=subject, subject_is_nickname=nickname, **kw)


CASES = [
    # (name, events, links, reservations, expected buckets)
    ("new event -> create", [ev()], [], [], {"create": [("e1", None)]}),
    ("our own push echoed back", [ev(version="v1")], [link()], [res()], {"ignore": [("e1", 1)]}),
    ("moved", [ev(start=T + H, end=T + 2 * H)], [link()], [res()], {"update": [("e1", 1)]}),
    ("renamed (remote-made)", [ev(subject="Budget")], [link()], [res()], {"update": [("e1", 1)]}),
    (
        "renamed Reserva booking: subject is derived, nothing to do",
        [ev(subject="Alice")],
        [link()],
        [res(source="portal")],
        {"touch": [("e1", 1)]},
    ),
    (
        "moved while a push of ours is owed: the event is stale, the push overwrites it",
        [ev(start=T + H, end=T + 2 * H)],
        [link(push_owed=True)],
        [res(source="portal")],
        {"touch": [("e1", 1)]},
    ),
    (
        "deleted while a push of ours is owed: cancelled all the same",
        [RemoteEvent(id="e1", removed=True)],
        [link(push_owed=True)],
        [res(source="portal")],
        {"cancel": [("e1", 1)]},
    ),
    ("deleted", [RemoteEvent(id="e1", removed=True)], [link()], [res()], {"cancel": [("e1", 1)]}),
    (
        "declined by the room",
        [ev(resource_response="declined")],
        [link()],
        [res()],
        {"cancel": [("e1", 1)]},
    ),
    (
        "deleted, never known",
        [RemoteEvent(id="zz", removed=True)],
        [],
        [],
        {"ignore": [("zz", None)]},
    ),
    (
        "deleted, already cancelled",
        [RemoteEvent(id="e1", removed=True)],
        [link()],
        [res(status="cancelled")],
        {"ignore": [("e1", 1)]},
    ),
    (
        "new event on a taken slot -> conflict",
        [ev(id="e2")],
        [],
        [res(source="portal")],
        {"conflicts": [("e2", None)]},
    ),
    (
        "moved onto a taken slot -> conflict",
        [ev(start=T + H, end=T + 2 * H)],
        [link()],
        [res(), res(id=2, start=T + H, end=T + 2 * H, source="portal")],
        {"conflicts": [("e1", 1)]},
    ),
    (
        "a slot freed by a cancel in the same pull is free",
        [RemoteEvent(id="e1", removed=True), ev(id="e2")],
        [link()],
        [res()],
        {"cancel": [("e1", 1)], "create": [("e2", None)]},
    ),
    (
        "two new events on one slot: the second conflicts",
        [ev(id="a"), ev(id="b")],
        [],
        [],
        {"create": [("a", None)], "conflicts": [("b", None)]},
    ),
    (
        "matched by iCalUId when the id differs",
        [ev(id="other", ical_uid="uid-1", start=T + H, end=T + 2 * H)],
        [link(ical_uid="uid-1")],
        [res()],
        {"update": [("other", 1)]},
    ),
    (
        "occurrences sharing an iCalUId are not matched by it",
        [ev(id="occ", ical_uid="uid-1", series_id="master", start=T + 24 * H, end=T + 25 * H)],
        [link(ical_uid="uid-1")],
        [res()],
        {"create": [("occ", None)]},
    ),
    (
        "matched by our tag when the link lost the id (no duplicate)",
        [ev(id="x", reservation_id=1)],
        [link(external_id="")],
        [res()],
        {"touch": [("x", 1)]},
    ),
    (
        "outside the window",
        [ev(start=T + timedelta(days=400), end=T + timedelta(days=400) + H)],
        [],
        [],
        {"ignore": [("e1", None)]},
    ),
    (
        "a conflicted reservation whose event moved to a free slot is retried",
        [ev(start=T + 3 * H, end=T + 4 * H)],
        [link()],
        [res(status="conflicted")],
        {"update": [("e1", 1)]},
    ),
]


@pytest.mark.parametrize(
    ("events", "links", "reservations", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan_pull(events, links, reservations, expected):
    plan = plan_pull(events, links, reservations, window=WINDOW)
    assert bucket(plan) == expected


def test_full_resync_cancels_remote_made_reservations_whose_event_is_gone():
    plan = plan_pull(
        [ev(id="kept", version="v1")],
        [link(1, "kept"), link(2, "gone"), link(3, "portal-event")],
        [
            res(1),
            res(2, start=T + 2 * H, end=T + 3 * H),
            res(3, T + 5 * H, T + 6 * H, source="portal"),
        ],
        window=WINDOW,
        full=True,
    )
    assert bucket(plan) == {"ignore": [("kept", 1)], "cancel": [("gone", 2)]}


def test_the_removal_of_an_earlier_event_of_a_booking_cancels_nothing():
    """Google: our event was deleted and a push made it anew (the id's next generation); the
    first one's removal, found by its tag, cancelled the booking and left the new event in
    the room for good (convergence run, Google seed 573348526)."""
    gone = ev(id="reserva0000000228", removed=True, status="cancelled", reservation_id=1)
    plan = plan_pull([gone], [link(1, "reserva0000000228g1")], [res(1, source="portal")])
    assert bucket(plan) == {"ignore": [("reserva0000000228", 1)]}
    same = ev(id="reserva0000000228g1", removed=True, status="cancelled", reservation_id=1)
    plan = plan_pull([same], [link(1, "reserva0000000228g1")], [res(1, source="portal")])
    assert bucket(plan) == {"cancel": [("reserva0000000228g1", 1)]}


def test_an_incremental_pull_never_cancels_what_it_did_not_hear_about():
    plan = plan_pull([], [link(2, "gone")], [res(2)], window=WINDOW)
    assert bucket(plan) == {}


def test_the_last_word_on_an_event_wins():
    moved = ev(start=T + H, end=T + 2 * H, version="v3")
    plan = plan_pull([ev(), moved], [link()], [res()], window=WINDOW)
    assert [(c.start, c.end) for c in plan.update] == [(T + H, T + 2 * H)]


def test_conflicts_name_the_booking_they_collide_with():
    plan = plan_pull([ev(id="e2")], [], [res(7, source="portal")], window=WINDOW)
    assert plan.conflicts[0].clashes == (7,)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        # Google: midnights of the calendar's zone (New York, Tokyo), in UTC.
        (datetime(2030, 1, 7, 5, tzinfo=UTC), datetime(2030, 1, 8, 5, tzinfo=UTC)),
        (datetime(2030, 1, 6, 15, tzinfo=UTC), datetime(2030, 1, 7, 15, tzinfo=UTC)),
        # Graph: midnight UTC.
        (datetime(2030, 1, 7, tzinfo=UTC), datetime(2030, 1, 8, tzinfo=UTC)),
    ],
)
def test_all_day_events_run_midnight_to_midnight_in_the_location_zone(start, end):
    zone = ZoneInfo("Europe/Paris")
    got = event_times(RemoteEvent(id="d", start=start, end=end, is_all_day=True), zone)
    assert got == (
        datetime(2030, 1, 7, tzinfo=zone),
        datetime(2030, 1, 8, tzinfo=zone),
    )


# -- remote edits of bookings made in Reserva (two-way) ----------------------------------------

TWO_WAY = [
    (
        "a Reserva booking moved to a free slot: applied (checked by the booking rules then)",
        [ev(start=T + H, end=T + 2 * H)],
        [ours()],
        {"update": [("e1", 1)]},
    ),
    (
        "renamed where the room shows the nickname: the new subject is the booking's name",
        [ev(subject="Budget")],
        [ours()],
        {"update": [("e1", 1)]},
    ),
    (
        "renamed where the room shows the person's name: written back",
        [ev(subject="Budget")],
        [ours(subject="Alice Martin", nickname=False)],
        {"restore": [("e1", 1)]},
    ),
    (
        "the same subject, other spacing: nothing shown changed",
        [ev(subject=" Board ")],
        [ours()],
        {"touch": [("e1", 1)]},
    ),
    (
        "the subject emptied where the nickname shows: written back",
        [ev(subject="")],
        [ours()],
        {"restore": [("e1", 1)]},
    ),
    (
        "the room's copy of an event kept elsewhere (subject not ours to compare): nothing",
        [ev(subject="Alice Martin: Board")],
        [res(source="portal", subject=None)],
        {"touch": [("e1", 1)]},
    ),
    (
        "a Reserva booking moved onto a taken slot: written back, never conflicted",
        [ev(start=T + H, end=T + 2 * H)],
        [ours(), res(id=2, start=T + H, end=T + 2 * H)],
        {"restore": [("e1", 1)]},
    ),
]


@pytest.mark.parametrize(
    ("events", "reservations", "expected"),
    [case[1:] for case in TWO_WAY],
    ids=[case[0] for case in TWO_WAY],
)
def test_remote_edits_of_reserva_bookings(events, reservations, expected):
    plan = plan_pull(events, [link()], reservations, window=WINDOW)
    assert bucket(plan) == expected


def test_a_taken_rename_carries_the_new_subject():
    plan = plan_pull([ev(subject="  Budget ")], [link()], [ours()], window=WINDOW)
    assert [(c.title, c.undo) for c in plan.update] == [("Budget", "")]


def test_a_move_is_taken_and_a_rename_of_the_persons_name_undone_in_one_edit():
    moved = ev(start=T + H, end=T + 2 * H, subject="Budget")
    plan = plan_pull([moved], [link()], [ours(subject="Alice", nickname=False)], window=WINDOW)
    (change,) = plan.update
    assert (change.start, change.title) == (T + H, None)
    assert "person the booking is for" in change.undo


def test_a_written_back_booking_keeps_its_slot():
    """Restored, the booking stays where it was: a new event on that slot in the same pull
    collides with it (not with the refused move's slot)."""
    plan = plan_pull(
        [ev(start=T + H, end=T + 2 * H), ev(id="walk-in", version="v9")],
        [link()],
        [ours(), res(id=2, start=T + H, end=T + 2 * H)],
        window=WINDOW,
    )
    assert bucket(plan) == {"restore": [("e1", 1)], "conflicts": [("walk-in", None)]}
    assert plan.restore[0].clashes == (2,) and plan.conflicts[0].clashes == (1,)


def test_a_remote_made_booking_moved_onto_a_taken_slot_is_still_a_conflict():
    plan = plan_pull(
        [ev(start=T + H, end=T + 2 * H)],
        [link()],
        [res(), ours(id=2, start=T + H, end=T + 2 * H)],
        window=WINDOW,
    )
    assert bucket(plan) == {"conflicts": [("e1", 1)]}
