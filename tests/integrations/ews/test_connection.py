"""Test connection against Exchange Server: each cause an administrator can meet, in words.

Most causes come from the EWS sandbox over real HTTPS; an account locked out and EWS switched
off (403) are answers the sandbox does not give, so ``responses`` plays the server there.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import replace

import certifi
import pytest
import responses

from integrations.base import (
    AuthenticationFailed,
    CalendarGone,
    CalendarRef,
    ConsentMissing,
    PermanentError,
    TlsError,
)
from integrations.ews.client import EwsClient
from integrations.http import HttpClient
from integrations.sandbox.config import default_config
from tests.support.ews_client import (
    ROOM,
    data,
    make_client,
)

ONPREM = "https://mail.contoso.test/EWS/Exchange.asmx"


def test_a_working_connection_passes(sandbox, waits):
    make_client(sandbox, waits).test_connection(CalendarRef(ROOM))


def test_wrong_password(sandbox, waits):
    for method in ("ntlm", "basic"):
        client = make_client(sandbox, waits, auth_method=method, password="wrong")
        with pytest.raises(AuthenticationFailed) as raised:
            client.test_connection(CalendarRef(ROOM))
        assert "user name or password is wrong" in raised.value.message
        assert "wrong" not in raised.value.message.replace("is wrong", "")


def test_the_sync_user_lacks_impersonation_rights(sandbox, waits):
    client = make_client(
        sandbox, waits, username="CONTOSO\\bob", password="Bob-sandbox-1", impersonation=True
    )
    with pytest.raises(ConsentMissing) as raised:
        client.test_connection(CalendarRef(ROOM))
    assert raised.value.code == "ErrorImpersonateUserDenied"
    assert "New-ManagementRoleAssignment -Role ApplicationImpersonation" in raised.value.message


def test_the_mailbox_does_not_exist(sandbox, waits):
    with pytest.raises(CalendarGone) as raised:
        make_client(sandbox, waits).test_connection(CalendarRef("nobody@contoso.test"))
    assert raised.value.code == "ErrorNonExistentMailbox"
    assert "No mailbox (nobody@contoso.test) exists" in raised.value.message


def test_a_certificate_not_trusted_by_the_configured_bundle(sandbox, waits, monkeypatch):
    # The environment would trust the sandbox; the connection's own bundle does not.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_file))
    client = make_client(sandbox, waits, ca_bundle=certifi.where())
    with pytest.raises(TlsError) as raised:
        client.test_connection(CalendarRef(ROOM))
    assert "CA bundle" in raised.value.message


def test_the_configured_bundle_beats_requests_ca_bundle(sandbox, waits, monkeypatch):
    # The machines set REQUESTS_CA_BUNDLE to a bundle without the server's CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    make_client(sandbox, waits).test_connection(CalendarRef(ROOM))


def exchange_2013() -> dict:
    config = default_config()
    config["ews"]["server_build"] = "15.0.1497.2"  # Exchange 2013 CU23
    return config


@pytest.mark.parametrize("sandbox_config", [exchange_2013()])
def test_a_server_older_than_2016(sandbox, waits):
    client = make_client(sandbox, waits)
    with pytest.raises(PermanentError) as raised:
        client.test_connection(CalendarRef(ROOM))
    assert raised.value.code == "old_server"
    assert "older than Exchange 2016" in raised.value.message


def test_exchange_online_is_pointed_to_the_microsoft_365_provider():
    config = replace(
        make_config_for(ONPREM), api_base_url="https://outlook.office365.com/EWS/Exchange.asmx"
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(PermanentError) as raised:
            EwsClient(config, HttpClient()).test_connection(CalendarRef(ROOM))
        assert len(mock.calls) == 0  # nothing sent, the password least of all
    assert raised.value.code == "exchange_online"
    assert "Microsoft 365 (Exchange Online) provider" in raised.value.message


def test_ews_switched_off_answers_403():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, ONPREM, status=403, body="Forbidden")
        with pytest.raises(PermanentError) as raised:
            EwsClient(make_config_for(ONPREM), HttpClient()).test_connection(CalendarRef(ROOM))
    assert raised.value.code == "ews_disabled"
    assert "EWS is switched off" in raised.value.message
    assert "Microsoft 365" in raised.value.message


def test_an_account_locked_out():
    body = (
        "<html><body>The referenced account is currently locked out and may not be "
        "logged on to.</body></html>"
    )
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, ONPREM, status=401, body=body)
        with pytest.raises(AuthenticationFailed) as raised:
            EwsClient(make_config_for(ONPREM), HttpClient()).test_connection(CalendarRef(ROOM))
    assert raised.value.code == "account_locked"
    assert "locked out" in raised.value.message


def test_no_password_or_authorization_header_reaches_the_log(sandbox, waits, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(sandbox, waits, auth_method="basic", username="svc-reserva@contoso.test")
    client.create_event(CalendarRef(ROOM), data())
    with pytest.raises(AuthenticationFailed):
        make_client(sandbox, waits, auth_method="basic", password="Secret-wrong-1").test_connection(
            CalendarRef(ROOM)
        )
    text = caplog.text
    assert "request-id=" in text
    basic = base64.b64encode(b"svc-reserva@contoso.test:Reserva-sandbox-1").decode()
    for secret in ("Reserva-sandbox-1", "Secret-wrong-1", basic, "Authorization"):
        assert secret not in text


def make_config_for(url: str):
    from integrations.base import ProviderConfig

    return ProviderConfig(
        kind="ews",
        authority_url="",
        authorization_url="",
        api_base_url=url,
        auth_method="basic",
        username="svc-reserva@contoso.test",
        password="Reserva-sandbox-1",
        account_email="svc-reserva@contoso.test",
        server_version="2019",  # no detection request: one answer per test
        timeout=5,
    )


def test_delegate_access_works_with_full_access_and_says_what_is_missing_without(sandbox, waits):
    own = make_client(
        sandbox, waits, username="CONTOSO\\alice", password="Alice-sandbox-1", impersonation=False
    )
    own.test_connection(CalendarRef("alice@contoso.test"))  # a mailbox it has full access to
    bob = make_client(
        sandbox, waits, username="CONTOSO\\bob", password="Bob-sandbox-1", impersonation=False
    )
    with pytest.raises(ConsentMissing) as raised:
        bob.test_connection(CalendarRef("alice@contoso.test"))
    assert "Full Access" in raised.value.message
