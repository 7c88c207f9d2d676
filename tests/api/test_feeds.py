"""iCalendar feeds: parsed back and checked against the bookings; ETag/304; rotate/revoke."""

from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar

from reservations import feeds, services
from reservations.models import FeedToken
from reservations.notifications import reservation_uid
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db


def parse(response) -> Calendar:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def events(cal: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def test_profile_issues_rotates_and_revokes_a_personal_feed(client, make_user, make_space):
    user = make_user("erin")
    client.force_login(user)
    page = client.get("/profile/")
    assert "Create a feed link" in page.content.decode()
    client.post("/feeds/mine/rotate/")
    token = FeedToken.objects.get(user=user, revoked_at__isnull=True)
    assert len(token.key) >= 43
    page = client.get("/profile/").content.decode()
    assert f"webcal://127.0.0.1:8000/feeds/{token.key}.ics" in page

    assert client.get(f"/feeds/{token.key}.ics").status_code == 200
    client.post("/feeds/mine/rotate/")
    assert client.get(f"/feeds/{token.key}.ics").status_code == 404  # old address dead
    new = FeedToken.objects.get(user=user, revoked_at__isnull=True)
    assert new.key != token.key and client.get(f"/feeds/{new.key}.ics").status_code == 200
    client.post("/feeds/mine/revoke/")
    assert client.get(f"/feeds/{new.key}.ics").status_code == 404
    assert client.get("/feeds/not-a-key.ics").status_code == 404


def test_personal_feed_matches_the_bookings(client, make_user, make_space, make_location):
    location = make_location(time_zone="America/Chicago")
    space = make_space(location, name="Prairie")
    user = make_user()
    other = make_user()
    day = next_weekday(3)
    kept = services.book(
        actor=user,
        space=space,
        start=local(location, day, 9),
        end=local(location, day, 10),
        title="Planning",
    ).reservations[0]
    gone = services.book(
        actor=user, space=space, start=local(location, day, 11), end=local(location, day, 12)
    ).reservations[0]
    services.cancel(actor=user, reservation=gone)
    services.book(
        actor=other, space=space, start=local(location, day, 14), end=local(location, day, 15)
    )
    token = feeds.issue(user=user)

    cal = parse(client.get(f"/feeds/{token.key}.ics"))
    found = events(cal)
    assert set(found) == {reservation_uid(kept), reservation_uid(gone)}
    event = found[reservation_uid(kept)]
    assert str(event["SUMMARY"]) == "Planning"
    assert event.decoded("DTSTART") == kept.start
    assert event.decoded("DTEND") == kept.end
    assert event["DTSTART"].params["TZID"] == "America/Chicago"
    assert int(event["SEQUENCE"]) == kept.version
    assert str(found[reservation_uid(gone)]["STATUS"]) == "CANCELLED"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["America/Chicago"]


def test_space_feed_shows_busy_blocks_only(client, make_user, make_space):
    space = make_space(name="Boardroom")
    user = make_user("frank", first_name="Frank")
    day = next_weekday(2)
    secret = services.book(
        actor=user,
        space=space,
        start=local(space.location, day, 9),
        end=local(space.location, day, 10),
        title="Layoffs",
        description="Confidential",
    ).reservations[0]
    public = services.book(
        actor=user,
        space=space,
        start=local(space.location, day, 11),
        end=local(space.location, day, 12),
        title="Internal title",
        public_nickname="Town hall",
    ).reservations[0]
    token = feeds.issue(space=space)
    response = client.get(f"/feeds/{token.key}.ics")
    found = events(parse(response))
    assert str(found[reservation_uid(secret)]["SUMMARY"]) == "Reserved"
    assert str(found[reservation_uid(public)]["SUMMARY"]) == "Town hall"
    body = response.content.decode()
    for private in ("Layoffs", "Confidential", "Internal title", "frank", "Frank"):
        assert private not in body


def test_etag_and_304_until_something_changes(client, make_user, make_space):
    space = make_space()
    user = make_user()
    day = next_weekday(4)
    reservation = services.book(
        actor=user,
        space=space,
        start=local(space.location, day, 9),
        end=local(space.location, day, 10),
    ).reservations[0]
    token = feeds.issue(space=space)
    url = f"/feeds/{token.key}.ics"
    first = client.get(url)
    etag = first["ETag"]
    assert etag
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    services.change(
        actor=user,
        reservation=reservation,
        start=reservation.start + timedelta(hours=1),
        end=reservation.end + timedelta(hours=1),
    )
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_admin_issues_and_rotates_a_space_feed(admin_client, make_space):
    space = make_space()
    response = admin_client.post(
        "/admin/reservations/feedtoken/add/", {"space": space.pk}, follow=True
    )
    assert response.status_code == 200
    token = FeedToken.objects.get(space=space, revoked_at__isnull=True)
    admin_client.post(
        "/admin/reservations/feedtoken/",
        {"action": "rotate", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert FeedToken.objects.filter(space=space, revoked_at__isnull=True).count() == 1
