"""Reserva never imports its own events (issue 12, item 2): a pull that reads a just-created
event before the push has saved its id must not take it for a new remote booking.

The race is driven deterministically: the provider client's create is wrapped so that, once
the real create has landed in the sandbox and before the push saves the event id on its
link, a real pull of the room runs (the whole pull: delta, attribution, plan, apply). Only
the moment is chosen; nothing of the pull or the planner is replaced. The worker test at the
end races a real Celery worker's push (its create answer held back by the sandbox) against a
pull in this process, over PostgreSQL and Redis.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from calendars import remote as remote_calendar
from calendars.models import SyncLink
from calendars.sync import pull
from calendars.sync.push import push_reservation
from integrations.base import TransientError
from reservations import services
from reservations.models import EventTitle, Reservation, ReservationStatus
from tests.calendars.conftest import (
    MS_ROOM,
    ROOMS,
    binding_for,
    control,
    hold_graph_answer,
    remote_events,
    sync_worker,
)
from tests.conftest import local, next_weekday, wait_for

EWS_READY = True


@pytest.fixture
def binding(kind, request):
    return binding_for(kind, request)


def _book(binding, make_user, hour: int = 10) -> Reservation:
    location = binding.space.location
    location.event_title = EventTitle.PUBLIC_NICKNAME  # the echo's title was the nickname
    location.save(update_fields=["event_title"])
    owner = make_user(email="owner@example.test")
    start = local(location, next_weekday(2), hour)
    return services.book(
        actor=owner,
        space=binding.space,
        start=start,
        end=start + timedelta(hours=1),
        public_nickname="Design sync",
    ).reservations[0]


def _pull_inside_create(monkeypatch, binding, during) -> list:
    """Make the next create of this provider's client class call ``during(event)`` once the
    event exists remotely and before it returns to the push; what ``during`` returns is kept.
    (The class, not a cached instance: the push may build its own client.)"""
    cls = type(remote_calendar.client_for(binding.provider))
    real = cls.create_event
    seen: list = []

    def create_then_race(self, *args, **kwargs):
        event = real(self, *args, **kwargs)
        if not seen:
            seen.append(during(event))
        return event

    monkeypatch.setattr(cls, "create_event", create_then_race)
    return seen


def test_a_pull_between_the_create_and_the_saved_id_imports_nothing(
    binding, kind, sandbox, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    """Before the fix, Graph's pull filed the just-created event as a conflicting "Exchange"
    booking titled with the nickname and emailed the owner a false "Booking conflict"; the
    event then stayed linked to two reservations. Google's pull matched the event by its tag
    but wrote the link under the running push (on PostgreSQL, over the push's own record)."""
    pull.pull_binding(binding.pk)  # the cursor, before anything exists
    booked = _book(binding, make_user)
    mail.outbox.clear()

    def race(event):
        assert [e["id"] for e in remote_events(sandbox, kind, ROOMS[kind])] == [event.id]
        assert SyncLink.objects.get(reservation=booked).external_id == ""  # not saved yet
        result = pull.pull_binding(binding.pk)
        return result, SyncLink.objects.get(reservation=booked).external_id

    raced = _pull_inside_create(monkeypatch, binding, race)
    with django_capture_on_commit_callbacks(execute=True):
        assert push_reservation(booked.pk).op == "create"
    ((during, link_id_during),) = raced
    assert (during.status, during.created, during.conflicts) == ("succeeded", 0, 0)
    assert link_id_during == "", "the pull wrote the link of a create still in flight"
    assert list(Reservation.objects.filter(space=binding.space)) == [booked]
    assert not [m.subject for m in mail.outbox], "an email about our own event"

    (event,) = remote_events(sandbox, kind, ROOMS[kind])
    link = SyncLink.objects.get(reservation=booked)
    assert (link.external_id, link.pushed_version) == (event["id"], booked.version)
    assert link.creating_at is None  # the mark went with the saved id
    assert SyncLink.objects.filter(external_id=event["id"]).count() == 1

    after = pull.pull_binding(binding.pk)  # the room is quiet, and stays so
    assert (after.created, after.updated, after.cancelled, after.conflicts) == (0, 0, 0, 0)
    assert list(Reservation.objects.filter(space=binding.space)) == [booked]
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CONFIRMED


def test_our_event_deleted_before_its_id_is_saved_still_cancels_the_booking(
    binding, kind, sandbox, make_user, monkeypatch, django_capture_on_commit_callbacks, request
):
    """Someone deletes our new event in Outlook / Google before the push has saved its id. A
    pull in between met the removal of an id it did not know and skipped it for good; the
    push then recorded the deleted event, and the booking stayed confirmed with no event
    (the convergence run, seed 32494637 on Microsoft). The pull now waits for the push."""
    from tests.support.pull import Remote

    if kind == "ews":  # a known gap, kept visible: strict, so its fix shows
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "SyncFolderItems collapses a create and a delete between two syncs into nothing"
            " (as Exchange does), so the pull never sees a removal to wait on; the fix"
            " (a pull that defers while a recent create in flight is missing from the feed,"
            " or a push that re-reads the event it records) is not made yet")))  # fmt: skip
    pull.pull_binding(binding.pk)
    booked = _book(binding, make_user)

    def race(event):
        Remote(sandbox, kind).delete(event.id)
        try:
            return pull.pull_binding(binding.pk).status
        except TransientError as exc:
            return exc.code

    raced = _pull_inside_create(monkeypatch, binding, race)
    with django_capture_on_commit_callbacks(execute=True):
        assert push_reservation(booked.pk).op == "create"

    with django_capture_on_commit_callbacks(execute=True):
        after = pull.pull_binding(binding.pk)
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CANCELLED, "confirmed with no event"
    assert (after.status, after.cancelled) == ("succeeded", 1)
    assert remote_events(sandbox, kind, ROOMS[kind]) == []
    assert raced == ["create_in_flight"]  # the pull in between waited for the push


def test_an_event_made_anew_after_a_remote_delete_is_announced_first(
    binding, kind, sandbox, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    """Our event is deleted in Outlook / Google, then the booking changes: the push's update
    meets "gone" and the event is made anew. That create went out unannounced, so a pull
    reading the new event first filed it as a conflicting remote booking (convergence run,
    seed 32494637 on Microsoft: one event linked from the booking and from the conflict).
    The push now leaves the create to its next attempt, which announces it."""
    from tests.support.pull import Remote

    pull.pull_binding(binding.pk)
    booked = _book(binding, make_user)
    with django_capture_on_commit_callbacks(execute=True):
        push_reservation(booked.pk)
    pull.pull_binding(binding.pk)  # our own create echoed back
    Remote(sandbox, kind).delete(SyncLink.objects.get(reservation=booked).external_id)
    booked = services.change(actor=None, reservation=booked, public_nickname="Board")[0]

    def race(event):
        try:
            return pull.pull_binding(binding.pk).status
        except TransientError as exc:
            return exc.code

    raced = _pull_inside_create(monkeypatch, binding, race)
    with pytest.raises(TransientError) as first:  # gone: the id is forgotten, nothing sent
        push_reservation(booked.pk)
    assert first.value.code == "event_to_recreate" and raced == []
    with django_capture_on_commit_callbacks(execute=True):
        assert push_reservation(booked.pk).op == "create"  # announced, then sent
    with django_capture_on_commit_callbacks(execute=True):
        pull.pull_binding(binding.pk)

    assert not Reservation.objects.filter(status=ReservationStatus.CONFLICTED).exists()
    assert list(Reservation.objects.filter(space=binding.space)) == [booked]
    (event,) = remote_events(sandbox, kind, ROOMS[kind])
    assert SyncLink.objects.get(reservation=booked).external_id == event["id"]
    assert SyncLink.objects.filter(external_id=event["id"]).count() == 1


def test_a_person_s_event_during_our_create_is_still_imported(
    ms_binding, sandbox, make_user, monkeypatch
):
    """The rule defers nothing it can tell apart: an Outlook booking made while our create is
    in flight (read, untagged) becomes a remote booking in that very pull."""
    pull.pull_binding(ms_binding.pk)
    booked = _book(ms_binding, make_user, hour=10)
    other = local(ms_binding.space.location, next_weekday(2), 14)

    def race(event):
        control(sandbox, "POST", f"microsoft/mailboxes/{MS_ROOM}/events", json={
            "subject": "Walk-in",
            "start": {"dateTime": other.strftime("%Y-%m-%dT%H:%M:%S"),
                      "timeZone": str(ms_binding.space.location.time_zone)},
            "end": {"dateTime": (other + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": str(ms_binding.space.location.time_zone)},
        })  # fmt: skip
        return pull.pull_binding(ms_binding.pk)

    raced = _pull_inside_create(monkeypatch, ms_binding, race)
    push_reservation(booked.pk)
    ((during,),) = [raced]
    assert (during.created, during.conflicts) == (1, 0)
    rows = Reservation.objects.filter(space=ms_binding.space).order_by("start")
    assert [(r.pk == booked.pk, r.title) for r in rows] == [(True, ""), (False, "Walk-in")]


def test_an_unreadable_event_during_our_create_defers_the_pull(
    ms_binding, sandbox, make_user, monkeypatch
):
    """The read that would tell whose event it is fails: the pull applies nothing and keeps
    its cursor (the retry sees the event again) rather than guess."""
    pull.pull_binding(ms_binding.pk)
    cursor = type(ms_binding).objects.get(pk=ms_binding.pk).sync_token
    booked = _book(ms_binding, make_user)

    def race(event):
        control(sandbox, "POST", "faults", json={"kind": "503", "service": "graph",
                "method": "GET", "path": "/events/", "count": None, "rate": 1.0,
                "retry_after": 0})  # fmt: skip
        try:
            with pytest.raises(TransientError):
                pull.pull_binding(ms_binding.pk)
        finally:
            control(sandbox, "DELETE", "faults")
        return type(ms_binding).objects.get(pk=ms_binding.pk).sync_token

    raced = _pull_inside_create(monkeypatch, ms_binding, race)
    push_reservation(booked.pk)
    assert raced == [cursor]
    assert list(Reservation.objects.filter(space=ms_binding.space)) == [booked]
    again = pull.pull_binding(ms_binding.pk)  # the retry: the id is saved now
    assert (again.created, again.conflicts) == (0, 0)
    assert list(Reservation.objects.filter(space=ms_binding.space)) == [booked]


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_webhook_pull_racing_a_worker_s_push_imports_nothing(ms_binding, sandbox, make_user):
    """A real worker pushes; the sandbox holds the create's answer back 3 s after the event is
    written; meanwhile a pull runs in this process (another worker, as a webhook's would)."""
    pull.pull_binding(ms_binding.pk)
    hold_graph_answer(sandbox, "POST", "/calendar/events$", 3)
    mail.outbox.clear()
    with sync_worker("test-own-events"):
        booked = _book(ms_binding, make_user)  # its push is queued after the commit
        landed = wait_for(lambda: remote_events(sandbox, "microsoft", MS_ROOM), timeout=30)
        assert landed, "the worker's create never reached the room"
        link = SyncLink.objects.get(reservation=booked)
        assert link.external_id == ""  # the push has not saved the id yet
        result = pull.pull_binding(ms_binding.pk)
        assert (result.status, result.created, result.conflicts) == ("succeeded", 0, 0)

        def recorded():
            return SyncLink.objects.filter(reservation=booked).exclude(external_id="").exists()

        assert wait_for(recorded, timeout=30), "the push never saved the event id"
    (event,) = remote_events(sandbox, "microsoft", MS_ROOM)
    assert SyncLink.objects.get(reservation=booked).external_id == event["id"]
    assert list(Reservation.objects.filter(space=ms_binding.space)) == [booked]
    quiet = pull.pull_binding(ms_binding.pk)
    assert (quiet.created, quiet.conflicts) == (0, 0)
    assert not [m.subject for m in mail.outbox]


def test_a_pull_during_a_bulk_export_takes_none_of_its_events(
    ms_binding, sandbox, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    """A bulk export's batch lands (a webhook fires for each event) before the export records
    the ids: a pull then must not take its 20 events for 20 conflicting Exchange bookings.
    The pull runs right before the export records the first batch's answers."""
    from calendars import tasks
    from calendars.sync import export
    from tests.support.export_helpers import bulk_reservations

    pull.pull_binding(ms_binding.pk)
    rows = bulk_reservations(ms_binding.space, make_user(), 25)
    real_record = export._record
    raced: list = []

    def pull_then_record(*args, **kwargs):
        if not raced:
            # the first batch, and maybe some of the next (sent while this one is recorded)
            assert len(remote_events(sandbox, "microsoft", MS_ROOM)) >= 20
            raced.append(pull.pull_binding(ms_binding.pk))
        return real_record(*args, **kwargs)

    monkeypatch.setattr(export, "_record", pull_then_record)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.start_export(ms_binding, None)
    ((during,),) = [raced]
    assert (during.status, during.created, during.conflicts) == ("succeeded", 0, 0)
    assert Reservation.objects.filter(space=ms_binding.space).count() == len(rows)
    events = remote_events(sandbox, "microsoft", MS_ROOM)
    assert len(events) == 25
    linked = set(SyncLink.objects.exclude(external_id="").values_list("external_id", flat=True))
    assert linked == {e["id"] for e in events}
    assert not SyncLink.objects.filter(creating_at__isnull=False).exists()
    quiet = pull.pull_binding(ms_binding.pk)
    assert (quiet.created, quiet.conflicts) == (0, 0)


# EWS has no per-person sign-in to connect yet: personal mode on Exchange Server
# (impersonating the person's mailbox) is a later slice of issue 16.
@pytest.mark.kinds("microsoft", "google")
def test_personal_mode_the_room_s_copy_of_a_create_in_flight_is_not_imported(
    binding, kind, sandbox, make_user, monkeypatch
):
    """Personal mode: the event is created in the person's calendar and the room's copy (its
    invitation, accepted) carries no tag of ours. Google's copy keeps our client-chosen id, so
    the pull knows it at once; Graph's has only the times and the iCalUId (which the push
    saves), so a pull that meets it while the create is in flight is deferred, not guessed."""
    from calendars.models import SyncMode, SyncSettings
    from tests.support.push_modes import ALICE, G_ALICE, connect, connect_google

    row = SyncSettings.load()
    row.mode = SyncMode.PERSONAL
    row.save()
    alice = make_user("alice", email=ALICE if kind == "microsoft" else G_ALICE)
    (connect if kind == "microsoft" else connect_google)(sandbox, binding.provider, alice)
    pull.pull_binding(binding.pk)
    start = local(binding.space.location, next_weekday(2), 10)
    booked = services.book(
        actor=alice, space=binding.space, start=start, end=start + timedelta(hours=1)
    ).reservations[0]

    def race(event):
        sandbox.sandbox.wait_idle()  # the room has answered: its copy is in its calendar
        (copy,) = remote_events(sandbox, kind, ROOMS[kind])
        assert "singleValueExtendedProperties" not in copy and "extendedProperties" not in copy
        try:
            return pull.pull_binding(binding.pk)
        except TransientError as exc:
            return exc

    raced = _pull_inside_create(monkeypatch, binding, race)
    assert push_reservation(booked.pk).op == "create"
    (during,) = raced
    if kind == "microsoft":
        assert isinstance(during, TransientError) and during.code == "create_in_flight"
    else:
        assert (during.status, during.created, during.conflicts) == ("succeeded", 0, 0)
    assert list(Reservation.objects.filter(space=binding.space)) == [booked]
    after = pull.pull_binding(binding.pk)  # the push has saved the id and the iCalUId
    assert (after.created, after.conflicts) == (0, 0)
    assert list(Reservation.objects.filter(space=binding.space)) == [booked]


def test_a_push_that_becomes_a_create_under_the_lock_announces_it_first(
    ms_binding, sandbox, make_user, monkeypatch
):
    """The unlocked look saw an update (the link had its event id); by the time the lock is
    held, the id is gone (the export clears it when the event was deleted remotely): the push
    must not send an unannounced create; it is retried, and the retry announces it."""
    from calendars.sync import push as push_module

    booked = _book(ms_binding, make_user)
    assert push_reservation(booked.pk).op == "create"
    real = push_module.announce_create

    def then_lose_the_id(link, *args, **kwargs):
        made = real(link, *args, **kwargs)
        SyncLink.objects.filter(pk=link.pk).update(external_id="")
        return made

    monkeypatch.setattr(push_module, "announce_create", then_lose_the_id)
    posts = sandbox.sandbox.counters["endpoint"].get("graph event create", 0)
    with pytest.raises(TransientError) as raised:
        push_reservation(booked.pk)
    assert raised.value.code == "create_unannounced"
    assert sandbox.sandbox.counters["endpoint"].get("graph event create", 0) == posts
    monkeypatch.setattr(push_module, "announce_create", real)
    assert push_reservation(booked.pk).op == "create"  # announced now; finds ours by its tag
    (event,) = remote_events(sandbox, "microsoft", MS_ROOM)
    link = SyncLink.objects.get(reservation=booked)
    assert (link.external_id, link.creating_at) == (event["id"], None)


def test_a_push_that_sends_nothing_leaves_no_stale_mark_on_a_saved_link(
    binding, kind, sandbox, make_user, monkeypatch
):
    """Two pushes of one booking: the second announced its create while the first was in
    flight, then found the event saved and sent nothing. Withdrawing its mark put back the
    first push's, on a link that had its event: the full read's check skips marked links, so
    a later deletion of the event in Outlook / Google was never seen (convergence run, seed
    23592950 on Microsoft: a confirmed booking with no event, its link "synced")."""
    from calendars.sync import push as push_module
    from tests.support.pull import Remote

    pull.pull_binding(binding.pk)
    booked = _book(binding, make_user)
    push_module.ensure_link(booked, binding)
    first = push_module.announce_create(
        SyncLink.objects.get(reservation=booked), booked, binding, fresh=True
    )  # the first push's mark: its create is in flight
    assert first is not None
    real = push_module.announce_create
    landed: list = []

    def then_the_first_push_lands(link, *args, **kwargs):
        made = real(link, *args, **kwargs)
        if not landed:  # the first push saves its event meanwhile (and clears the marks)
            monkeypatch.setattr(push_module, "announce_create", real)
            landed.append(push_reservation(booked.pk).op)
        return made

    monkeypatch.setattr(push_module, "announce_create", then_the_first_push_lands)
    assert push_reservation(booked.pk).op == "noop"
    assert landed == ["create"]
    link = SyncLink.objects.get(reservation=booked)
    assert link.external_id and link.creating_at is None

    # The event is deleted while the cursor is lost: the full read must still see it gone.
    room = Remote(sandbox, kind)
    room.delete(link.external_id)
    room.expire_cursor()
    pull.pull_binding(binding.pk)
    booked.refresh_from_db()
    assert booked.status == ReservationStatus.CANCELLED


def test_the_retry_of_a_failed_create_is_in_flight_again(
    ms_binding, sandbox, make_user, monkeypatch
):
    """A create landed but its answer was lost (the link failed, no event id). Its retry marks
    the link anew and finds our event by its tag: a pull during that retry leaves the event to
    the retry (it does not write the link under it), and nothing is imported."""
    from integrations.microsoft.client import MicrosoftClient

    pull.pull_binding(ms_binding.pk)
    booked = _book(ms_binding, make_user)
    control(sandbox, "POST", "faults", json={"kind": "drop", "method": "POST",
            "path": "/calendar/events$", "count": 1, "after_write": True})  # fmt: skip
    control(sandbox, "POST", "faults", json={"kind": "500", "method": "POST",
            "path": "/calendar/events$", "count": 1})  # fmt: skip
    with pytest.raises(TransientError):
        push_reservation(booked.pk)
    (event,) = remote_events(sandbox, "microsoft", MS_ROOM)  # it landed all the same

    real = MicrosoftClient.update_event
    raced: list = []

    def pull_then_update(self, *args, **kwargs):
        if not raced:
            result = pull.pull_binding(ms_binding.pk)
            raced.append((result, SyncLink.objects.get(reservation=booked).external_id))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MicrosoftClient, "update_event", pull_then_update)
    assert push_reservation(booked.pk).op == "create"  # the retry: found by tag, updated
    ((during, link_id_during),) = raced
    assert (during.created, during.conflicts) == (0, 0)
    assert link_id_during == "", "the pull wrote the link under the retrying push"
    assert SyncLink.objects.get(reservation=booked).external_id == event["id"]
    assert list(Reservation.objects.filter(space=ms_binding.space)) == [booked]
