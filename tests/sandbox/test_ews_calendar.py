"""EWS calendar operations driven by exchangelib over HTTPS (NTLM unless a test says Basic)."""

from __future__ import annotations

import time

import pytest
import requests
from exchangelib import UTC, CalendarItem, EWSDateTime
from exchangelib.errors import (
    ErrorImpersonateUserDenied,
    ErrorInvalidIdMalformed,
    ErrorIrresolvableConflict,
    ErrorItemNotFound,
    ErrorNonExistentMailbox,
    UnauthorizedError,
)
from exchangelib.items import SEND_TO_NONE

from tests.support.ews_sandbox import BASIC, account, endpoint

ALICE = "alice@contoso.test"


def at(hour: int, day: int = 7) -> EWSDateTime:
    return EWSDateTime(2030, 1, day, hour, tzinfo=UTC)


def test_server_version_comes_from_the_soap_header(ews):
    acc = account(ews, ALICE)
    version = acc.protocol.version
    assert (version.build.major_version, version.build.minor_version) == (15, 2)
    assert version.build.major_build == 1748
    assert version.fullname == "Microsoft Exchange Server 2019"


def test_create_view_get_update_delete(ews):
    acc = account(ews, ALICE, auth=BASIC)
    item = CalendarItem(
        account=acc, folder=acc.calendar, subject="Board", start=at(9), end=at(10), location="Atlas"
    )
    item.save(send_meeting_invitations=SEND_TO_NONE)
    first_key = item.changekey
    found = list(acc.calendar.view(start=at(0), end=at(0, day=8)))
    assert [(i.subject, i.start, i.end, i.location) for i in found] == [
        ("Board", at(9), at(10), "Atlas")
    ]
    assert list(acc.calendar.view(start=at(10), end=at(12))) == []
    item.subject = "Board (moved)"
    item.start, item.end = at(11), at(12)
    item.save(update_fields=["subject", "start", "end"])
    assert item.changekey != first_key
    fetched = acc.calendar.get(id=item.id)
    assert (fetched.subject, fetched.start, fetched.changekey) == (
        "Board (moved)",
        at(11),
        item.changekey,
    )
    item.delete()
    with pytest.raises(ErrorItemNotFound):
        acc.calendar.get(id=fetched.id)


def test_multi_item_create_and_per_item_response_class(ews):
    acc = account(ews, ALICE)
    items = [
        CalendarItem(account=acc, subject=s, start=at(h), end=at(h + 1))
        for s, h in (("A", 9), ("B", 11))
    ]
    created = acc.bulk_create(folder=acc.calendar, items=items)
    assert [len(c.id) > 0 for c in created] == [True, True]
    acc.bulk_delete([created[1]])
    fetched = list(acc.fetch(created))
    assert fetched[0].subject == "A"
    assert isinstance(fetched[1], ErrorItemNotFound)
    assert [i.subject for i in acc.calendar.view(start=at(0), end=at(23))] == ["A"]


def test_a_multi_item_write_is_charged_the_per_item_latency_for_each_item(ews):
    """Exchange writes a request's items one after another: with 0.1 s per item, a
    CreateItem of 5 takes at least 0.5 s, a DeleteItem of 2 at least 0.2 s; a GetItem of 3 is
    not charged (less than the 0.3 s it would be)."""
    ews.sandbox.latency.per_item = 0.1
    acc = account(ews, ALICE)
    acc.calendar.view(start=at(0), end=at(23)).count()  # sessions open, version known

    def timed(work) -> float:
        started = time.monotonic()
        work()
        return time.monotonic() - started

    items = [
        CalendarItem(account=acc, subject=f"S{h}", start=at(h), end=at(h + 1)) for h in range(9, 14)
    ]
    created: list = []
    assert timed(lambda: created.extend(acc.bulk_create(folder=acc.calendar, items=items))) >= 0.5
    assert timed(lambda: acc.bulk_delete(created[:2])) >= 0.2
    assert timed(lambda: list(acc.fetch(created[2:]))) < 0.3


def test_stale_change_key_is_an_irresolvable_conflict(ews):
    acc = account(ews, ALICE)
    item = CalendarItem(account=acc, folder=acc.calendar, subject="v1", start=at(9), end=at(10))
    item.save()
    stale = acc.calendar.get(id=item.id)
    item.subject = "v2"
    item.save(update_fields=["subject"])
    stale.subject = "v3"
    with pytest.raises(ErrorIrresolvableConflict):
        stale.save(update_fields=["subject"])
    # AutoResolve with an old key succeeds when the fields it sets did not change since.
    stale.location = "Borealis"
    stale.save(update_fields=["location"])
    fresh = acc.calendar.get(id=item.id)
    assert (fresh.subject, fresh.location) == ("v2", "Borealis")


def test_malformed_and_unknown_ids(ews):
    acc = account(ews, ALICE)
    with pytest.raises(ErrorInvalidIdMalformed):
        acc.calendar.get(id="not-an-id!", changekey="x")
    item = CalendarItem(account=acc, folder=acc.calendar, subject="x", start=at(9), end=at(10))
    item.save()
    item_id = item.id
    item.delete()
    with pytest.raises(ErrorItemNotFound):
        acc.calendar.get(id=item_id)


def test_wrong_password_is_401_for_ntlm_and_basic(ews):
    for auth in ("NTLM", BASIC):
        acc = account(ews, ALICE, auth=auth, password="wrong")
        with pytest.raises(UnauthorizedError):
            _ = acc.calendar


def test_impersonation_needs_the_role(ews):
    reserva = account(ews, "atlas@contoso.test", user="svc-reserva@contoso.test", impersonate=True)
    item = CalendarItem(
        account=reserva, folder=reserva.calendar, subject="Held", start=at(9), end=at(10)
    )
    item.save()
    assert ews.sandbox.services["ews"].items[item.id].mailbox == "atlas@contoso.test"
    bob = account(ews, ALICE, user="bob@contoso.test", impersonate=True)
    with pytest.raises(ErrorImpersonateUserDenied):
        _ = bob.calendar
    nobody = account(ews, "nobody@contoso.test", user="svc-reserva@contoso.test", impersonate=True)
    with pytest.raises(ErrorNonExistentMailbox):
        _ = nobody.calendar


def test_delegate_access_without_permission_is_denied(ews):
    bob = account(ews, ALICE, user="bob@contoso.test")
    with pytest.raises(Exception) as raised:
        _ = bob.calendar
    assert "AccessDenied" in type(raised.value).__name__ or "No usable default" in str(raised.value)


def _post(ews, body: bytes, content_type: str = "text/xml; charset=utf-8") -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ews.ca_file)
    return session.post(
        endpoint(ews),
        data=body,
        headers={"Content-Type": content_type},
        auth=("alice@contoso.test", "Alice-sandbox-1"),
    )


def test_envelopes_are_parsed_strictly(ews):
    dtd = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    for body in (dtd, b"<not-xml", b"<Envelope/>"):
        response = _post(ews, body)
        assert response.status_code == 500
        assert b"<e:ResponseCode>ErrorSchemaValidation</e:ResponseCode>" in response.content
        assert b"faultcode" in response.content
    assert _post(ews, b"<x/>", "application/json").status_code == 415
    unknown_version = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
        b'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Header>'
        b'<t:RequestServerVersion Version="Exchange2099"/></s:Header><s:Body><m:GetFolder/>'
        b"</s:Body></s:Envelope>"
    )
    response = _post(ews, unknown_version)
    assert b"ErrorInvalidServerVersion" in response.content


def test_throttling_answers_server_busy_with_back_off(ews):
    ews.sandbox.limits.set_rule("ews", max_in_flight=None, max_requests=1, window_seconds=60)
    acc = account(ews, ALICE)
    _ = acc.protocol.version  # the one request allowed
    from exchangelib.errors import ErrorServerBusy

    with pytest.raises(ErrorServerBusy) as raised:
        _ = acc.calendar
    assert raised.value.back_off >= 2


def test_injected_fault_is_a_soap_fault(ews):
    ews.sandbox.faults.add(kind="500", service="ews", count=1)
    response = _post(ews, b"<x/>")
    assert response.status_code == 500
    assert b"ErrorInternalServerError" in response.content


def test_a_fault_can_pick_one_operation_and_let_the_first_through(ews):
    ews.sandbox.faults.add(kind="500", service="ews", body="<m:SyncFolderItems", skip=1)
    assert b"ErrorInternalServerError" not in _post(ews, b"<m:GetFolder/>").content
    assert b"ErrorInternalServerError" not in _post(ews, b"<m:SyncFolderItems/>").content
    assert b"ErrorInternalServerError" in _post(ews, b"<m:SyncFolderItems/>").content
    assert ews.sandbox.faults.list() == []  # fired once, gone


def test_ntlm_with_a_down_level_logon_name(ews):
    from requests_ntlm import HttpNtlmAuth

    session = requests.Session()
    session.trust_env = False
    session.verify = str(ews.ca_file)
    good = HttpNtlmAuth("CONTOSO\\alice", "Alice-sandbox-1")
    response = session.post(
        endpoint(ews), data=b"<x/>", auth=good, headers={"Content-Type": "text/xml"}
    )
    # Signed in: the body reaches the SOAP parser, which refuses it.
    assert response.status_code == 500
    assert b"ErrorSchemaValidation" in response.content
    # NTLM signs in a connection (IIS keeps it signed in), so try the wrong one on a new one.
    session.close()
    bad = HttpNtlmAuth("CONTOSO\\alice", "wrong")
    response = session.post(
        endpoint(ews), data=b"<x/>", auth=bad, headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 401


def test_find_item_evaluates_is_equal_to_an_extended_property_and_refuses_other_filters(ews):
    """A client finds the item it tagged with FindItem and ``IsEqualTo`` on its extended
    property (Reserva's ``find_by_reservation``); other restrictions stay unsupported."""
    from exchangelib.errors import ErrorUnsupportedQueryFilter

    from integrations.ews.mapping import TAG_FIELD, register

    register()
    acc = account(ews, ALICE)
    for hour, tag in ((9, "7"), (11, "8")):
        item = CalendarItem(account=acc, folder=acc.calendar, subject=f"Tagged {tag}",
                            start=at(hour), end=at(hour + 1), **{TAG_FIELD: tag})  # fmt: skip
        item.save(send_meeting_invitations=SEND_TO_NONE)
    found = list(acc.calendar.filter(**{TAG_FIELD: "8"}))
    assert [i.subject for i in found] == ["Tagged 8"]
    assert list(acc.calendar.filter(**{TAG_FIELD: "9"})) == []
    with pytest.raises(ErrorUnsupportedQueryFilter):
        list(acc.calendar.filter(subject="Tagged 7"))
