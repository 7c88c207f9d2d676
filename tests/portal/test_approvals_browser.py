"""Approvals in a real browser (Chromium via Playwright): alice books a room that needs
approval and is told who approves it; the approver opens *Approvals* from the navigation and
approves it there; another booking is decided through the link of the approvers' email
(sign-in, the confirmation page, the button), with a reason for declining."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from playwright.sync_api import expect

from reservations import services
from reservations.models import ApprovalRule, Reservation
from tests.conftest import local, next_weekday

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = next_weekday(1)


@pytest.fixture
def fiona(office, make_user):
    group = Group.objects.create(name="Facilities")
    ApprovalRule.objects.create(location=office.location, space=office.big, approvers=group)
    user = make_user("fiona", first_name="Fiona", last_name="Fox")
    user.groups.add(group)
    return user


def test_an_approver_approves_from_the_queue(new_page, live_server, office, alice, fiona):
    page = new_page(alice)
    page.goto(f"{live_server.url}/book/?space={office.big.pk}&date={DAY}&start=10:00&end=11:00")
    expect(page.get_by_role("note").filter(has_text="Needs approval by Facilities")).to_be_visible()
    page.get_by_label("Title").fill("Offsite prep")
    page.get_by_role("button", name="Book Big room").click()
    expect(page.get_by_text("awaits approval by Facilities")).to_be_visible()
    expect(page.get_by_text("Awaiting approval by Facilities")).to_be_visible()
    expect(page.get_by_role("link", name="Approvals")).to_have_count(0)

    approver = new_page(fiona)
    approver.goto(f"{live_server.url}/my/")
    approver.get_by_role("link", name="Approvals").click()
    card = approver.locator(".booking-card").filter(has_text="Offsite prep")
    expect(card).to_contain_text("for Alice Archer")
    card.get_by_role("button", name="Approve").click()
    expect(approver.get_by_text("Approved: Big room")).to_be_visible()
    expect(approver.get_by_text("Nothing to decide.")).to_be_visible()
    booking = Reservation.objects.get(requested_for=alice)
    assert (booking.status, booking.approval, booking.decided_by) == (
        "confirmed", "approved", fiona,
    )  # fmt: skip


def test_a_booking_declined_through_the_emailed_link(
    new_page, live_server, office, alice, fiona, settings
):
    settings.PUBLIC_BASE_URL = live_server.url
    start = local(office.location, DAY, 14)
    booking = services.book(
        actor=alice, space=office.big, start=start, end=start + timedelta(hours=1)
    ).reservations[0]
    [email] = [m for m in mail.outbox if fiona.email in m.to]
    link = re.search(r"Decline: (\S+)", email.body).group(1)
    assert link.startswith(live_server.url)

    page = new_page(fiona)
    page.goto(link)
    expect(page.get_by_role("heading", name="Decline this booking?")).to_be_visible()
    booking.refresh_from_db()
    assert booking.approval == "awaiting"  # opening the link decided nothing
    page.get_by_label("Reason").fill("The board meets that day")
    page.get_by_role("button", name="Decline booking").click()
    expect(page.get_by_text("Declined: Big room")).to_be_visible()
    booking.refresh_from_db()
    assert booking.status == "cancelled"
    assert booking.cancel_reason == "Declined by fiona: The board meets that day"
    assert any(
        m.subject.startswith("Declined: Big room") and alice.email in m.to for m in mail.outbox
    )
