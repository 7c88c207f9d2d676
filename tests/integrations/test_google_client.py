"""GoogleClient against the sandbox: real google-auth, real requests, real HTTPS.

Each test gets a fresh sandbox and an empty service-account credentials cache. Waits inside
the client are recorded and move the sandbox clock instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from integrations.base import (
    AuthenticationFailed,
    BatchOp,
    CalendarGone,
    CalendarRef,
    ConsentMissing,
    EventGone,
    SyncTokenExpired,
    TlsError,
    VersionConflict,
)
from integrations.google.mapping import EVENT_ID_RE, event_id
from integrations.sandbox.testing import SandboxHandle
from tests.support.google_client import (
    ALICE,
    ATLAS,
    ATLAS_CAL,
    BLOCKER,
    BLOCKER_CAL,
    BOREALIS,
    COSMOS,
    START,
    booking,
    control,
    key_info,
    make_client,
    request_log,
    running_sandbox,
    stored_events,
)

WINDOW = (START - timedelta(days=1), START + timedelta(days=7))


@pytest.fixture
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    yield from running_sandbox(tmp_path_factory)


# -- connection and errors -------------------------------------------------------------------


def test_connection_succeeds_for_a_delegated_writer(sandbox):
    make_client(sandbox).test_connection(ATLAS_CAL)
    make_client(sandbox).test_connection(BLOCKER_CAL)  # the delegated user's own calendar


def test_the_registry_names_this_client():
    from integrations.google.client import GoogleClient
    from integrations.registry import client_class

    assert client_class("google") is GoogleClient


def test_connection_asks_for_a_new_token_every_time(sandbox):
    client = make_client(sandbox)
    client.test_connection(ATLAS_CAL)
    client.test_connection(ATLAS_CAL)
    client.find_by_reservation(ATLAS_CAL, 1)  # ordinary calls reuse the cached token

    assert len(request_log(sandbox, "google-oauth")) == 2


def test_service_account_without_delegation_is_consent_missing(sandbox):
    client = make_client(sandbox, service_account_key=key_info(sandbox, "no-delegation"))

    with pytest.raises(ConsentMissing) as caught:
        client.test_connection(ATLAS_CAL)

    assert "has no domain-wide delegation" in caught.value.message
    assert "no-delegation@reserva-sandbox.iam.gserviceaccount.com" in caught.value.message
    assert caught.value.code == "unauthorized_client"


def test_resource_calendar_as_subject_is_refused_in_plain_words(sandbox):
    client = make_client(sandbox, delegated_user=ATLAS)

    with pytest.raises(AuthenticationFailed) as caught:
        client.test_connection(ATLAS_CAL)

    assert "is a resource calendar" in caught.value.message
    assert "calendar id" in caught.value.message


def test_subject_outside_the_domain_is_refused(sandbox):
    client = make_client(sandbox, delegated_user="mallory@elsewhere.test")

    with pytest.raises(AuthenticationFailed) as caught:
        client.test_connection(ATLAS_CAL)

    assert "mallory@elsewhere.test is not an active user" in caught.value.message


def test_service_account_acting_as_itself_cannot_invite_rooms(sandbox):
    client = make_client(sandbox, delegated_user="")

    with pytest.raises(ConsentMissing) as caught:
        client.create_event(CalendarRef("", "primary"), booking(41, resources=(ATLAS,)))

    assert "acting as itself" in caught.value.message
    assert caught.value.code == "forbiddenForServiceAccounts"


def test_unknown_calendar_is_calendar_gone(sandbox):
    with pytest.raises(CalendarGone) as caught:
        unknown = "c_0000@resource.calendar.google.com"
        make_client(sandbox).test_connection(CalendarRef(unknown, unknown))
    assert caught.value.status == 404


def test_reader_of_a_resource_cannot_write(sandbox):
    client = make_client(sandbox, delegated_user=ALICE)  # Alice only reads Atlas

    with pytest.raises(ConsentMissing) as connection:
        client.test_connection(ATLAS_CAL)
    with pytest.raises(ConsentMissing) as create:
        client.create_event(ATLAS_CAL, booking())

    assert "can only read" in connection.value.message
    assert "cannot write to this calendar" in create.value.message
    assert create.value.code == "requiredAccessLevel"


def test_a_key_google_does_not_know_is_refused(sandbox):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    client = make_client(sandbox, service_account_key=key_info(sandbox) | {"private_key": pem})

    with pytest.raises(AuthenticationFailed) as caught:
        client.test_connection(ATLAS_CAL)

    assert "deleted or replaced" in caught.value.message
    assert "PRIVATE KEY" not in str(caught.value)


def test_a_malformed_key_never_shows_up_in_the_message(sandbox):
    broken = key_info(sandbox) | {"private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n"}
    client = make_client(sandbox, service_account_key=broken)

    with pytest.raises(AuthenticationFailed) as caught:
        client.test_connection(ATLAS_CAL)

    assert caught.value.code == "bad_key"
    assert "c2VjcmV0" not in str(caught.value) and "PRIVATE" not in str(caught.value)


def test_untrusted_certificate_is_a_tls_error(sandbox):
    client = make_client(sandbox, ca_bundle=None)  # the public CAs: the sandbox's is not one

    with pytest.raises(TlsError) as caught:
        client.test_connection(ATLAS_CAL)

    assert "CA bundle" in caught.value.message


def test_expired_access_token_is_refreshed_once(sandbox):
    client = make_client(sandbox)
    client.test_connection(ATLAS_CAL)
    # google-auth still trusts its token (its own clock); the sandbox says it expired.
    sandbox.sandbox.advance_clock(2 * 3600)

    assert client.find_by_reservation(ATLAS_CAL, 1) is None

    statuses = [e["status"] for e in request_log(sandbox)]
    assert statuses.count(401) == 1


# -- events ----------------------------------------------------------------------------------


def test_create_in_a_room_calendar_tags_the_event_and_uses_local_time(sandbox):
    client = make_client(sandbox)

    event = client.create_event(ATLAS_CAL, booking(41))

    assert event.id == event_id(41) == "reserva0000000041"
    assert EVENT_ID_RE.match(event.id)
    assert event.reservation_id == 41
    assert event.start == START and event.end == START + timedelta(hours=1)
    assert event.start.utcoffset() == timedelta(0)
    assert event.version and event.ical_uid
    (stored,) = stored_events(sandbox, ATLAS)
    assert stored["start"] == {"dateTime": "2030-01-07T09:00:00+00:00", "timeZone": "Europe/London"}
    assert stored["extendedProperties"] == {"private": {"reservation_id": "41"}}


def test_rooms_are_invited_as_resources_and_their_answer_comes_back(sandbox):
    client = make_client(sandbox)
    client.create_event(ATLAS_CAL, booking(7, hour=9))  # Atlas is busy 9-10

    free = client.create_event(BLOCKER_CAL, booking(41, hour=11, resources=(BOREALIS,)))
    busy = client.create_event(
        BLOCKER_CAL, booking(42, hour=9, resources=(ATLAS,), attendees=(ALICE,))
    )
    sandbox.sandbox.wait_idle()

    assert free.resource_response == "none"  # the room answers later
    assert client.get_event(BLOCKER_CAL, free.id).resource_response == "accepted"
    assert client.get_event(BLOCKER_CAL, busy.id).resource_response == "declined"
    (held,) = [e for e in stored_events(sandbox, BLOCKER) if e["id"] == busy.id]
    assert {"email": ATLAS, "resource": True, "responseStatus": "declined"} in held["attendees"]
    assert any(a["email"] == ALICE and not a.get("resource") for a in held["attendees"])


def test_create_twice_makes_one_event(sandbox):
    client = make_client(sandbox)

    first = client.create_event(ATLAS_CAL, booking(41))
    second = client.create_event(ATLAS_CAL, booking(41))

    assert second.id == first.id
    assert len(stored_events(sandbox, ATLAS)) == 1


def test_an_id_held_by_a_deleted_event_moves_to_the_next_generation(sandbox):
    client = make_client(sandbox)
    first = client.create_event(ATLAS_CAL, booking(41))
    client.delete_event(ATLAS_CAL, first.id)

    again = client.create_event(ATLAS_CAL, booking(41))

    assert again.id == event_id(41, 1) == "reserva0000000041g1"
    assert EVENT_ID_RE.match(again.id)
    assert client.create_event(ATLAS_CAL, booking(41)).id == again.id  # still idempotent


def test_an_id_held_by_someone_elses_event_is_not_adopted(sandbox):
    control(
        sandbox,
        "POST",
        f"/calendars/{ATLAS}/events",
        json={
            "id": event_id(41),
            "summary": "Not ours",
            "start": {"dateTime": "2030-01-08T09:00:00Z"},
            "end": {"dateTime": "2030-01-08T10:00:00Z"},
        },
    )

    event = make_client(sandbox).create_event(ATLAS_CAL, booking(41))

    assert event.id == event_id(41, 1) and event.reservation_id == 41


def test_update_with_the_etag_and_a_stale_etag_is_a_version_conflict(sandbox):
    client = make_client(sandbox)
    created = client.create_event(ATLAS_CAL, booking(41))

    moved = client.update_event(
        ATLAS_CAL, created.id, booking(41, hour=14, subject="Moved"), version=created.version
    )

    assert moved.start == START.replace(hour=14) and moved.subject == "Moved"
    assert moved.version != created.version
    with pytest.raises(VersionConflict) as caught:
        client.update_event(ATLAS_CAL, created.id, booking(41, hour=15), version=created.version)
    assert caught.value.status == 412
    assert client.get_event(ATLAS_CAL, created.id).start == START.replace(hour=14)


def test_update_of_a_deleted_or_unknown_event_is_event_gone(sandbox):
    client = make_client(sandbox)
    created = client.create_event(ATLAS_CAL, booking(41))
    client.delete_event(ATLAS_CAL, created.id)

    with pytest.raises(EventGone):
        client.update_event(ATLAS_CAL, created.id, booking(41, hour=14))
    with pytest.raises(EventGone):
        client.update_event(ATLAS_CAL, "unknown00000", booking(41, hour=14))


def test_delete_twice_and_delete_unknown_are_fine(sandbox):
    client = make_client(sandbox)
    created = client.create_event(ATLAS_CAL, booking(41))

    client.delete_event(ATLAS_CAL, created.id, version=created.version)
    client.delete_event(ATLAS_CAL, created.id)  # 410 deleted
    client.delete_event(ATLAS_CAL, "unknown00000")  # 404

    assert client.find_by_reservation(ATLAS_CAL, 41) is None


def test_delete_with_a_stale_etag_is_a_version_conflict(sandbox):
    client = make_client(sandbox)
    created = client.create_event(ATLAS_CAL, booking(41))
    client.update_event(ATLAS_CAL, created.id, booking(41, hour=14))

    with pytest.raises(VersionConflict):
        client.delete_event(ATLAS_CAL, created.id, version=created.version)


def test_find_by_reservation(sandbox):
    client = make_client(sandbox)
    client.create_event(ATLAS_CAL, booking(41))
    client.create_event(ATLAS_CAL, booking(42, hour=11))

    found = client.find_by_reservation(ATLAS_CAL, 42)

    assert found is not None and found.reservation_id == 42 and found.id == event_id(42)
    assert client.find_by_reservation(ATLAS_CAL, 43) is None


def test_read_events_by_id_and_no_tagged_window_read(sandbox):
    """The change feed carries the tag, so the engine never needs these; they still answer
    as the interface says: events by id (None for a deleted or unknown one), and None for
    the windowed read."""
    client = make_client(sandbox)
    kept = client.create_event(ATLAS_CAL, booking(41))
    doomed = client.create_event(ATLAS_CAL, booking(42, hour=11))
    client.delete_event(ATLAS_CAL, doomed.id)

    read = client.read_events(ATLAS_CAL, [kept.id, doomed.id, "unknown00000"])

    assert read == {kept.id: read[kept.id], doomed.id: None, "unknown00000": None}
    assert read[kept.id].reservation_id == 41 and read[kept.id].version == kept.version
    assert client.tagged_events(ATLAS_CAL, *WINDOW) is None
    assert type(client).reads_tags_by_id is False


def test_list_calendars_of_the_delegated_user(sandbox):
    calendars = {c.id: c for c in make_client(sandbox).list_calendars(BLOCKER_CAL)}

    assert calendars[BLOCKER].is_default and calendars[BLOCKER].can_edit
    assert calendars[ATLAS].name == "Atlas (4th floor)" and calendars[ATLAS].can_edit
    reader = {
        c.id: c
        for c in make_client(sandbox, delegated_user=ALICE).list_calendars(CalendarRef(ALICE))
    }
    assert not reader[ATLAS].can_edit


# -- batch -----------------------------------------------------------------------------------


def test_batch_creates_updates_and_deletes_with_per_part_results(sandbox):
    client = make_client(sandbox)
    existing = client.create_event(ATLAS_CAL, booking(1, hour=8))
    doomed = client.create_event(ATLAS_CAL, booking(2, hour=10))

    results = client.batch(
        ATLAS_CAL,
        [
            BatchOp("new", "create", booking(3, hour=12)),
            BatchOp("again", "create", booking(1, hour=8)),  # 409 -> the existing event
            BatchOp("move", "update", booking(2, hour=16), event_id=doomed.id),
            BatchOp("stale", "update", booking(1, hour=7), event_id=existing.id, version='"1"'),
            BatchOp("drop", "delete", event_id=doomed.id),
            BatchOp("ghost", "delete", event_id="unknown00000"),
        ],
    )

    by_key = {r.key: r for r in results}
    assert [r.key for r in results] == ["new", "again", "move", "stale", "drop", "ghost"]
    assert by_key["new"].ok and by_key["new"].event.reservation_id == 3
    assert by_key["again"].ok and by_key["again"].event.id == existing.id
    assert by_key["move"].ok and by_key["move"].event.start == START.replace(hour=16)
    assert isinstance(by_key["stale"].error, VersionConflict)
    assert by_key["drop"].ok and by_key["ghost"].ok
    live = [e for e in stored_events(sandbox, ATLAS) if e["status"] != "cancelled"]
    assert sorted(e["id"] for e in live) == [event_id(1), event_id(3)]


def test_batch_retries_throttled_parts_after_a_backoff(sandbox):
    waits: list[float] = []
    client = make_client(sandbox, waits, minute=True)
    control(sandbox, "PUT", "/limits", json={"requests_per_minute": 3})

    results = client.batch(
        ATLAS_CAL, [BatchOp(str(i), "create", booking(i, hour=8 + i)) for i in range(5)]
    )

    assert all(r.ok for r in results), [r.error for r in results]
    assert len(waits) >= 1  # the throttled parts waited, then went through
    assert len([e for e in stored_events(sandbox, ATLAS)]) == 5


def test_batch_over_fifty_is_split(sandbox):
    client = make_client(sandbox)
    ops = [BatchOp(str(i), "create", booking(100 + i, subject=f"#{i}")) for i in range(60)]

    results = client.batch(BLOCKER_CAL, ops)

    assert [r.key for r in results] == [str(i) for i in range(60)]
    assert all(r.ok for r in results)
    outer = [e for e in request_log(sandbox) if e["path"].endswith("/batch/calendar/v3")]
    assert len(outer) == 2


# -- sync ------------------------------------------------------------------------------------


def _drain(client, calendar, token):
    events, pages = [], 0
    while True:
        page = client.changes(CalendarRef(calendar, calendar), token, *WINDOW)
        events += page.events
        pages += 1
        if page.sync_token:
            return events, page.sync_token, pages
        token = page.next_page


def test_full_sync_pages_then_incremental_changes_and_removals(sandbox):
    client = make_client(sandbox)
    client.page_size = 2
    for i in range(5):
        client.create_event(ATLAS_CAL, booking(i + 1, hour=8 + i))
    client.create_event(ATLAS_CAL, booking(99, start=START + timedelta(days=30),
                                        end=START + timedelta(days=30, hours=1)))  # fmt: skip

    events, token, pages = _drain(client, ATLAS, None)

    assert pages == 3 and sorted(e.reservation_id for e in events) == [1, 2, 3, 4, 5]
    client.delete_event(ATLAS_CAL, event_id(2))
    control(
        sandbox, "PATCH", f"/calendars/{ATLAS}/events/{event_id(3)}", json={"summary": "Renamed"}
    )
    control(
        sandbox,
        "POST",
        f"/calendars/{ATLAS}/events",
        json={
            "summary": "From Google",
            "start": {"date": "2030-01-09"},
            "end": {"date": "2030-01-10"},
        },
    )

    changed, token2, _ = _drain(client, ATLAS, token)

    by_id = {e.id: e for e in changed}
    assert by_id[event_id(2)].removed
    assert by_id[event_id(3)].subject == "Renamed" and not by_id[event_id(3)].removed
    (from_google,) = [e for e in changed if e.subject == "From Google"]
    assert from_google.is_all_day and from_google.reservation_id is None
    assert token2 != token
    assert _drain(client, ATLAS, token2)[0] == []


def test_expired_sync_token_raises_then_full_sync_works(sandbox):
    client = make_client(sandbox)
    client.create_event(ATLAS_CAL, booking(1))
    _, token, _ = _drain(client, ATLAS, None)
    control(sandbox, "POST", "/sync-tokens/expire", json={"calendar": ATLAS})

    with pytest.raises(SyncTokenExpired):
        client.changes(ATLAS_CAL, token, *WINDOW)

    events, _, _ = _drain(client, ATLAS, None)
    assert [e.reservation_id for e in events] == [1]


def test_all_day_event_is_midnight_to_midnight_in_the_calendar_zone(sandbox):
    control(
        sandbox,
        "POST",
        f"/calendars/{ATLAS}/events",
        json={
            "summary": "Offsite",
            "start": {"date": "2030-01-08", "timeZone": "America/New_York"},
            "end": {"date": "2030-01-09", "timeZone": "America/New_York"},
        },
    )

    events, _, _ = _drain(make_client(sandbox), ATLAS, None)

    (offsite,) = events
    assert offsite.is_all_day
    assert offsite.start.isoformat() == "2030-01-08T05:00:00+00:00"
    assert offsite.end - offsite.start == timedelta(days=1)


# -- free/busy -------------------------------------------------------------------------------


def test_free_busy_reports_busy_rooms_and_leaves_unknown_ones_out(sandbox):
    client = make_client(sandbox)
    client.create_event(ATLAS_CAL, booking(1, hour=9))
    unknown = [f"c_{i:04d}@resource.calendar.google.com" for i in range(55)]

    busy = client.free_busy([CalendarRef(c, c) for c in (ATLAS, COSMOS, *unknown)], *WINDOW)

    cosmos = CalendarRef(COSMOS, COSMOS)
    assert busy == {ATLAS_CAL: [(START, START + timedelta(hours=1))], cosmos: []}
    assert len([e for e in request_log(sandbox) if e["path"].endswith("/freeBusy")]) == 2
