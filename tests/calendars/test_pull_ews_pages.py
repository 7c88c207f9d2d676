"""Pull of an Exchange Server room whose changes take several SyncFolderItems answers, against
the sandbox over real HTTPS: every page is read before anything is applied, the cursor saved
is the last page's sync state, and a pull that fails between two pages saves nothing, so the
next one reads the same changes again from the cursor it kept: none lost, none made twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from calendars.models import SpaceCalendar, SyncLink
from calendars.sync import pull
from integrations.base import TransientError
from integrations.ews import client as ews_client
from reservations.models import Reservation
from tests.calendars.conftest import control
from tests.support.pull import Remote, at

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(ews_client, "SYNC_PAGE", 2)


def made(binding: SpaceCalendar) -> list[tuple[str, object]]:
    rows = Reservation.objects.filter(space=binding.space).order_by("start")
    return [(r.title, r.start) for r in rows]


def test_a_paged_pull_brings_every_event_once(ews_binding, sandbox):
    remote = Remote(sandbox, "ews")
    assert pull.pull_binding(ews_binding.pk).full
    starts = [at(n, 9) for n in range(5)]
    for n, start in enumerate(starts):
        remote.create(f"Walk-in {n}", start, start + timedelta(hours=1))
    result = pull.pull_binding(ews_binding.pk)
    assert (result.status, result.created, result.pages) == ("succeeded", 5, 3)
    assert made(ews_binding) == [(f"Walk-in {n}", s) for n, s in enumerate(starts)]
    quiet = pull.pull_binding(ews_binding.pk)
    assert (quiet.created, quiet.updated, quiet.pages) == (0, 0, 1)


def test_a_pull_that_fails_between_pages_keeps_its_cursor_and_loses_nothing(
    ews_binding, sandbox, monkeypatch
):
    remote = Remote(sandbox, "ews")
    pull.pull_binding(ews_binding.pk)
    cursor = SpaceCalendar.objects.get(pk=ews_binding.pk).sync_token
    starts = [at(n, 10) for n in range(3)]
    for n, start in enumerate(starts):
        remote.create(f"Standup {n}", start, start + timedelta(hours=1))

    # After the first page, every connection to Exchange drops (a network cut, a restart).
    real_changes = ews_client.EwsClient.changes

    def cut_after_first_page(self, ref, token, *args, **kwargs):
        if token and token != cursor:
            control(sandbox, "POST", "faults", json={"kind": "drop", "service": "ews", "count": 20})
        return real_changes(self, ref, token, *args, **kwargs)

    monkeypatch.setattr(ews_client.EwsClient, "changes", cut_after_first_page)
    with pytest.raises(TransientError):
        pull.pull_binding(ews_binding.pk)
    assert SpaceCalendar.objects.get(pk=ews_binding.pk).sync_token == cursor
    assert made(ews_binding) == []  # the first page was read, not applied

    control(sandbox, "DELETE", "faults")
    monkeypatch.setattr(ews_client.EwsClient, "changes", real_changes)
    again = pull.pull_binding(ews_binding.pk)
    assert (again.created, again.pages) == (3, 2)
    assert made(ews_binding) == [(f"Standup {n}", s) for n, s in enumerate(starts)]
    assert SpaceCalendar.objects.get(pk=ews_binding.pk).sync_token != cursor
    assert pull.pull_binding(ews_binding.pk).created == 0


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_between_pages_saves_nothing_and_the_next_pull_loses_nothing(
    ews_binding, sandbox
):
    """A real worker pulls 250 new events (two SyncFolderItems pages of 200); the second
    page's answer is held back and the worker is killed (SIGKILL) meanwhile. Nothing was
    applied and the cursor is the one saved before; a new worker's pull brings all 250, each
    once. (Basic sign-in: each request reaches the sandbox once, as NTLM's handshake would
    not, so the held answer is the second page's.)"""
    from calendars import tasks
    from tests.calendars.conftest import sync_worker
    from tests.conftest import wait_for

    credential = ews_binding.provider.credential
    credential.auth_method = "basic"
    credential.save()
    pull.pull_binding(ews_binding.pk)
    cursor = SpaceCalendar.objects.get(pk=ews_binding.pk).sync_token
    remote = Remote(sandbox, "ews")
    starts = [at(n % 20, 6 + n // 20) for n in range(250)]
    for n, start in enumerate(starts):
        remote.create(f"Walk-in {n}", start, start + timedelta(minutes=30))
    hold = {"kind": "slow", "service": "ews", "body": "<m:SyncFolderItems", "skip": 1}
    control(sandbox, "POST", "faults", json={**hold, "delay_seconds": 60, "count": 1})

    fast = {"SYNC_LOCK_TTL_SECONDS": "3"}
    with sync_worker("test-ews-pages", **fast) as worker:
        assert tasks.request_pull(ews_binding.pk)
        held = wait_for(lambda: control(sandbox, "GET", "faults")["value"] == [], 60)
        assert held, "the worker's pull never asked for its second page"
        worker.kill()
        worker.wait(timeout=10)
    assert SpaceCalendar.objects.get(pk=ews_binding.pk).sync_token == cursor
    assert not Reservation.objects.filter(space=ews_binding.space).exists()

    with sync_worker("test-ews-pages", **fast):
        assert tasks.request_pull(ews_binding.pk)
        done = wait_for(
            lambda: Reservation.objects.filter(space=ews_binding.space).count() >= 250, 120
        )
        assert done, "the next pull did not bring the 250 events"
    assert made(ews_binding) == [(f"Walk-in {n}", s) for n, s in sorted(
        enumerate(starts), key=lambda pair: (pair[1], pair[0])
    )]  # fmt: skip
    links = SyncLink.objects.filter(reservation__space=ews_binding.space)
    assert links.values("external_id").distinct().count() == 250
    assert SpaceCalendar.objects.get(pk=ews_binding.pk).sync_token != cursor
