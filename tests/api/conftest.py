"""Fixtures for the API tests: OAuth clients with integration users, tokens, an API client."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass

import pytest
from oauth2_provider.models import Application
from rest_framework.test import APIClient

from reservations.models import IntegrationAccount, IntegrationRole

_n = itertools.count(1)


@dataclass
class Integration:
    application: Application
    client_id: str
    client_secret: str
    user: object

    def basic(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def make_integration(make_user):
    def make(role: str = IntegrationRole.BOOK_FOR_ANYONE, *, mobile: bool = False, user=None):
        user = user or make_user(f"integration{next(_n)}")
        IntegrationAccount.objects.create(user=user, role=role, is_mobile_app=mobile)
        secret = f"secret-{next(_n)}-" + "x" * 30
        application = Application.objects.create(
            name=f"Client {next(_n)}",
            user=user,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
        )
        return Integration(application, application.client_id, secret, user)

    return make


@pytest.fixture
def get_token(api):
    def get(integration: Integration, scope: str = "read write") -> str:
        response = api.post(
            "/o/token/",
            {"grant_type": "client_credentials", "scope": scope},
            HTTP_AUTHORIZATION=integration.basic(),
        )
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    return get


@pytest.fixture
def as_integration(make_integration, get_token):
    """An APIClient carrying a bearer token of a new integration with the given role."""

    def make(role: str = IntegrationRole.BOOK_FOR_ANYONE, scope: str = "read write", **kw):
        integration = make_integration(role, **kw)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token(integration, scope)}")
        client.integration = integration
        return client

    return make
