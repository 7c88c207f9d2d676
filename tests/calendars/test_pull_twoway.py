"""Two-way for bookings made in Reserva, against the provider sandbox (Microsoft and Google):
a person moves or renames the room's event of a portal booking in Outlook / Google Calendar.
The pull applies it through the booking service as that person (opening hours, horizon,
maximum length, the policies), or, when the rules refuse it or the slot is taken, writes the
booking back over the event and tells the person why. Never "neither applied nor undone"."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.core import mail

from calendars import remote as remote_calendar
from calendars import tasks
from calendars.models import LinkState, SpaceCalendar, SyncLink
from calendars.sync import pull
from calendars.sync.push import apply_remote_result, push_reservation
from reservations import services
from reservations.models import EventTitle, Reservation, ReservationStatus, Source
from tests.calendars.conftest import binding_for
from tests.conftest import local, next_weekday
from tests.support.pull import Remote

EWS_READY = True

DAY = next_weekday(1)  # a Tuesday


@pytest.fixture
def binding(kind, request) -> SpaceCalendar:
    binding = binding_for(kind, request)
    binding.space.location.opening_hours.update(opens=time(8), closes=time(18))
    return binding


@pytest.fixture
def remote(sandbox, kind) -> Remote:
    return Remote(sandbox, kind)


@pytest.fixture
def owner(make_user):
    return make_user(first_name="Alice", last_name="Martin", email="alice@example.com")


def book(binding, person, hour: int, capture, **extra) -> Reservation:
    """A portal booking of DAY hour:00-hour+1:00, pushed to the room's calendar."""
    start = local(binding.space.location, DAY, hour)
    with capture(execute=True):
        booked = services.book(
            actor=person, space=binding.space, start=start, end=start + timedelta(hours=1),
            **extra,
        ).reservations[0]  # fmt: skip
    push_reservation(booked.pk)  # as the task does (a no-op if it ran)
    booked.refresh_from_db()
    assert booked.sync_link.external_id, "the push did not run"
    return booked


def utc(binding, hour: int, minute: int = 0) -> datetime:
    return local(binding.space.location, DAY, hour, minute).astimezone(UTC)


def pull_now(binding, capture) -> pull.PullResult:
    """A pull whose after-commit work runs: the emails, and the pushes that write back (the
    follow-ups the task queues, ``tasks.dispatch``)."""
    with capture(execute=True):
        result = pull.pull_binding(binding.pk)
        tasks.dispatch(result.next)
        return result


def room_event(binding, reservation):
    return remote_calendar.room_calendar(binding).find(reservation.pk)


def test_a_remote_move_to_a_free_slot_in_hours_is_taken(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks)
    remote.move(booked.sync_link.external_id, utc(binding, 14), utc(binding, 15))
    mail.outbox.clear()

    result = pull_now(binding, django_capture_on_commit_callbacks)
    assert (result.updated, result.restored, result.conflicts) == (1, 0, 0)
    booked.refresh_from_db()
    assert (booked.start, booked.end) == (utc(binding, 14), utc(binding, 15))
    assert (booked.status, booked.version) == (ReservationStatus.CONFIRMED, 2)
    # Made by the person, in their calendar: the history says who and where.
    source = Source.GOOGLE if binding.provider.kind == "google" else Source.EXCHANGE
    changed = booked.history.first()
    assert (changed.history_user_id, changed.change_source) == (owner.pk, source)
    # No echo: the event already shows version 2, so the push finds nothing to do and the
    # next pull nothing new.
    assert SyncLink.objects.get(reservation=booked).pushed_version == 2
    assert push_reservation(booked.pk).op == "noop"
    assert pull.pull_binding(binding.pk).updated == 0
    event = room_event(binding, booked)
    assert (event.start, event.end) == (utc(binding, 14), utc(binding, 15))
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        f"Moved in {binding.provider.get_kind_display()}"
    ]


def test_a_remote_rename_is_taken_where_the_room_shows_the_nickname(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    location = binding.space.location
    location.event_title = EventTitle.PUBLIC_NICKNAME
    location.save(update_fields=["event_title"])
    pull.pull_binding(binding.pk)
    booked = book(
        binding, owner, 10, django_capture_on_commit_callbacks,
        title="Standup", public_nickname="Standup",
    )  # fmt: skip
    assert room_event(binding, booked).subject == "Standup"
    remote.rename(booked.sync_link.external_id, "Sprint planning")

    result = pull_now(binding, django_capture_on_commit_callbacks)
    assert (result.updated, result.restored) == (1, 0)
    booked.refresh_from_db()
    assert (booked.title, booked.public_nickname, booked.version) == (
        "Sprint planning",
        "Sprint planning",
        2,
    )
    assert push_reservation(booked.pk).op == "noop"
    assert room_event(binding, booked).subject == "Sprint planning"
    assert pull.pull_binding(binding.pk).updated == 0


def test_a_remote_rename_is_undone_where_the_room_shows_the_persons_name(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks, title="Standup")
    assert room_event(binding, booked).subject == "Alice Martin"
    remote.rename(booked.sync_link.external_id, "Sprint planning")
    mail.outbox.clear()

    result = pull_now(binding, django_capture_on_commit_callbacks)
    assert (result.updated, result.restored) == (0, 1)
    booked.refresh_from_db()
    assert (booked.title, booked.version) == ("Standup", 1)
    assert room_event(binding, booked).subject == "Alice Martin"  # written back
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    message = mail.outbox[0]
    provider = binding.provider.get_kind_display()
    assert message.subject.startswith(f"Change in {provider} undone: {binding.space.name}")
    assert "renamed to 'Sprint planning'" in message.body
    assert "shows the name of the person" in message.body
    assert pull.pull_binding(binding.pk).restored == 0  # our write does not come back


def test_a_remote_move_outside_opening_hours_is_undone_and_the_person_told(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks)
    remote.move(booked.sync_link.external_id, utc(binding, 19), utc(binding, 20))
    mail.outbox.clear()

    result = pull_now(binding, django_capture_on_commit_callbacks)
    assert (result.updated, result.restored, result.conflicts) == (0, 1, 0)
    booked.refresh_from_db()
    assert (booked.start, booked.end) == (utc(binding, 10), utc(binding, 11))
    assert (booked.status, booked.version) == (ReservationStatus.CONFIRMED, 1)
    event = room_event(binding, booked)
    assert (event.start, event.end) == (utc(binding, 10), utc(binding, 11))
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    body = mail.outbox[0].body
    assert "moved to" in body and "19:00-20:00" in body
    assert "open 08:00-18:00" in body
    link = SyncLink.objects.get(reservation=booked)
    assert (link.state, link.pushed_version) == (LinkState.SYNCED, 1)
    assert pull.pull_binding(binding.pk).restored == 0


def test_a_remote_move_onto_another_booking_is_undone_and_both_keep_their_slot(
    binding, remote, owner, make_user, django_capture_on_commit_callbacks
):
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks)
    other = book(
        binding, make_user(email="bob@example.com"), 14, django_capture_on_commit_callbacks
    )
    remote.move(booked.sync_link.external_id, utc(binding, 14, 30), utc(binding, 15, 30))
    mail.outbox.clear()

    result = pull_now(binding, django_capture_on_commit_callbacks)
    assert (result.updated, result.restored, result.conflicts) == (0, 1, 0)
    for row, hour in ((booked, 10), (other, 14)):
        row.refresh_from_db()
        assert (row.status, row.version, row.start) == ("confirmed", 1, utc(binding, hour))
        event = room_event(binding, row)
        assert (event.start, event.end) == (utc(binding, hour), utc(binding, hour + 1))
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert "booked by someone else" in mail.outbox[0].body


def test_a_move_whose_write_back_is_lost_stays_owed(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    """The write-back is owed, not only queued: if its push never runs (the worker died),
    the link is behind its reservation, for the retries and "Resume sync" to find."""
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks)
    remote.move(booked.sync_link.external_id, utc(binding, 6), utc(binding, 7))

    assert pull.pull_binding(binding.pk).restored == 1  # no commit callbacks: no push ran
    link = SyncLink.objects.get(reservation=booked)
    assert link.pushed_version < booked.version and link.state == LinkState.PENDING
    event = room_event(binding, booked)
    assert event.start == utc(binding, 6)
    assert push_reservation(booked.pk).op == "update"
    event = room_event(binding, booked)
    assert (event.start, event.end) == (utc(binding, 10), utc(binding, 11))


def test_a_move_is_taken_and_a_rename_of_the_persons_name_undone(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks)
    event_id = booked.sync_link.external_id
    remote.move(event_id, utc(binding, 12), utc(binding, 13))
    remote.rename(event_id, "Sprint planning")

    result = pull_now(binding, django_capture_on_commit_callbacks)
    assert (result.updated, result.restored) == (1, 1)
    booked.refresh_from_db()
    assert (booked.start, booked.version) == (utc(binding, 12), 2)
    event = room_event(binding, booked)
    assert (event.subject, event.start) == ("Alice Martin", utc(binding, 12))


def test_a_remote_move_crossing_a_push_that_lands_meanwhile_is_not_left_apart(
    binding, remote, owner, monkeypatch, django_capture_on_commit_callbacks
):
    """A portal move's push writes the event; the person moves the event right after; a pull
    reads that move while the push (on another worker, a moment behind) has not recorded its
    write, so the pull sees a push owed and leaves the event to it; then the push records
    its write. Before, the pull then noted the moved event as the state the push left: the
    booking and the event stayed apart for good, the link claiming they agree (issue 12's
    "#888 confirmed portal v1 ... the event says Wed 08:30-09:00" has this shape). Now the
    pull sees the push has landed and writes the booking back (the person is told)."""
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks)
    later = local(binding.space.location, DAY, 12)
    # Committed; its push task has not recorded anything yet (no commit callbacks run here).
    booked = services.change(
        actor=owner, reservation=booked, start=later, end=later + timedelta(hours=1)
    )[0]
    link = SyncLink.objects.get(reservation=booked)
    assert link.pushed_version < booked.version
    # The push's write, then the person's move, then the pull reads.
    data = remote_calendar.event_data(booked, binding)
    written = remote_calendar.room_calendar(binding).update(
        link.external_id, data, version=link.remote_version
    )
    remote.move(link.external_id, utc(binding, 15), utc(binding, 16))

    read_links = pull.apply.read_known

    def push_records_its_write_meanwhile(*args, **kwargs):
        known = read_links(*args, **kwargs)
        apply_remote_result(SyncLink.objects.get(pk=link.pk), written, booked.version)
        return known

    monkeypatch.setattr(pull.apply, "read_known", push_records_its_write_meanwhile)
    mail.outbox.clear()
    result = pull_now(binding, django_capture_on_commit_callbacks)
    monkeypatch.undo()

    booked.refresh_from_db()
    event = room_event(binding, booked)
    assert (event.start, event.end) == (booked.start, booked.end), "left apart"
    assert (booked.start, booked.version) == (later, 2)
    assert (result.updated, result.restored) == (0, 1)
    assert "crossed a change" in mail.outbox[0].body
    assert pull.pull_binding(binding.pk).updated == 0


@pytest.mark.parametrize("days", [120, 200], ids=["past-the-horizon", "past-the-sync-window"])
def test_a_remote_move_past_the_booking_horizon_is_undone(
    binding, remote, owner, days, django_capture_on_commit_callbacks
):
    """90 days is the location's horizon, 180 the sync window's. Google's incremental sync
    reports the whole calendar, so a move out of the window still arrives as a move."""
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks)
    far = utc(binding, 10) + timedelta(days=days)
    remote.move(booked.sync_link.external_id, far, far + timedelta(hours=1))
    mail.outbox.clear()

    result = pull_now(binding, django_capture_on_commit_callbacks)
    booked.refresh_from_db()
    assert (booked.status, booked.version, booked.start) == ("confirmed", 1, utc(binding, 10))
    event = room_event(binding, booked)
    assert (event.start, event.end) == (utc(binding, 10), utc(binding, 11))
    assert result.restored == 1
    assert "at most 90 days ahead" in mail.outbox[0].body


def test_a_rename_longer_than_a_nickname_is_taken_shortened_and_written_back(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    """A nickname holds 100 characters: the event then shows the shortened one (Reserva's
    subject), or the calendar and the booking would disagree for good. No email: the
    rename was taken."""
    location = binding.space.location
    location.event_title = EventTitle.PUBLIC_NICKNAME
    location.save(update_fields=["event_title"])
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks, public_nickname="Standup")
    long_subject = "Quarterly planning " + "x" * 120
    remote.rename(booked.sync_link.external_id, long_subject)
    mail.outbox.clear()

    result = pull_now(binding, django_capture_on_commit_callbacks)
    assert (result.updated, result.restored) == (1, 0)
    booked.refresh_from_db()
    assert (booked.title, booked.public_nickname) == (long_subject, long_subject[:100])
    assert room_event(binding, booked).subject == long_subject[:100]
    assert mail.outbox == []


def test_a_booking_whose_event_was_deleted_while_the_cursor_was_lost_is_cancelled(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    """A full read (the cursor rejected, or an administrator's resync) reports what is there,
    never what was deleted. A portal booking whose event was deleted in Outlook / Google
    meanwhile was left confirmed with no event and a link saying "synced" (found by the
    convergence run: seed 7741, an event deleted and then the delta link invalidated)."""
    pull.pull_binding(binding.pk)
    deleted = book(binding, owner, 10, django_capture_on_commit_callbacks)
    kept = book(binding, owner, 12, django_capture_on_commit_callbacks)
    remote.delete(deleted.sync_link.external_id)

    with django_capture_on_commit_callbacks(execute=True):
        result = pull.pull_binding(binding.pk, full=True)

    deleted.refresh_from_db()
    kept.refresh_from_db()
    assert result.full and result.cancelled == 1
    assert deleted.status == ReservationStatus.CANCELLED
    assert (kept.status, kept.version) == (ReservationStatus.CONFIRMED, 1)
    assert room_event(binding, kept) is not None


def test_a_booking_whose_new_event_is_deleted_before_the_next_pull_is_cancelled(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    """Booked, pushed, and its event deleted in Outlook / Google before the next pull. Graph's
    delta and Google's sync token report the deletion; EWS's SyncFolderItems reports nothing
    (the sync state never showed the item, so its create and delete collapse into nothing),
    and the booking stayed confirmed with no event through every later pull (the convergence
    run, seed 7741 on EWS). The pull looks up by tag the events made since its last start that
    the feed did not show; the other bookings, found, are left alone."""
    pull.pull_binding(binding.pk)
    shown = book(binding, owner, 8, django_capture_on_commit_callbacks)
    pull.pull_binding(binding.pk)  # the feed shows it; the cursor moves past it
    deleted = book(binding, owner, 10, django_capture_on_commit_callbacks)
    kept = book(binding, owner, 12, django_capture_on_commit_callbacks)
    remote.delete(deleted.sync_link.external_id)

    first = pull_now(binding, django_capture_on_commit_callbacks)
    again = pull_now(binding, django_capture_on_commit_callbacks)

    for row in (shown, deleted, kept):
        row.refresh_from_db()
    assert not first.full and first.cancelled == 1
    assert deleted.status == ReservationStatus.CANCELLED
    assert [r.status for r in (shown, kept)] == [ReservationStatus.CONFIRMED] * 2
    assert room_event(binding, kept) is not None and room_event(binding, shown) is not None
    assert (again.cancelled, again.created, again.updated) == (0, 0, 0)


def test_a_booking_moved_out_of_the_window_while_the_cursor_was_lost_is_moved(
    binding, remote, owner, django_capture_on_commit_callbacks
):
    """The same full read does not see an event moved past the window either: it is looked
    up by our tag and taken as the move it is (the horizon refuses it, so it is written back)
    rather than cancelled."""
    pull.pull_binding(binding.pk)
    booked = book(binding, owner, 10, django_capture_on_commit_callbacks)
    far = utc(binding, 10) + timedelta(days=200)
    remote.move(booked.sync_link.external_id, far, far + timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = pull.pull_binding(binding.pk, full=True)
        tasks.dispatch(result.next)  # the write-back push, as the task queues it

    booked.refresh_from_db()
    assert (result.cancelled, result.restored) == (0, 1)
    assert (booked.status, booked.start) == (ReservationStatus.CONFIRMED, utc(binding, 10))
    event = room_event(binding, booked)
    assert (event.start, event.end) == (utc(binding, 10), utc(binding, 11))


def test_google_deletions_cost_no_look_up(
    google_binding, sandbox, owner, django_capture_on_commit_callbacks
):
    """Only Graph reports a move out of the window as a removal: a Google deletion is a
    deletion, read in one request, with no look-up by tag behind it."""
    from tests.calendars.conftest import control

    pull.pull_binding(google_binding.pk)
    booked = book(google_binding, owner, 10, django_capture_on_commit_callbacks)
    Remote(sandbox, "google").delete(booked.sync_link.external_id)
    control(sandbox, "DELETE", "counters")

    assert pull_now(google_binding, django_capture_on_commit_callbacks).cancelled == 1
    assert control(sandbox, "GET", "counters")["service"] == {"google-calendar": 1}
