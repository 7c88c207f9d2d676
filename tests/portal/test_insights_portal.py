"""The Insights page (``/insights/``) and its CSV downloads: only for people with the
``view_insights`` permission, its figures equal the hand count of a small office (filters
included), and bad filters get a message, not an error page."""

from __future__ import annotations

import csv
import io

import pytest

from reservations.insights import rollup
from tests.support.insights_data import D1, D2, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def office(make_location, make_space, make_user):
    built = build(make_location, make_space, make_user)
    rollup.rebuild(D1, D2)
    return built


@pytest.fixture
def analyst(make_user):
    return make_user("fiona", perms=("reservations.view_insights",))


def _figures(html: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'id="figure-([a-z-]+)">([^<]*)<', html))


def test_only_people_with_the_permission_see_insights(client, office, make_user, analyst):
    plain = make_user("paul")
    client.force_login(plain)
    assert client.get("/insights/").status_code == 403
    assert client.get("/insights/export.csv?table=summary").status_code == 403
    assert "/insights/" not in client.get("/my/").content.decode()
    client.force_login(analyst)
    page = client.get("/insights/")
    assert page.status_code == 200
    assert 'href="/insights/"' in client.get("/my/").content.decode()  # the nav link


def test_signed_out_people_are_sent_to_sign_in(client):
    assert client.get("/insights/").status_code == 302


def test_the_page_shows_the_hand_count(client, office, analyst):
    client.force_login(analyst)
    page = client.get(
        "/insights/", {"location": office.location.pk, "start": str(D1), "end": str(D2)}
    )
    html = page.content.decode()
    assert _figures(html) == {
        "utilisation": "21%",  # 735 of 3480 minutes
        "bookings": "5",
        "checked-in": "67%",  # 2 of 3
        "released": "33%",
        "average-length": "2.6 h",  # 780 / 5 minutes
        "average-lead": "19.5 h",  # 5850 / 5 minutes
    }
    assert "12.2 booked hours of 58.0 open hours" in html
    report = page.context["report"]
    assert [(s.name, s.percent) for s in report.busiest] == [
        ("Desk C", "40%"), ("Room A", "11%"), ("Room B", "11%"),
    ]  # fmt: skip
    assert [(v, n) for v, _label, n in report.sources] == [
        ("portal", 2),
        ("rest_api", 1),
        ("google", 1),
        ("exchange", 1),
    ]  # fmt: skip  (ties in the order of their portal names: Another..., Google..., Outlook...)
    # Tuesday 10:00: A, B and C the whole hour; 13:00: C, and A's no-show until 13:15.
    assert report.heatmap[1][10] == 60 + 60 + 60 and report.heatmap[1][13] == 60 + 15
    assert report.heatmap[2][10] == 30 and sum(report.heatmap[0]) == 0
    # The charts are SVG with presentation attributes (the CSP forbids inline styles).
    assert "<svg" in html and "style=" not in html.split("<main", 1)[1]


def test_filters_narrow_the_figures(client, office, analyst):
    client.force_login(analyst)
    everywhere = client.get("/insights/", {"start": str(D1), "end": str(D2)})
    assert _figures(everywhere.content.decode())["bookings"] == "6"  # Paris's too
    one_day = client.get("/insights/", {"space": office.a.pk, "start": str(D1), "end": str(D1)})
    figures = _figures(one_day.content.decode())
    assert figures["bookings"] == "2" and figures["checked-in"] == "50%"  # 1 of 2
    desks = client.get("/insights/", {"kind": "desk", "start": str(D1), "end": str(D2)})
    assert _figures(desks.content.decode())["utilisation"] == "40%"  # 480 / 1200


def test_bad_filters_say_what_is_wrong(client, office, analyst):
    client.force_login(analyst)
    page = client.get("/insights/", {"start": str(D2), "end": str(D1)})
    assert page.status_code == 200
    assert "The last day is before the first day." in page.content.decode()
    page = client.get("/insights/", {"start": "yesterday", "location": "x"})
    assert page.status_code == 200 and "Enter a valid date." in page.content.decode()
    answer = client.get("/insights/export.csv", {"table": "spaces", "start": "nope"})
    assert answer.status_code == 400 and b"Enter a valid date" in answer.content
    answer = client.get("/insights/export.csv", {"table": "everything"})
    assert answer.status_code == 400 and b"table must be one of" in answer.content


def _csv(client, office, table: str) -> list[list[str]]:
    answer = client.get(
        "/insights/export.csv",
        {"location": office.location.pk, "start": str(D1), "end": str(D2), "table": table},
    )
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    assert f"insights-{table}-20260210-20260211.csv" in answer["Content-Disposition"]
    return list(csv.reader(io.StringIO(answer.content.decode())))


def test_every_table_downloads_as_csv(client, office, analyst):
    client.force_login(analyst)
    summary = dict(_csv(client, office, "summary")[1:])
    assert summary["booked_hours"] == "12.25" and summary["available_hours"] == "58.00"
    assert summary["utilisation"] == "0.2112" and summary["bookings"] == "5"
    assert (summary["checked_in"], summary["released_no_shows"]) == ("2", "1")
    assert summary["bookings_in_check_in_spaces"] == "3"
    assert summary["average_lead_minutes"] == "1170.0"
    heatmap = _csv(client, office, "heatmap")
    assert heatmap[0][:3] == ["weekday", "00:00", "01:00"]
    assert heatmap[2][0] == "Tuesday" and heatmap[2][1 + 10] == "180"
    spaces = _csv(client, office, "spaces")
    assert spaces[1] == ["HQ", "Desk C", "1", "8.00", "20.00", "0.4000"]
    assert [row[1] for row in spaces[1:]] == ["Desk C", "Room A", "Room B"]
    sources = _csv(client, office, "sources")
    assert sources[1:] == [
        ["portal", "Booking form", "2"], ["rest_api", "Another system (API)", "1"],
        ["google", "Google Calendar", "1"], ["exchange", "Outlook calendar", "1"],
    ]  # fmt: skip
    page = client.get(
        "/insights/", {"location": office.location.pk, "start": str(D1), "end": str(D2)}
    )
    assert "table=heatmap" in page.content.decode()


def test_the_admin_links_to_insights(client, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get("/admin/reservations/location/")
    assert 'id="insights-link"' in page.content.decode()
