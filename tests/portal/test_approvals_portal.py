"""Approvals in the portal and the admin: the booking form and the schedule say a space needs
approval; the booking then says it awaits approval and by whom; the approvers' queue lists
what awaits them and decides by POST; the emailed link opens a confirmation page (a GET never
decides) and refuses tampered, expired and non-approver use; the admin's list actions decide
through the service."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.urls import reverse

from reservations import approvals, services
from reservations.models import ApprovalRule, Reservation, ReservationStatus
from tests.conftest import local, next_weekday

pytestmark = pytest.mark.django_db

DAY = next_weekday(1)


@pytest.fixture
def facilities(office):
    group = Group.objects.create(name="Facilities")
    ApprovalRule.objects.create(location=office.location, space=office.big, approvers=group)
    return group


@pytest.fixture
def fiona(make_user, facilities):
    user = make_user("fiona", first_name="Fiona", last_name="Fox")
    user.groups.add(facilities)
    return user


def book_form(space, *, start="10:00", end="11:00") -> dict:
    return {
        "space": space.pk,
        "date": DAY.isoformat(),
        "start": start,
        "end": end,
        "title": "Offsite prep",
        "public_nickname": "",
        "description": "",
        "interval": 1,
    }


def awaiting(office, alice, hour=10) -> Reservation:
    start = local(office.location, DAY, hour)
    return services.book(
        actor=alice, space=office.big, start=start, end=start + timedelta(hours=1)
    ).reservations[0]


def test_the_form_and_schedule_say_a_space_needs_approval(client, office, alice, fiona):
    client.force_login(alice)
    form = client.get(reverse("portal:book"), {"space": office.big.pk}).content.decode()
    assert "Needs approval by Facilities" in form
    assert (
        "Needs approval"
        not in client.get(reverse("portal:book"), {"space": office.small.pk}).content.decode()
    )
    grid = client.get(reverse("portal:schedule"), {"date": DAY.isoformat()}).content.decode()
    assert grid.count("Needs approval by Facilities") == 1
    client.force_login(fiona)  # approvers book it directly: nothing to warn about
    assert (
        "Needs approval"
        not in client.get(reverse("portal:book"), {"space": office.big.pk}).content.decode()
    )


def test_a_portal_booking_awaits_approval_and_says_by_whom(client, office, alice, fiona):
    client.force_login(alice)
    response = client.post(reverse("portal:book"), book_form(office.big), follow=True)
    page = response.content.decode()
    assert "awaits approval by Facilities" in page
    assert "Awaiting approval by Facilities" in page  # the booking's page
    booking = Reservation.objects.get()
    assert (booking.status, booking.approval) == (ReservationStatus.PENDING, "awaiting")
    mine = client.get(reverse("portal:mine")).content.decode()
    assert "Awaiting approval by Facilities" in mine


def test_the_queue_is_for_approvers_and_lists_soonest_first(
    client, office, alice, fiona, make_user
):
    later = awaiting(office, alice, hour=15)
    sooner = awaiting(office, alice, hour=9)
    client.force_login(alice)
    assert client.get(reverse("portal:approvals")).status_code == 403
    assert "Approvals</a>" not in client.get(reverse("portal:mine")).content.decode()
    client.force_login(fiona)
    page = client.get(reverse("portal:approvals")).content.decode()
    assert "Approvals</a>" in page  # the nav link
    assert page.index(f"approval-{sooner.pk}") < page.index(f"approval-{later.pk}")
    # An approver of another space's rule does not see these.
    other = make_user()
    other.groups.add(Group.objects.create(name="Desks"))
    ApprovalRule.objects.create(
        location=office.location, space=office.desk, approvers=other.groups.get()
    )
    client.force_login(other)
    assert f"approval-{sooner.pk}" not in client.get(reverse("portal:approvals")).content.decode()


def test_the_queue_decides_by_post(client, office, alice, fiona):
    first, second = awaiting(office, alice, 9), awaiting(office, alice, 12)
    client.force_login(fiona)
    decide = reverse("portal:approval_decide", args=[first.pk])
    assert client.get(decide).status_code == 405
    response = client.post(decide, {"action": "approve"}, follow=True)
    assert "Approved: Big room" in response.content.decode()
    client.post(
        reverse("portal:approval_decide", args=[second.pk]),
        {"action": "decline", "reason": "VIP visit"},
    )
    first.refresh_from_db(), second.refresh_from_db()
    assert first.status == ReservationStatus.CONFIRMED
    assert second.cancel_reason == "Declined by fiona: VIP visit"
    again = client.post(decide, {"action": "decline"}, follow=True).content.decode()
    assert "not awaiting approval: it is approved" in again


def _emailed_links(django_capture_on_commit_callbacks, office, alice) -> tuple[Reservation, dict]:
    with django_capture_on_commit_callbacks(execute=True):
        booking = awaiting(office, alice)
    [email] = [m for m in mail.outbox if "fiona@example.com" in m.to]
    links = dict(re.findall(r"(Approve|Decline): https?://[^/]+(/approvals/\S+/)", email.body))
    return booking, links


def test_an_approval_decided_through_the_emailed_link(
    client, office, alice, fiona, django_capture_on_commit_callbacks
):
    booking, links = _emailed_links(django_capture_on_commit_callbacks, office, alice)
    # Not signed in: the sign-in page first, then back to the link.
    response = client.get(links["Approve"])
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(fiona)
    page = client.get(links["Approve"])  # what a mail scanner (or a preview) does
    assert page.status_code == 200
    assert "Approve this booking?" in page.content.decode()
    booking.refresh_from_db()
    assert booking.approval == "awaiting"  # a GET decides nothing

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(links["Approve"])
    booking.refresh_from_db()
    assert (booking.status, booking.approval, booking.decided_by) == (
        "confirmed",
        "approved",
        fiona,
    )
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Approved"]
    # The link again: the page says it is decided, and a second POST changes nothing.
    assert "not awaiting approval any more" in client.get(links["Approve"]).content.decode()


def test_the_decline_link_takes_a_reason(
    client, office, alice, fiona, django_capture_on_commit_callbacks
):
    booking, links = _emailed_links(django_capture_on_commit_callbacks, office, alice)
    client.force_login(fiona)
    assert "Decline this booking?" in client.get(links["Decline"]).content.decode()
    client.post(links["Decline"], {"reason": "Room needed for the board"})
    booking.refresh_from_db()
    assert booking.cancel_reason == "Declined by fiona: Room needed for the board"


def test_links_refused_when_tampered_expired_or_not_for_an_approver(
    client, office, alice, fiona, make_user, django_capture_on_commit_callbacks
):
    booking, links = _emailed_links(django_capture_on_commit_callbacks, office, alice)
    client.force_login(alice)  # the person who booked is not an approver
    assert client.post(links["Approve"]).status_code == 403
    client.force_login(fiona)
    tampered = links["Approve"].replace(links["Approve"][-6:-1], "AAAAA")
    assert client.post(tampered).status_code == 400
    later = approvals.deadline(booking) + timedelta(minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = client.post(links["Approve"])
    assert response.status_code == 400 and "expired" in response.content.decode()
    booking.refresh_from_db()
    assert booking.approval == "awaiting"


def test_the_admin_actions_decide_through_the_service(client, office, alice, make_user, fiona):
    first, second = awaiting(office, alice, 9), awaiting(office, alice, 12)
    plain = awaiting(office, alice, 14)
    services.approve(actor=fiona, reservation=plain)
    boss = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(boss)
    changelist = reverse("admin:reservations_reservation_changelist")
    response = client.post(
        changelist, {"action": "approve_selected", "_selected_action": [first.pk, plain.pk]},
        follow=True,
    )  # fmt: skip
    page = response.content.decode()
    assert "Approved 1 reservation(s)." in page
    assert "not awaiting approval: it is approved" in page
    client.post(changelist, {"action": "decline_selected", "_selected_action": [second.pk]})
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, second.status) == ("confirmed", "cancelled")
    assert first.history.first().history_user == boss

    # A staff member who is not an approver is refused, with the reason.
    clerk = make_user("clerk", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__endswith="_reservation"))
    third = awaiting(office, alice, 16)
    client.force_login(clerk)
    page = client.post(
        changelist, {"action": "approve_selected", "_selected_action": [third.pk]}, follow=True
    ).content.decode()
    assert "Only the approvers of this space" in page
    third.refresh_from_db()
    assert third.approval == "awaiting"


def test_the_rule_admin_renders_with_help_text(client, make_user, facilities):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:reservations_approvalrule_add")).content.decode()
    assert "A booking not decided this many hours before its start" in page
    listing = client.get(reverse("admin:reservations_approvalrule_changelist"))
    assert "approved by Facilities" in listing.content.decode()


def test_the_booking_page_history_says_who_approved(client, office, alice, fiona):
    booking = awaiting(office, alice)
    services.approve(actor=fiona, reservation=booking)
    client.force_login(alice)
    page = client.get(reverse("portal:detail", args=[booking.pk])).content.decode()
    assert "Approved by Fiona Fox" in page
    assert '<span class="history-what">Approved</span>' in page
