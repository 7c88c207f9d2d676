"""iCalendar feeds: parsed back and checked against the bookings; ETag/304; rotate/revoke;
keys stored hashed and shown once; last use recorded."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
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


def shown_key(response) -> str:
    """The key in the feed address a page shows (once, right after issuing it)."""
    assert response.status_code == 200, response.content
    found = re.search(
        r"https?://[^/\s\"]+/feeds/([A-Za-z0-9_-]{43,})\.ics", response.content.decode()
    )
    assert found, "no feed address on the page"
    return found.group(1)


def test_profile_issues_rotates_and_revokes_a_personal_feed(client, make_user, make_space):
    user = make_user("erin")
    client.force_login(user)
    page = client.get("/profile/")
    assert "Create a feed link" in page.content.decode()
    issued = client.post("/feeds/mine/rotate/")
    key = shown_key(issued)
    assert f"webcal://127.0.0.1:8000/feeds/{key}.ics" in issued.content.decode()
    assert "no-store" in issued["Cache-Control"]  # the one page with the address is not cached

    page = client.get("/profile/").content.decode()
    assert key not in page  # shown once: afterwards only that a feed exists
    assert "Your feed is on" in page and "not read by a calendar app yet" in page

    assert client.get(f"/feeds/{key}.ics").status_code == 200
    new_key = shown_key(client.post("/feeds/mine/rotate/"))
    assert client.get(f"/feeds/{key}.ics").status_code == 404  # old address dead
    assert new_key != key and client.get(f"/feeds/{new_key}.ics").status_code == 200
    client.post("/feeds/mine/revoke/")
    assert client.get(f"/feeds/{new_key}.ics").status_code == 404
    assert client.get("/feeds/not-a-key.ics").status_code == 404


def test_no_feed_key_in_a_database_dump(client, make_user, make_space):
    """The key exists only in the URL shown once: not in the table, not in a session."""
    user = make_user("gina")
    client.force_login(user)
    key = shown_key(client.post("/feeds/mine/rotate/", follow=True))
    space_key = feeds.issue(space=make_space()).key
    assert client.get(f"/feeds/{key}.ics").status_code == 200  # the URL works...

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    dump = dump.getvalue()
    assert '"reservations.feedtoken"' in dump
    assert key not in dump and space_key not in dump  # ...and nothing in the database gives it


def test_feed_records_its_last_use_at_most_every_few_minutes(client, make_user, monkeypatch):
    user = make_user()
    key = feeds.issue(user=user).key
    start = timezone.now()
    monkeypatch.setattr("django.utils.timezone.now", lambda: start)
    client.get(f"/feeds/{key}.ics")
    token = FeedToken.objects.get(user=user)
    assert token.last_used_at == start

    monkeypatch.setattr("django.utils.timezone.now", lambda: start + timedelta(minutes=5))
    client.get(f"/feeds/{key}.ics")
    token.refresh_from_db()
    assert token.last_used_at == start  # a poll a few minutes later writes nothing

    later = start + feeds.LAST_USED_RESOLUTION + timedelta(seconds=1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    client.get(f"/feeds/{key}.ics")
    token.refresh_from_db()
    assert token.last_used_at == later
    client.force_login(user)
    assert "last read by a calendar app" in client.get("/profile/").content.decode()


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
    key = feeds.issue(user=user).key

    cal = parse(client.get(f"/feeds/{key}.ics"))
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
    key = feeds.issue(space=space).key
    response = client.get(f"/feeds/{key}.ics")
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
    url = f"/feeds/{feeds.issue(space=space).key}.ics"
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
    response = admin_client.post("/admin/reservations/feedtoken/add/", {"space": space.pk})
    key = shown_key(response)  # shown once, in the answer to "add"
    assert "no-store" in response["Cache-Control"]
    assert admin_client.get(f"/feeds/{key}.ics").status_code == 200
    token = FeedToken.objects.get(space=space, revoked_at__isnull=True)
    assert (
        key
        not in admin_client.get(
            f"/admin/reservations/feedtoken/{token.pk}/change/"
        ).content.decode()
    )

    rotated = admin_client.post(
        "/admin/reservations/feedtoken/",
        {"action": "rotate", "_selected_action": [token.pk]},
    )
    new_key = shown_key(rotated)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert FeedToken.objects.filter(space=space, revoked_at__isnull=True).count() == 1
    assert admin_client.get(f"/feeds/{key}.ics").status_code == 404
    assert admin_client.get(f"/feeds/{new_key}.ics").status_code == 200


def test_admin_shows_owner_and_last_use_never_an_address(client, make_user, make_space):
    """Staff who may only view feed tokens learn who has a feed and when it was last read,
    and nothing that reads anyone's bookings: no address, and no action that issues one."""
    owner = make_user("hana")
    key = feeds.issue(user=owner).key
    space_key = feeds.issue(space=make_space(name="Atrium")).key
    client.get(f"/feeds/{key}.ics")
    viewer = make_user("viewer", is_staff=True, perms=("reservations.view_feedtoken",))
    client.force_login(viewer)
    token = FeedToken.objects.get(user=owner)

    listing = client.get("/admin/reservations/feedtoken/")
    page = client.get(f"/admin/reservations/feedtoken/{token.pk}/change/")
    assert listing.status_code == page.status_code == 200
    for response in (listing, page):
        body = response.content.decode()
        assert "hana" in body  # the owner
        assert key not in body and space_key not in body and "/feeds/" not in body
    assert "Last used at" in page.content.decode()

    for action in ("rotate", "revoke"):
        client.post(
            "/admin/reservations/feedtoken/",
            {
                "action": action,
                "_selected_action": list(FeedToken.objects.values_list("pk", flat=True)),
            },
        )
    assert FeedToken.objects.filter(revoked_at__isnull=True).count() == 2  # nothing issued
    assert client.get(f"/feeds/{key}.ics").status_code == 200


def test_admin_rotating_a_personal_feed_only_revokes_it(admin_client, make_user):
    owner = make_user("ivan")
    key = feeds.issue(user=owner).key
    token = FeedToken.objects.get(user=owner)
    response = admin_client.post(
        "/admin/reservations/feedtoken/",
        {"action": "rotate", "_selected_action": [token.pk]},
        follow=True,
    )
    assert "/feeds/" not in response.content.decode()  # no address of someone's bookings
    assert "can get a new link on their profile page" in response.content.decode()
    assert not FeedToken.objects.filter(user=owner, revoked_at__isnull=True).exists()
    assert admin_client.get(f"/feeds/{key}.ics").status_code == 404
