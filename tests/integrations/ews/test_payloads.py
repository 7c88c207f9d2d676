"""EwsClient on answers the sandbox does not give yet, played by ``responses`` from fixture
files: FindItem with a restriction on our tag (the sandbox evaluates CalendarView only) and
GetUserAvailability (being added to the sandbox in parallel).

The GetFolder answers were captured from the sandbox; the others follow Microsoft's documented
response shapes (FindItem, GetUserAvailability in the EWS reference).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import responses

from integrations.base import CalendarRef, ProviderConfig
from integrations.ews.client import EwsClient
from integrations.http import HttpClient

FIXTURES = Path(__file__).parent / "fixtures"
URL = "https://mail.contoso.test/EWS/Exchange.asmx"
ROOM = "atlas@contoso.test"


def config() -> ProviderConfig:
    return ProviderConfig(
        kind="ews",
        authority_url="",
        authorization_url="",
        api_base_url=URL,
        auth_method="basic",
        username="svc-reserva@contoso.test",
        password="Reserva-sandbox-1",
        account_email="svc-reserva@contoso.test",
        server_version="2019",
        timeout=5,
    )


def server(mock: responses.RequestsMock, answers: dict[str, str]) -> list[bytes]:
    """Answer each operation with its fixture; returns the request bodies seen."""
    bodies: list[bytes] = []
    folders = iter(["get_folder_root.xml", "get_folder_calendar.xml"])

    def reply(request):
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        bodies.append(body)
        operation = re.search(rb"<s:Body><m:(\w+)", body).group(1).decode()
        name = next(folders) if operation == "GetFolder" else answers[operation]
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, (FIXTURES / name).read_bytes()

    mock.add_callback(responses.POST, URL, callback=reply)
    return bodies


def test_find_by_reservation_restricts_on_our_tag_and_takes_the_oldest():
    with responses.RequestsMock() as mock:
        bodies = server(
            mock, {"FindItem": "find_item_by_tag.xml", "GetItem": "get_item_by_tag.xml"}
        )
        event = EwsClient(config(), HttpClient()).find_by_reservation(CalendarRef(ROOM), 7)
    find = next(b for b in bodies if b"<m:FindItem" in b)
    assert b"<m:Restriction>" in find and b"IsEqualTo" in find
    assert b'PropertyName="ReservaReservationId"' in find and b'Value="7"' in find
    assert b"<t:ExchangeImpersonation>" in find and ROOM.encode() in find
    assert event is not None
    assert (event.id, event.version, event.reservation_id) == (
        "AAMkAGFirst=",
        "DwAAABYAAAAfirst",
        7,
    )
    assert event.start == datetime(2030, 1, 7, 9, tzinfo=UTC)


def test_free_busy_asks_in_utc_and_leaves_out_unknown_mailboxes():
    refs = [CalendarRef(ROOM), CalendarRef("ghost@contoso.test")]
    with responses.RequestsMock() as mock:
        bodies = server(mock, {"GetUserAvailabilityRequest": "get_user_availability.xml"})
        busy = EwsClient(config(), HttpClient()).free_busy(
            refs, datetime(2030, 1, 7, tzinfo=UTC), datetime(2030, 1, 8, tzinfo=UTC)
        )
    assert len(bodies) == 1  # no GetServerTimeZones round trip
    assert b"<t:Bias>0</t:Bias>" in bodies[0] and b"ghost@contoso.test" in bodies[0]
    assert busy == {
        CalendarRef(ROOM): [
            (datetime(2030, 1, 7, 9, tzinfo=UTC), datetime(2030, 1, 7, 10, 30, tzinfo=UTC)),
            (datetime(2030, 1, 7, 13, tzinfo=UTC), datetime(2030, 1, 7, 14, tzinfo=UTC)),
        ]
    }
