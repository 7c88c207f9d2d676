"""Approvals through the REST API: a booking in an approval space is created pending (201,
``approval`` awaiting); approvers approve or decline it (403 for anyone else, 409
``already_decided`` when it awaits nothing); the schema documents the endpoints and codes."""

from __future__ import annotations

from datetime import time as clock
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from rest_framework.test import APIClient

from reservations.models import ApprovalRule, Reservation
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(1)


@pytest.fixture
def room(make_location, make_space):
    location = make_location("HQ", opens=clock(8), closes=clock(18))
    room = make_space(location, name="Boardroom")
    group = Group.objects.create(name="Facilities")
    ApprovalRule.objects.create(location=location, space=room, approvers=group)
    return room


@pytest.fixture
def approver(make_user, room):
    user = make_user("fiona")
    user.groups.add(Group.objects.get(name="Facilities"))
    return user


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def post_booking(client, room, hour=10):
    start = local(room.location, DAY, hour)
    return client.post(
        "/api/v1/reservations/",
        {
            "space": room.pk,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
        format="json",
    )


def test_a_booking_in_an_approval_space_is_created_pending(room, make_user, approver):
    response = post_booking(as_user(make_user("alice")), room)
    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["approval"]) == ("pending", "awaiting")
    direct = post_booking(as_user(approver), room, hour=14)
    assert (direct.json()["status"], direct.json()["approval"]) == ("confirmed", "")


def test_an_approver_approves_and_declines(
    room, make_user, approver, django_capture_on_commit_callbacks
):
    alice = as_user(make_user("alice"))
    first = post_booking(alice, room).json()["id"]
    second = post_booking(alice, room, hour=12).json()["id"]
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        approved = as_user(approver).post(f"/api/v1/reservations/{first}/approve/")
    assert approved.status_code == 200, approved.content
    assert (approved.json()["status"], approved.json()["approval"]) == ("confirmed", "approved")
    with django_capture_on_commit_callbacks(execute=True):
        declined = as_user(approver).post(
            f"/api/v1/reservations/{second}/decline/", {"reason": "Board day"}, format="json"
        )
    assert (declined.json()["status"], declined.json()["approval"]) == ("cancelled", "declined")
    assert Reservation.objects.get(pk=second).cancel_reason == "Declined by fiona: Board day"
    assert sorted(m.subject.split(":")[0] for m in mail.outbox) == ["Approved", "Declined"]


def test_an_approver_lists_what_awaits_them(room, make_user, approver):
    alice = as_user(make_user("alice"))
    later = post_booking(alice, room, hour=15).json()["id"]
    sooner = post_booking(alice, room, hour=9).json()["id"]
    listed = as_user(approver).get("/api/v1/reservations/awaiting-approval/")
    assert [r["id"] for r in listed.json()] == [sooner, later]
    assert alice.get("/api/v1/reservations/awaiting-approval/").json() == []


def test_others_are_refused_and_a_decided_booking_is_a_409(room, make_user, approver):
    alice_user = make_user("alice")
    booking = post_booking(as_user(alice_user), room).json()["id"]
    for person in (alice_user, make_user()):
        refused = as_user(person).post(f"/api/v1/reservations/{booking}/approve/")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "not_allowed"
    assert Reservation.objects.get(pk=booking).approval == "awaiting"

    as_user(approver).post(f"/api/v1/reservations/{booking}/approve/")
    again = as_user(approver).post(f"/api/v1/reservations/{booking}/decline/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_decided"
    assert as_user(approver).post("/api/v1/reservations/999999/approve/").status_code == 404


def test_the_schema_documents_the_endpoints_and_codes(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    approve = paths["/api/v1/reservations/{id}/approve/"]["post"]
    assert "approvers of its space only" in approve["description"]
    assert "/api/v1/reservations/{id}/decline/" in paths
    conflict = paths["/api/v1/reservations/"]["post"]["responses"]["409"]["description"]
    assert "`needs_approval`" in conflict and "`already_decided`" in conflict
    fields = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert "approval" in fields["Reservation"]["properties"]
