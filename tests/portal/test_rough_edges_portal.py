"""The portal's small slips (issue 19, item 5), checked as a person meets them: the offers
after a clash when rescheduling, the schedule on a closed day, quick reservation when the
location is closed, the recurrence fields, the upcoming list's pager, counts and plain words.
"""

from __future__ import annotations

import re
from datetime import time as clock
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from calendars.models import SyncLink
from reservations import services
from reservations.models import Closure, Reservation, Source
from tests.conftest import local, next_weekday
from tests.support.portal import change_form

pytestmark = pytest.mark.django_db

DAY = next_weekday(2)  # a Wednesday next week


def test_a_clash_when_rescheduling_offers_the_same_room_later_and_rooms_as_big(
    alice_client, alice, bob, office
):
    location = office.location
    mine = services.book(
        actor=alice,
        space=office.small,
        start=local(location, DAY, 11, 30),
        end=local(location, DAY, 12, 30),
    ).reservations[0]
    services.book(
        actor=bob, space=office.small, start=local(location, DAY, 10), end=local(location, DAY, 11)
    )
    url = reverse("portal:change", args=[mine.pk])
    response = alice_client.post(url, change_form(mine, start="10:30", end="12:00"))
    assert response.status_code == 409
    # 11:00-12:30 is free once Alice's own booking (11:30-12:30) moves out of the way.
    first = response.context["conflict"].next_free[0]
    assert (f"{first[0]:%H:%M}", f"{first[1]:%H:%M}") == ("11:00", "12:30")
    body = response.content.decode()
    assert "Small room is free next:" in body
    # Other rooms for the 4 people the small room holds: the big room, not the booth or desk.
    assert [space.name for space in response.context["options"]] == ["Big room"]
    assert "Free at the same time for 4 people or more" in body

    taken = f'name="use_time" value="{DAY.isoformat()} 11:00 12:30"'
    assert taken in body
    response = alice_client.post(
        url, {**change_form(mine, start="10:30", end="12:00"), "use_time": taken.split('"')[3]}
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.start, mine.end) == (local(location, DAY, 11), local(location, DAY, 12, 30))
    assert mine.end - mine.start == timedelta(minutes=90)


@pytest.fixture
def weekdays_only(make_location, make_space):
    """An office open 08:00-18:00 Monday to Friday."""
    location = make_location("Works", opens=clock(8), closes=clock(18), weekdays=range(5))
    make_space(location, name="Loft", capacity=6)
    return location


SATURDAY = next_weekday(5, weeks_ahead=0)  # within the session's two weeks


def test_the_schedule_opens_on_the_next_open_day_when_today_is_closed(
    alice_client, weekdays_only, frozen_now
):
    frozen_now(local(weekdays_only, SATURDAY, 10))
    url = reverse("portal:schedule")
    response = alice_client.get(url, {"location": weekdays_only.pk})
    monday = SATURDAY + timedelta(days=2)
    assert response.context["day"] == monday
    body = response.content.decode()
    assert f"Works is not open again today; it opens on Monday {monday.day} " in body
    assert "Book Loft from 08:00" in body
    # After closing time on a Friday: Monday too.
    frozen_now(local(weekdays_only, SATURDAY - timedelta(days=1), 18, 30))
    assert alice_client.get(url, {"location": weekdays_only.pk}).context["day"] == monday
    # Open now: today. A date asked for is shown as it is, closed or not.
    frozen_now(local(weekdays_only, monday, 9))
    response = alice_client.get(url, {"location": weekdays_only.pk})
    assert response.context["day"] == monday and not response.context["notice"]
    response = alice_client.get(url, {"location": weekdays_only.pk, "date": SATURDAY})
    assert response.context["day"] == SATURDAY
    assert "Works is closed on Saturdays." in response.content.decode()


def test_the_schedule_skips_a_closure_of_the_whole_location(
    alice_client, alice, weekdays_only, frozen_now
):
    monday = SATURDAY + timedelta(days=2)
    Closure.objects.create(
        location=weekdays_only, start_date=monday, end_date=monday, reason="Bank holiday"
    )
    frozen_now(local(weekdays_only, SATURDAY, 10))
    response = alice_client.get(reverse("portal:schedule"), {"location": weekdays_only.pk})
    assert response.context["day"] == monday + timedelta(days=1)
    assert "opens on Tuesday" in response.content.decode()


def test_quick_reservation_is_not_offered_while_closed_and_says_when_it_opens(
    alice_client, weekdays_only, frozen_now
):
    frozen_now(local(weekdays_only, SATURDAY, 10))
    body = alice_client.get(reverse("portal:find"), {"location": weekdays_only.pk}).content
    body = body.decode()
    assert 'id="quick-book"' not in body
    monday = SATURDAY + timedelta(days=2)
    assert f"Works is closed now and opens on Monday {monday.day} " in body
    assert "at 08:00 (Europe/London)." in body
    # Before opening on a weekday: today's time; open: the button.
    frozen_now(local(weekdays_only, monday, 7, 30))
    body = alice_client.get(reverse("portal:find"), {"location": weekdays_only.pk}).content
    assert "Works is closed now and opens at 08:00 (Europe/London)." in body.decode()
    frozen_now(local(weekdays_only, monday, 9))
    body = alice_client.get(reverse("portal:find"), {"location": weekdays_only.pk}).content
    assert 'id="quick-book"' in body.decode()
    # Posted anyway (an old page): nothing booked, the same words.
    frozen_now(local(weekdays_only, SATURDAY, 10))
    response = alice_client.post(
        reverse("portal:quick"), {"location": weekdays_only.pk}, follow=True
    )
    assert "Works is closed now and opens on Monday" in response.content.decode()
    assert not Reservation.objects.exists()


def test_the_repeat_fields_say_every_1_weeks_and_tick_the_dates_weekday(alice_client, office):
    response = alice_client.get(
        reverse("portal:book"),
        {"space": office.small.pk, "date": DAY.isoformat(), "start": "10:00", "end": "11:00"},
    )
    body = response.content.decode()
    assert '<span id="interval-unit" data-interval-unit>week(s)</span>' in body
    assert 'aria-describedby="interval-unit"' in body and 'value="1"' in body
    # DAY is a Wednesday (2): that box alone is ticked.
    assert response.context["form"]["weekdays"].value() == [2]
    assert 'value="2" id="id_weekdays_2" checked' in body
    assert 'value="1" id="id_weekdays_1" checked' not in body
    # Sent back with a daily repeat and an error: the unit follows what was chosen.
    response = alice_client.post(
        reverse("portal:book"),
        {
            "space": office.small.pk,
            "date": DAY.isoformat(),
            "start": "10:00",
            "end": "11:00",
            "repeat": "daily",
            "interval": 1,
        },
    )
    assert response.status_code == 400
    assert "data-interval-unit>day(s)</span>" in response.content.decode()


def test_leaving_out_one_taken_date_says_1_date(alice_client, alice, bob, office):
    services.book(
        actor=bob,
        space=office.small,
        start=local(office.location, DAY + timedelta(days=1), 10),
        end=local(office.location, DAY + timedelta(days=1), 11),
    )
    data = {
        "space": office.small.pk,
        "date": DAY.isoformat(),
        "start": "10:00",
        "end": "11:00",
        "repeat": "daily",
        "interval": 1,
        "count": 3,
        "skip_unavailable": "1",
        "title": "",
        "public_nickname": "",
        "description": "",
    }
    response = alice_client.post(reverse("portal:book"), data, follow=True)
    body = response.content.decode()
    assert "Booked Small room on 2 dates. 1 date that was not free was left out." in body


def test_the_upcoming_list_pages_to_later_bookings(alice_client, alice, office, make_reservation):
    for n in range(26):  # one more than a page: 13 hours in each of two spaces
        space = office.desk if n % 2 else office.booth
        make_reservation(space, user=alice, start=local(office.location, DAY, 7 + n // 2))
    first = alice_client.get(reverse("portal:mine")).content.decode()
    assert 'rel="next">Later</a>' in first and "Older" not in first
    second = alice_client.get(reverse("portal:mine"), {"page": 2}).content.decode()
    assert 'rel="prev">Sooner</a>' in second and "Newer" not in second


def test_plain_words_for_sources_and_calendar_connections(alice_client, alice, office):
    booked = services.book(
        actor=alice,
        space=office.small,
        start=local(office.location, DAY, 10),
        end=local(office.location, DAY, 11),
        source=Source.EVENT_PLANNER,
    ).reservations[0]
    body = alice_client.get(reverse("portal:detail", args=[booked.pk])).content.decode()
    assert "· from Schedule</span>" in body and "Event planner" not in body
    assert "Booked</span>" in body and " · Schedule</span>" in body  # the history line
    body = alice_client.get(reverse("calendars:connect")).content.decode()
    assert "personal mode" not in body.lower()
    assert "the rooms you book here are added to your own Microsoft or Google calendar" in body


def test_password_reset_pages_in_reservas_words(client, alice):
    page = client.get(reverse("account_reset_password")).content.decode()
    assert "<h1>Reset your password</h1>" in page and "Email me a reset link" in page
    assert "Reset My Password" not in page and 'class="card auth-card"' in page
    response = client.post(
        reverse("account_reset_password"), {"email": "alice@example.com"}, follow=True
    )
    assert "<h1>Check your email</h1>" in response.content.decode()
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+/", mail.outbox[0].body)
    response = client.get(link.group(0), follow=True)
    body = response.content.decode()
    assert "<h1>Choose a new password</h1>" in body and "Save my new password" in body
    assert "Change Password" not in body
    response = client.post(
        response.redirect_chain[-1][0],
        {"password1": "a long new passphrase", "password2": "a long new passphrase"},
        follow=True,
    )
    assert "<h1>Password changed</h1>" in response.content.decode()
    assert client.login(username="alice", password="a long new passphrase")
    # The same link again: it says so, and offers a new one.
    client.logout()
    body = client.get(link.group(0), follow=True).content.decode()
    assert "<h1>This reset link does not work</h1>" in body and "Bad Token" not in body
    assert "Email me a new link" in body


def _labels_and_helps(html: str) -> list[str]:
    """Every label, legend and help text of a page, as read (without the "optional" tag)."""
    found = re.findall(r"<(label|legend)[^>]*>(.*?)</\1>", html, re.S)
    found += [("p", text) for text in re.findall(r'<p class="help"[^>]*>(.*?)</p>', html, re.S)]
    texts = [re.sub(r"<[^>]+>|\boptional\b", "", text).strip() for _tag, text in found]
    return [text for text in texts if text]


def test_no_label_or_help_text_is_said_twice_on_a_page(client, alice, office):
    pages = {"sign in": client.get(reverse("account_login"))}
    client.force_login(alice)
    mine = services.book(
        actor=alice,
        space=office.big,
        start=local(office.location, DAY, 9),
        end=local(office.location, DAY, 10),
    ).reservations[0]
    book = f"?space={office.big.pk}&date={DAY.isoformat()}&start=10:00&end=11:00"
    pages |= {
        "find": client.get(reverse("portal:find")),
        "book": client.get(reverse("portal:book") + book),
        "change": client.get(reverse("portal:change", args=[mine.pk])),
        "cancel": client.get(reverse("portal:cancel", args=[mine.pk])),
        "profile": client.get(reverse("portal:profile")),
    }
    for name, response in pages.items():
        texts = _labels_and_helps(response.content.decode())
        assert texts, name
        repeated = sorted({text for text in texts if texts.count(text) > 1})
        assert repeated == [], name
    book_page = pages["book"].content.decode()
    assert "Ends on" in book_page and "Recurring booking" in book_page
    assert "Reason (optional)" not in pages["cancel"].content.decode()


def test_the_details_page_asks_again_until_the_calendar_has_the_booking(
    alice_client,
    alice,
    office,
    provider,
):
    """A link row shows the panel without any calendar binding (so nothing is pushed)."""
    booked = services.book(
        actor=alice,
        space=office.small,
        start=local(office.location, DAY, 10),
        end=local(office.location, DAY, 11),
    ).reservations[0]
    link, _ = SyncLink.objects.update_or_create(
        reservation=booked,
        defaults={"provider": provider, "mailbox": "room@example.com", "state": "pending"},
    )
    url = reverse("portal:detail", args=[booked.pk])
    page = alice_client.get(url).content.decode()
    assert f'hx-get="{url}?part=sync&amp;poll=1"' in page
    assert 'hx-target="#calendar-sync"' in page and 'hx-swap="outerHTML"' in page

    # The panel alone, asking again with the next number.
    part = alice_client.get(url, {"part": "sync", "poll": 1}, HTTP_HX_REQUEST="true")
    body = part.content.decode()
    assert body.lstrip().startswith('<section class="card sync-panel"') and "<html" not in body
    assert "Waiting to be sent to the calendar" in body and "poll=2" in body

    # Sent: it stops asking.
    link.state, link.external_id = "synced", "AAMkAGI2-event"
    link.save()
    body = alice_client.get(url, {"part": "sync", "poll": 2}, HTTP_HX_REQUEST="true")
    body = body.content.decode()
    assert "In the calendar" in body and "AAMkAGI2-event" in body and "hx-get" not in body

    # Not sent after two minutes of asking: it stops and says how to check again.
    link.state = "failed"
    link.save()
    body = alice_client.get(url, {"part": "sync", "poll": 40}, HTTP_HX_REQUEST="true")
    body = body.content.decode()
    assert "hx-get" not in body and "reload the page to check again" in body
