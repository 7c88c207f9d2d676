"""Calendar folders under a mailbox's calendar: made through the control route, found with
FindFolder (exchangelib's shallow query, raw SOAP for what it would not send), and every item
operation on one by its folder id."""

from __future__ import annotations

import re
from urllib.parse import quote

from exchangelib import UTC, CalendarItem, EWSDateTime
from exchangelib.folders import SHALLOW, Calendar, SingleFolderQuerySet

from tests.sandbox.test_ews_request_checks import code, soap
from tests.support.ews_sandbox import account

ALICE, ATLAS = "alice@contoso.test", "atlas@contoso.test"
SERVICE = "svc-reserva@contoso.test"


def at(hour: int) -> EWSDateTime:
    return EWSDateTime(2030, 1, 7, hour, tzinfo=UTC)


def api(ews, mailbox: str) -> str:
    return f"{ews.base_url}/_sandbox/api/ews/mailboxes/{mailbox}"


def children(room) -> list:
    query = SingleFolderQuerySet(account=room, folder=room.calendar).depth(SHALLOW)
    return list(query.only("name", "folder_class"))


def test_a_calendar_made_under_the_calendar_is_found_shallow_as_a_calendar_folder(ews, http):
    made = http.post(f"{api(ews, ATLAS)}/calendar-folders", json={"name": "Bookings"})
    assert made.status_code == 201 and made.json()["folder_class"] == "IPF.Appointment"
    again = http.post(f"{api(ews, ATLAS)}/calendar-folders", json={"name": "bookings"})
    assert again.status_code == 400 and "ErrorFolderExists" in again.text
    room = account(ews, ATLAS, SERVICE, impersonate=True)
    (found,) = children(room)
    assert isinstance(found, Calendar)
    assert (found.id, found.name, found.folder_class) == (
        made.json()["id"],
        "Bookings",
        "IPF.Appointment",
    )
    listed = http.get(f"{api(ews, ATLAS)}/calendar-folders").json()["value"]
    assert [f["name"] for f in listed] == ["Bookings"]


def test_items_live_in_the_sub_calendar_by_its_folder_id(ews, http):
    http.post(f"{api(ews, ATLAS)}/calendar-folders", json={"name": "Bookings"})
    room = account(ews, ATLAS, SERVICE, impersonate=True)
    (bookings,) = children(room)
    item = CalendarItem(account=room, folder=bookings, subject="Board", start=at(9), end=at(10))
    item.save()  # CreateItem with SavedItemFolderId = the folder's id
    assert [i.subject for i in bookings.view(start=at(0), end=at(23))] == ["Board"]
    assert list(room.calendar.view(start=at(0), end=at(23))) == []
    assert [(kind, i.id) for kind, i in bookings.sync_items()] == [("create", item.id)]
    item.subject = "Board (moved)"
    item.save(update_fields=["subject"])
    assert [i.subject for i in bookings.all()] == ["Board (moved)"]
    in_folder = http.get(f"{api(ews, ATLAS)}/items", params={"folder": bookings.id}).json()
    assert [i["subject"] for i in in_folder["value"]] == ["Board (moved)"]
    assert http.get(f"{api(ews, ATLAS)}/items").json()["value"] == []
    item.delete()
    assert list(bookings.all()) == []


def test_outlook_creates_an_item_in_the_sub_calendar_through_the_control_route(ews, http):
    folder = http.post(f"{api(ews, ATLAS)}/calendar-folders", json={"name": "Bookings"}).json()
    made = http.post(
        f"{api(ews, ATLAS)}/items?folder={quote(folder['id'], safe='')}",
        json={"subject": "Typed", "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T10:00:00Z"},
    )
    assert made.status_code == 201
    room = account(ews, ATLAS, SERVICE, impersonate=True)
    (bookings,) = children(room)
    assert [i.subject for i in bookings.all()] == ["Typed"]


def find_folder(parent: str, traversal: str = "Shallow", extra: str = "") -> str:
    return (
        f'<m:FindFolder Traversal="{traversal}"><m:FolderShape><t:BaseShape>IdOnly'
        '</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:DisplayName"/>'
        "</t:AdditionalProperties></m:FolderShape>"
        f'<m:IndexedPageFolderView MaxEntriesReturned="1" Offset="0" BasePoint="Beginning"/>'
        f"{extra}<m:ParentFolderIds>{parent}</m:ParentFolderIds></m:FindFolder>"
    )


CALENDAR = '<t:DistinguishedFolderId Id="calendar"/>'


def test_find_folder_pages_with_the_root_folders_counts(ews, http):
    for name in ("Bookings", "Holidays"):
        http.post(f"{api(ews, ALICE)}/calendar-folders", json={"name": name})
    response = soap(ews, find_folder(CALENDAR))
    assert code(response) == "NoError"
    answer = response.text
    root = re.search(r"<m:RootFolder ([^>]*)>", answer).group(1)
    assert 'TotalItemsInView="2"' in root and 'IncludesLastItemInRange="false"' in root
    assert 'IndexedPagingOffset="1"' in root
    assert answer.count("<t:CalendarFolder>") == 1 and "<t:DisplayName>Bookings<" in answer
    assert "<t:FolderClass>" not in answer  # IdOnly and DisplayName: nothing else
    deep = soap(ews, find_folder('<t:DistinguishedFolderId Id="msgfolderroot"/>', "Deep")).text
    assert 'TotalItemsInView="3"' in deep  # the calendar and the two under it


def test_find_folder_answers_as_exchange_for_bad_parents_and_requests(ews):
    assert code(soap(ews, find_folder('<t:FolderId Id="not-an-id"/>'))) == (
        "ErrorInvalidIdMalformed"
    )
    unknown = "UlNWRgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="  # well formed, never issued
    assert code(soap(ews, find_folder(f'<t:FolderId Id="{unknown}"/>'))) == ("ErrorFolderNotFound")
    assert code(soap(ews, find_folder(CALENDAR, traversal="Sideways"))) == ("ErrorSchemaValidation")
    bad_shape = find_folder(CALENDAR).replace("IdOnly", "Everything")
    assert code(soap(ews, bad_shape)) == "ErrorSchemaValidation"
    bad_uri = find_folder(CALENDAR).replace("folder:DisplayName", "DisplayName")
    assert code(soap(ews, bad_uri)) == "ErrorSchemaValidation"
    restriction = (
        '<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="folder:DisplayName"/>'
        '<t:FieldURIOrConstant><t:Constant Value="Bookings"/></t:FieldURIOrConstant>'
        "</t:IsEqualTo></m:Restriction>"
    )
    assert code(soap(ews, find_folder(CALENDAR, extra=restriction))) == (
        "ErrorUnsupportedQueryFilter"
    )


def test_a_calendar_item_goes_only_into_a_calendar_folder(ews, http):
    notes = {"name": "Notes", "folder_class": "IPF.Note"}
    folder = http.post(f"{api(ews, ALICE)}/calendar-folders", json=notes).json()
    into_notes = (
        '<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>'
        f'<t:FolderId Id="{folder["id"]}"/></m:SavedItemFolderId><m:Items>'
        "<t:CalendarItem><t:Subject>Board</t:Subject><t:Start>2030-01-07T09:00:00Z</t:Start>"
        "<t:End>2030-01-07T10:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>"
    )
    assert code(soap(ews, into_notes)) == "ErrorCannotCreateCalendarItemInNonCalendarFolder"
    create = (
        '<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>'
        '<t:DistinguishedFolderId Id="msgfolderroot"/></m:SavedItemFolderId><m:Items>'
        "<t:CalendarItem><t:Subject>Board</t:Subject><t:Start>2030-01-07T09:00:00Z</t:Start>"
        "<t:End>2030-01-07T10:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>"
    )
    assert code(soap(ews, create)) == "ErrorCannotCreateCalendarItemInNonCalendarFolder"
    calendar = create.replace("msgfolderroot", "calendar")
    assert code(soap(ews, calendar)) == "NoError"
