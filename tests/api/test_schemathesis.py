"""Property-based run of the API against its own OpenAPI schema (schemathesis + hypothesis).

Every operation gets generated requests, valid and invalid, as an authenticated integration
that may book for anyone; no response may be a 5xx or break the documented schema (errors
included: the schema documents the error shape for every operation). Bounded examples keep it
well under a minute. Not skipped: CI runs it in both database legs.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from config.wsgi import application
from reservations.models import Amenity, IntegrationRole


@pytest.fixture
def _keep_test_connection(db, bearer):
    """Calling the WSGI app directly (not Django's test client) would close the connection
    that holds the test's transaction at the end of each request; Django's client disconnects
    this handler for the same reason (and connects it again after each of its requests, so
    this runs after ``bearer`` got its token through the test client)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(_keep_test_connection, make_space):
    space = make_space(name="Fuzz room")
    space.amenities.add(Amenity.objects.create(name="Screen"))
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def bearer(as_integration):
    client = as_integration(IntegrationRole.BOOK_FOR_ANYONE)
    return client._credentials["HTTP_AUTHORIZATION"]


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, bearer, settings_api_rate):
    case.call_and_validate(
        headers={"Authorization": bearer},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


@pytest.fixture
def settings_api_rate(settings):
    settings.API_RATE_LIMIT = ""  # the fuzzer sends bursts; throttling has its own test
