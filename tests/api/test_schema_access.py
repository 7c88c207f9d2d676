"""/api/schema/ and /api/docs/: public by default; with API_PUBLIC_SCHEMA=false only for a
signed-in user or an API token, anyone else refused in the API's JSON error shape."""

from __future__ import annotations

import pytest

from reservations.models import IntegrationRole

pytestmark = pytest.mark.django_db

URLS = ["/api/schema/", "/api/schema/?format=json", "/api/docs/", "/api/docs/?script="]


@pytest.mark.parametrize("url", URLS)
def test_public_by_default(client, url):
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", URLS)
def test_private_schema_refuses_anonymous_callers_with_json(client, settings, url):
    settings.API_PUBLIC_SCHEMA = False
    response = client.get(url)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "not_authenticated" and error["message"] and error["fields"] == {}
    assert "openapi" not in response.content.decode().lower()


def test_private_schema_refuses_an_invalid_token(client, settings):
    settings.API_PUBLIC_SCHEMA = False
    response = client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("url", URLS)
def test_private_schema_is_served_to_a_signed_in_user(client, settings, make_user, url):
    settings.API_PUBLIC_SCHEMA = False
    client.force_login(make_user())
    assert client.get(url).status_code == 200


def test_private_schema_is_served_to_an_api_token(as_integration, settings):
    settings.API_PUBLIC_SCHEMA = False
    reader = as_integration(IntegrationRole.READ_ONLY, scope="read")
    response = reader.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert "/api/v1/reservations/" in response.json()["paths"]
