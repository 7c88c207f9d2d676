"""``/o/token/`` is rate-limited per client id and per address; failed client authentication
counts, so a client secret cannot be guessed at speed, not even through revocation or
introspection, which check the secret too and share the budget."""

from __future__ import annotations

import base64

import pytest

from reservations.models import IntegrationRole

pytestmark = pytest.mark.django_db

GRANT = {"grant_type": "client_credentials", "scope": "read"}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def assert_slowed_down(response) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "slow_down"
    assert "try again in" in body["error_description"]
    assert "access_token" not in body
    assert int(response["Retry-After"]) > 0


def test_wrong_secrets_use_up_the_client_ids_budget(api, make_integration, settings):
    settings.OAUTH_TOKEN_RATE_LIMIT = "3/minute"
    target = make_integration(IntegrationRole.READ_ONLY)
    bystander = make_integration(IntegrationRole.READ_ONLY)

    guesses = [
        api.post("/o/token/", GRANT, HTTP_AUTHORIZATION=basic(target.client_id, f"guess-{n}"))
        for n in range(3)
    ]
    assert [r.status_code for r in guesses] == [401, 401, 401]  # invalid_client, counted

    # The right secret is refused too while the window lasts: guessing gets no faster.
    assert_slowed_down(api.post("/o/token/", GRANT, HTTP_AUTHORIZATION=target.basic()))
    # The client id sent in the form body is the same client.
    form = {**GRANT, "client_id": target.client_id, "client_secret": target.client_secret}
    assert_slowed_down(api.post("/o/token/", form))
    # Another client at the same address has its own budget.
    ok = api.post("/o/token/", GRANT, HTTP_AUTHORIZATION=bystander.basic())
    assert ok.status_code == 200 and ok.json()["access_token"]


def test_one_address_cannot_try_client_ids_without_end(api, make_integration, settings):
    settings.OAUTH_TOKEN_ADDRESS_RATE_LIMIT = "4/minute"
    integration = make_integration(IntegrationRole.READ_ONLY)
    attacker = "203.0.113.7"

    made_up = [
        api.post(
            "/o/token/",
            GRANT,
            HTTP_AUTHORIZATION=basic(f"made-up-{n}", "secret"),
            REMOTE_ADDR=attacker,
        )
        for n in range(4)
    ]
    assert [r.status_code for r in made_up] == [401] * 4
    assert_slowed_down(
        api.post("/o/token/", GRANT, HTTP_AUTHORIZATION=integration.basic(), REMOTE_ADDR=attacker)
    )
    # From its own address the real client is not held up by the attacker.
    ok = api.post(
        "/o/token/", GRANT, HTTP_AUTHORIZATION=integration.basic(), REMOTE_ADDR="198.51.100.2"
    )
    assert ok.status_code == 200


def test_a_forged_forwarded_for_header_does_not_give_a_new_address(api, make_integration, settings):
    settings.OAUTH_TOKEN_ADDRESS_RATE_LIMIT = "2/minute"
    integration = make_integration(IntegrationRole.READ_ONLY)
    codes = [
        api.post(
            "/o/token/",
            GRANT,
            HTTP_AUTHORIZATION=basic(f"made-up-{n}", "secret"),
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        ).status_code
        for n in range(2)
    ]
    assert codes == [401, 401]
    refused = api.post(
        "/o/token/", GRANT, HTTP_AUTHORIZATION=integration.basic(), HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert_slowed_down(refused)


@pytest.mark.parametrize("endpoint", ["/o/revoke_token/", "/o/introspect/"])
def test_guessing_through_revocation_or_introspection_uses_the_same_budget(
    api, make_integration, settings, endpoint
):
    settings.OAUTH_TOKEN_RATE_LIMIT = "3/minute"
    target = make_integration(IntegrationRole.READ_ONLY)
    guesses = [
        api.post(endpoint, {"token": "x"}, HTTP_AUTHORIZATION=basic(target.client_id, f"g{n}"))
        for n in range(3)
    ]
    assert all(r.status_code in (401, 403) for r in guesses), [r.status_code for r in guesses]
    assert_slowed_down(api.post(endpoint, {"token": "x"}, HTTP_AUTHORIZATION=target.basic()))
    assert_slowed_down(api.post("/o/token/", GRANT, HTTP_AUTHORIZATION=target.basic()))


def test_default_limits_let_an_ordinary_client_get_its_tokens(api, make_integration):
    integration = make_integration(IntegrationRole.READ_ONLY)
    codes = {
        api.post("/o/token/", GRANT, HTTP_AUTHORIZATION=integration.basic()).status_code
        for _ in range(5)
    }
    assert codes == {200}
