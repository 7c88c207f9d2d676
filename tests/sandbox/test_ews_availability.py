"""GetUserAvailability, GetServerTimeZones and ResolveNames through exchangelib."""

from __future__ import annotations

import pytest
from exchangelib import UTC, CalendarItem, EWSDateTime, EWSTimeZone
from exchangelib.errors import (
    ErrorMailRecipientNotFound,
    ErrorNameResolutionNoResults,
    ErrorTimeIntervalTooBig,
)

from tests.support.ews_sandbox import account

ALICE, BOB, ATLAS, SPREE = (
    "alice@contoso.test",
    "bob@contoso.test",
    "atlas@contoso.test",
    "spree@contoso.test",
)
BERLIN = EWSTimeZone("Europe/Berlin")


def at(hour: int, day: int = 7, month: int = 1, tz=UTC) -> EWSDateTime:
    return EWSDateTime(2030, month, day, hour, tzinfo=tz)


def book(ews, mailbox: str, subject: str, start, end, **extra) -> None:
    acc = account(ews, mailbox, "svc-reserva@contoso.test", impersonate=True)
    CalendarItem(
        account=acc, folder=acc.calendar, subject=subject, start=start, end=end, **extra
    ).save()


def test_free_busy_per_mailbox_with_details_only_where_allowed(ews):
    book(ews, ALICE, "Dentist", at(9), at(10))
    book(ews, ATLAS, "Board", at(10), at(11), legacy_free_busy_status="Tentative")
    book(ews, SPREE, "Sprint review", at(12), at(13), location="Spree")
    acc = account(ews, ALICE)
    views = list(
        acc.protocol.get_free_busy_info(
            accounts=[
                (acc, "Organizer", False),
                (ATLAS, "Room", False),
                (SPREE, "Room", False),
                ("nobody@contoso.test", "Required", False),
            ],
            start=at(8),
            end=at(14),
            merged_free_busy_interval=60,
            requested_view="DetailedMerged",
        )
    )
    mine, atlas, spree, nobody = views
    # Her own calendar: every detail.
    assert mine.view_type == "DetailedMerged"
    assert [(e.start, e.end, e.busy_type, e.details.subject) for e in mine.calendar_events] == [
        (at(9), at(10), "Busy", "Dentist")
    ]
    assert mine.merged == "020000"
    # Another mailbox with Exchange's default permission: free/busy only.
    assert atlas.view_type == "FreeBusyMerged"
    assert [(e.start, e.busy_type, e.details) for e in atlas.calendar_events] == [
        (at(10), "Tentative", None)
    ]
    assert atlas.merged == "001000"
    # A room shared with LimitedDetails: subject and location.
    assert [(e.details.subject, e.details.location) for e in spree.calendar_events] == [
        ("Sprint review", "Spree")
    ]
    assert isinstance(nobody, ErrorMailRecipientNotFound)


@pytest.mark.parametrize(("month", "local_hour"), [(1, 10), (7, 11)])
def test_times_come_back_in_the_requested_time_zone(ews, month, local_hour):
    book(ews, ALICE, "Dentist", at(9, month=month), at(10, month=month))
    acc = account(ews, ALICE)
    (view,) = acc.protocol.get_free_busy_info(
        accounts=[(acc, "Organizer", False)],
        start=at(0, month=month, tz=BERLIN),
        end=at(23, month=month, tz=BERLIN),
        requested_view="Detailed",
    )
    (event,) = view.calendar_events
    assert event.start == at(local_hour, month=month, tz=BERLIN)
    assert event.start.astimezone(UTC) == at(9, month=month)


def test_a_window_over_42_days_is_refused(ews):
    acc = account(ews, ALICE)
    with pytest.raises(ErrorTimeIntervalTooBig):
        list(
            acc.protocol.get_free_busy_info(
                accounts=[(acc, "Organizer", False)],
                start=at(0),
                end=at(0, day=28, month=2),
                requested_view="FreeBusy",
            )
        )


def test_server_time_zones(ews):
    acc = account(ews, ALICE)
    zones = {z.id: z for z in acc.protocol.get_timezones(return_full_timezone_data=True)}
    assert set(zones) == {"UTC", "W. Europe Standard Time"}
    std, dst, period = zones["W. Europe Standard Time"].get_std_and_dst(for_year=2030)
    assert (period.bias_in_minutes, dst.bias, std.iso_month, dst.iso_month) == (-60, -60, 10, 3)


def test_resolve_names(ews):
    protocol = account(ews, ALICE).protocol
    assert protocol.version.build.major_version == 15  # the version probe (ConvertId) first
    assert [m.email_address for m in protocol.resolve_names(["smtp:Spree@contoso.test"])] == [SPREE]
    assert [m.name for m in protocol.resolve_names(["Alice"])] == ["Alice Adams"]
    # Several candidates: a warning exchangelib passes over, with all of them.
    assert sorted(m.email_address for m in protocol.resolve_names(["b"])) == [
        BOB,
        "borealis@contoso.test",
    ]
    (missing,) = protocol.resolve_names(["nobody@contoso.test"])
    assert isinstance(missing, ErrorNameResolutionNoResults)
