"""What EWS refuses in Subscribe, GetStreamingEvents, GetUserAvailability and
GetServerTimeZones requests: raw SOAP where exchangelib would not send it, exchangelib where
it does."""

from __future__ import annotations

import threading

import pytest
import requests
from exchangelib import UTC, CalendarItem, EWSDateTime
from exchangelib.errors import ErrorNewEventStreamConnectionOpened

from tests.support.ews_sandbox import account, endpoint

ALICE = "alice@contoso.test"
AT = EWSDateTime(2030, 1, 7, 9, tzinfo=UTC)
HEAD = (
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Header>'
    '<t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>'
)
TAIL = "</s:Body></s:Envelope>"
CALENDAR = '<t:FolderIds><t:DistinguishedFolderId Id="calendar"/></t:FolderIds>'
TYPES = "<t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes>"


def soap(ews, body: str) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ews.ca_file)
    try:
        return session.post(
            endpoint(ews),
            data=(HEAD + body + TAIL).encode(),
            headers={"Content-Type": "text/xml; charset=utf-8"},
            auth=(ALICE, "Alice-sandbox-1"),
        )
    finally:
        session.close()


def code(response: requests.Response) -> str:
    text = response.text
    start = text.index("ResponseCode>") + len("ResponseCode>")
    return text[start : text.index("<", start)]


@pytest.mark.parametrize(
    ("request_xml", "expected"),
    [
        (f"<m:StreamingSubscriptionRequest>{TYPES}</m:StreamingSubscriptionRequest>",
         "ErrorInvalidSubscriptionRequest"),
        (f'<m:StreamingSubscriptionRequest SubscribeToAllFolders="true">{CALENDAR}{TYPES}'
         "</m:StreamingSubscriptionRequest>", "ErrorInvalidSubscriptionRequest"),
        (f"<m:PullSubscriptionRequest>{CALENDAR}{TYPES}<t:Timeout>0</t:Timeout>"
         "</m:PullSubscriptionRequest>", "ErrorSchemaValidation"),
        (f"<m:PullSubscriptionRequest>{CALENDAR}{TYPES}<t:Timeout>1441</t:Timeout>"
         "</m:PullSubscriptionRequest>", "ErrorSchemaValidation"),
        (f"<m:StreamingSubscriptionRequest>{CALENDAR}<t:EventTypes><t:EventType>StatusEvent"
         "</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest>", "ErrorSchemaValidation"),
        (f"<m:PushSubscriptionRequest>{CALENDAR}{TYPES}<t:StatusFrequency>1</t:StatusFrequency>"
         "<t:URL>https://127.0.0.1/x</t:URL></m:PushSubscriptionRequest>", "ErrorInvalidOperation"),
    ],
)  # fmt: skip
def test_subscribe_requests_are_checked(ews, request_xml, expected):
    response = soap(ews, f"<m:Subscribe>{request_xml}</m:Subscribe>")
    assert code(response) == expected


def test_streaming_connection_timeout_is_1_to_30_minutes(ews):
    subscribed = soap(
        ews,
        f"<m:Subscribe><m:StreamingSubscriptionRequest>{CALENDAR}{TYPES}"
        "</m:StreamingSubscriptionRequest></m:Subscribe>",
    )
    text = subscribed.text
    sub = text[text.index("SubscriptionId>") + 15 : text.index("</m:SubscriptionId")]
    for minutes in ("0", "31"):
        response = soap(
            ews,
            f"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{sub}</t:SubscriptionId>"
            f"</m:SubscriptionIds><m:ConnectionTimeout>{minutes}</m:ConnectionTimeout>"
            "</m:GetStreamingEvents>",
        )
        assert (response.status_code, code(response)) == (500, "ErrorSchemaValidation")


def test_a_second_stream_closes_the_first(ews):
    acc = account(ews, ALICE, max_connections=3)
    sub = acc.calendar.subscribe_to_streaming()
    outcome: list[BaseException] = []

    def first() -> None:
        try:
            list(acc.calendar.get_streaming_events(sub, connection_timeout=1))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    # Wait until the sandbox serves the first stream before opening the second.
    for _ in range(200):
        if ews.sandbox.services["ews"].subscriptions[sub].stream is not None:
            break
        threading.Event().wait(0.02)
    second = threading.Thread(
        target=lambda: list(
            acc.calendar.get_streaming_events(
                sub, connection_timeout=1, max_notifications_returned=1
            )
        ),
        daemon=True,
    )
    second.start()
    thread.join(10)
    assert [type(e) for e in outcome] == [ErrorNewEventStreamConnectionOpened]


def availability(window: str, view: str = "FreeBusy") -> str:
    return (
        "<m:GetUserAvailabilityRequest><t:TimeZone><t:Bias>0</t:Bias></t:TimeZone>"
        "<m:MailboxDataArray><t:MailboxData><t:Email><t:Address>alice@contoso.test</t:Address>"
        "</t:Email><t:AttendeeType>Required</t:AttendeeType></t:MailboxData></m:MailboxDataArray>"
        f"<t:FreeBusyViewOptions><t:TimeWindow>{window}</t:TimeWindow>"
        "<t:MergedFreeBusyIntervalInMinutes>30</t:MergedFreeBusyIntervalInMinutes>"
        f"<t:RequestedView>{view}</t:RequestedView></t:FreeBusyViewOptions>"
        "</m:GetUserAvailabilityRequest>"
    )


def test_availability_window_and_view_are_checked(ews):
    backwards = (
        "<t:StartTime>2030-01-07T10:00:00</t:StartTime><t:EndTime>2030-01-07T09:00:00</t:EndTime>"
    )
    assert code(soap(ews, availability(backwards))) == "ErrorInvalidTimeInterval"
    day = "<t:StartTime>2030-01-07T00:00:00</t:StartTime><t:EndTime>2030-01-08T00:00:00</t:EndTime>"
    assert code(soap(ews, availability(day, "Everything"))) == "ErrorSchemaValidation"
    assert soap(ews, availability(day)).status_code == 200


def test_unknown_server_time_zone(ews):
    response = soap(
        ews,
        '<m:GetServerTimeZones ReturnFullTimeZoneData="false"><m:Ids><t:Id>Mars Standard Time'
        "</t:Id></m:Ids></m:GetServerTimeZones>",
    )
    assert code(response) == "ErrorTimeZone"


def test_an_account_holds_at_most_three_open_streams(ews):
    acc = account(ews, ALICE, max_connections=5)
    subs = [acc.calendar.subscribe_to_streaming() for _ in range(4)]
    state = ews.sandbox.services["ews"]
    for sub in subs[:3]:
        threading.Thread(
            target=lambda sub=sub: list(
                acc.calendar.get_streaming_events(sub, connection_timeout=1)
            ),
            daemon=True,
        ).start()
    for _ in range(250):
        if len(state.streams) == 3:
            break
        threading.Event().wait(0.02)
    assert len(state.streams) == 3
    # Raw SOAP: exchangelib answers ErrorExceededConnectionCount by shrinking its session pool,
    # which waits for a session its own streams hold (a client must group its subscriptions,
    # up to 200 a connection, instead).
    fourth = soap(
        ews,
        f"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{subs[3]}</t:SubscriptionId>"
        "</m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>",
    )
    assert code(fourth) == "ErrorExceededConnectionCount"
    # Impersonating another mailbox counts against that one, not against Alice.
    svc = account(ews, "bob@contoso.test", "svc-reserva@contoso.test", impersonate=True)
    bob_sub = svc.calendar.subscribe_to_streaming()
    CalendarItem(account=svc, folder=svc.calendar, subject="x", start=AT, end=AT).save()
    notes = svc.calendar.get_streaming_events(
        bob_sub, connection_timeout=1, max_notifications_returned=1
    )
    assert len(list(notes)) == 1
