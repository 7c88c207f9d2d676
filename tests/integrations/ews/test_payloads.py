"""EwsClient on answers the sandbox does not give yet, played by ``responses`` from fixture
files: FindItem with a restriction on our tag (the sandbox evaluates CalendarView only),
GetUserAvailability (being added to the sandbox in parallel), and hybrid modern auth (the
sandbox signs in with NTLM and Basic only).

The GetFolder answers were captured from the sandbox; the others follow Microsoft's documented
response shapes (FindItem, GetUserAvailability in the EWS reference).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

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


def test_hybrid_modern_auth_asks_the_tenant_for_the_on_premises_resource():
    oauth = replace(
        config(),
        auth_method="oauth",
        authority_url="https://login.microsoftonline.com",
        tenant_id="contoso.test",
        client_id="app-1",
        client_secret="app-secret-1",
        resource_url="https://mail.contoso.test",
        username="",
        password="",
    )
    token_url = "https://login.microsoftonline.com/contoso.test/oauth2/v2.0/token"
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            token_url,
            json={"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600},
        )
        bodies = server(mock, {"FindItem": "find_item_empty.xml"})
        EwsClient(oauth, HttpClient()).test_connection(CalendarRef(ROOM))
        token_call = next(c for c in mock.calls if c.request.url == token_url)
        ews_calls = [c for c in mock.calls if c.request.url == URL]
    sent = parse_qs(token_call.request.body)
    assert sent["grant_type"] == ["client_credentials"]
    assert sent["scope"] == ["https://mail.contoso.test/.default"]
    assert len(bodies) == 3 and all(
        c.request.headers["Authorization"] == "Bearer tok-1" for c in ews_calls
    )
