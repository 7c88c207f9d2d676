"""The connection alias's calendar folder: a calendar folder's name under each mailbox's
calendar. Pushes and pulls go to that folder, not to the calendar itself; a name the mailbox
does not have is said in words (Test connection and every call), not a traceback."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from integrations.base import CalendarGone, CalendarRef
from tests.support.ews_client import ROOM, WINDOW, data, make_client, stored


def make_folder(sandbox, mailbox: str, name: str, folder_class: str = "IPF.Appointment") -> str:
    state = sandbox.sandbox.services["ews"]
    with state.lock:
        return state.add_calendar_folder(state.mailbox(mailbox), name, folder_class).id


def test_pushes_and_pulls_go_to_the_named_folder_not_the_calendar(sandbox, waits):
    bookings = make_folder(sandbox, ROOM, "Bookings")
    ews = make_client(sandbox, waits, folder="bookings")  # Exchange's names: any case
    ref = CalendarRef(ROOM)
    ews.test_connection(ref)
    (calendar,) = ews.list_calendars(ref)
    assert (calendar.id, calendar.name, calendar.is_default) == (bookings, "Bookings", False)
    event = ews.create_event(ref, data(1, 9))
    assert stored(sandbox, event.id).folder_id == bookings
    page = ews.changes(ref, None, *WINDOW)
    assert [(e.id, e.reservation_id) for e in page.events] == [(event.id, 1)]
    ews.update_event(ref, event.id, data(1, 10, subject="Later"))
    assert stored(sandbox, event.id).subject == "Later"
    plain = make_client(sandbox, waits)  # the same mailbox's calendar itself holds nothing
    assert plain.changes(ref, None, *WINDOW).events == []
    ews.delete_event(ref, event.id)
    assert [e.removed for e in ews.changes(ref, page.sync_token, *WINDOW).events] == [True]


def test_a_folder_name_the_mailbox_does_not_have_is_said_in_words(sandbox, waits):
    make_folder(sandbox, ROOM, "Holidays")
    ews = make_client(sandbox, waits, folder="Bookings")
    for call in (
        lambda: ews.test_connection(CalendarRef(ROOM)),
        lambda: ews.create_event(CalendarRef(ROOM), data()),
        lambda: ews.changes(CalendarRef(ROOM), None, *WINDOW),
    ):
        with pytest.raises(CalendarGone) as raised:
            call()
        assert raised.value.code == "ErrorFolderNotFound"
        assert raised.value.message.startswith(
            f"The mailbox {ROOM} has no calendar folder named 'Bookings' under its calendar."
        )


def test_a_folder_of_that_name_that_is_not_a_calendar_is_said_so(sandbox, waits):
    make_folder(sandbox, ROOM, "Bookings", "IPF.Note")
    with pytest.raises(CalendarGone) as raised:
        make_client(sandbox, waits, folder="Bookings").test_connection(CalendarRef(ROOM))
    assert raised.value.code == "not_a_calendar"
    assert f"'Bookings' under the calendar of the mailbox {ROOM} is not a calendar" in (
        raised.value.message
    )


def test_a_folder_deleted_and_made_again_is_found_afresh(sandbox, waits):
    ews = make_client(sandbox, waits, folder="Bookings")
    ref = CalendarRef(ROOM)
    first = make_folder(sandbox, ROOM, "Bookings")
    ews.create_event(ref, data(1, 9))
    control = f"{sandbox.base_url}/_sandbox/api/ews/mailboxes/{ROOM}/calendar-folders"
    with requests.Session() as http:
        http.trust_env, http.verify = False, str(sandbox.ca_file)
        assert http.delete(f"{control}/{quote(first, safe='')}").status_code == 204
    with pytest.raises(CalendarGone) as raised:  # the folder's old id: gone
        ews.changes(ref, None, *WINDOW)
    assert raised.value.code == "ErrorFolderNotFound"
    with pytest.raises(CalendarGone) as raised:  # looked up again by its name
        ews.changes(ref, None, *WINDOW)
    assert "has no calendar folder named 'Bookings'" in raised.value.message
    second = make_folder(sandbox, ROOM, "Bookings")
    event = ews.create_event(ref, data(2, 11))
    assert stored(sandbox, event.id).folder_id == second != first
