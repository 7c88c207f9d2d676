"""``Remote``: the room's calendar edited as a person would, on any provider (through
the sandbox's control API), and ``at`` for the times of the pull tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

from tests.calendars.conftest import EWS_ROOM, GOOGLE_ROOM, MS_ROOM, control
from tests.conftest import next_weekday

KINDS = ["microsoft", "google", "ews"]


def at(day_offset: int, hour: int) -> datetime:
    day = next_weekday(1) + timedelta(days=day_offset)
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC).replace(hour=hour)


class Remote:
    """Edit the room's calendar as a person would, on any provider."""

    def __new__(cls, sandbox, kind: str, *args, **kwargs) -> Remote:
        if cls is Remote and kind == "ews":  # Remote(sandbox, "ews") edits over EWS
            return super().__new__(EwsRemote)
        return super().__new__(cls)

    def __init__(self, sandbox, kind: str) -> None:
        self.sandbox, self.kind = sandbox, kind

    def _times(self, start: datetime, end: datetime, zone: str = "UTC") -> dict:
        if self.kind == "microsoft":
            fmt = "%Y-%m-%dT%H:%M:%S"
            return {
                "start": {"dateTime": start.strftime(fmt), "timeZone": zone},
                "end": {"dateTime": end.strftime(fmt), "timeZone": zone},
            }
        return {
            "start": {"dateTime": start.astimezone(UTC).isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": end.astimezone(UTC).isoformat().replace("+00:00", "Z")},
        }

    @property
    def _path(self) -> str:
        if self.kind == "microsoft":
            return f"microsoft/mailboxes/{MS_ROOM}/events"
        return f"google/calendars/{GOOGLE_ROOM}/events"

    def create(self, subject: str, start: datetime, end: datetime, **extra) -> str:
        key = "subject" if self.kind == "microsoft" else "summary"
        body = {key: subject, **self._times(start, end), **extra}
        return control(self.sandbox, "POST", self._path, json=body)["id"]

    def move(self, event_id: str, start: datetime, end: datetime) -> None:
        control(self.sandbox, "PATCH", f"{self._path}/{event_id}", json=self._times(start, end))

    def rename(self, event_id: str, subject: str) -> None:
        key = "subject" if self.kind == "microsoft" else "summary"
        control(self.sandbox, "PATCH", f"{self._path}/{event_id}", json={key: subject})

    def delete(self, event_id: str) -> None:
        control(self.sandbox, "DELETE", f"{self._path}/{event_id}")

    def expire_cursor(self) -> None:
        if self.kind == "microsoft":
            control(self.sandbox, "POST", "microsoft/delta/expire", json={"mailbox": MS_ROOM})
        else:
            control(self.sandbox, "POST", "google/sync-tokens/expire", json={})


class EwsRemote(Remote):
    """The room's mailbox edited "as someone in Outlook" on Exchange Server (the sandbox's EWS
    control routes): each edit gives the item a new change key and shows in SyncFolderItems."""

    def _times(self, start: datetime, end: datetime, zone: str = "UTC") -> dict:
        return {"start": start.astimezone(UTC).isoformat(), "end": end.astimezone(UTC).isoformat()}

    @property
    def _path(self) -> str:
        return f"ews/mailboxes/{EWS_ROOM}/items"

    def _item(self, event_id: str) -> str:
        return f"{self._path}/{quote(event_id, safe='')}"

    def create(self, subject: str, start: datetime, end: datetime, **extra) -> str:
        """``reservation_tag=<id>``: with Reserva's tag (an item our push made), saved over EWS."""
        if "reservation_tag" in extra:
            from integrations.ews.mapping import TAG_FIELD, register

            register()
            tag = str(extra.pop("reservation_tag"))
            return self._save_over_ews(subject=subject, start=start, end=end, **{TAG_FIELD: tag})
        body = {"subject": subject, **self._times(start, end), **extra}
        return control(self.sandbox, "POST", self._path, json=body)["id"]

    def move(self, event_id: str, start: datetime, end: datetime) -> None:
        control(self.sandbox, "PATCH", self._item(event_id), json=self._times(start, end))

    def rename(self, event_id: str, subject: str) -> None:
        control(self.sandbox, "PATCH", self._item(event_id), json={"subject": subject})

    def delete(self, event_id: str) -> None:
        control(self.sandbox, "DELETE", self._item(event_id))

    def expire_cursor(self) -> None:
        control(self.sandbox, "POST", "ews/sync-states/expire", json={"mailbox": EWS_ROOM})

    def create_all_day(self, subject: str, day: date) -> str:
        """An all-day item (the control routes have no all-day field)."""
        from exchangelib import EWSDate

        start, end = EWSDate.from_date(day), EWSDate.from_date(day + timedelta(days=1))
        return self._save_over_ews(subject=subject, is_all_day=True, start=start, end=end)

    def _save_over_ews(self, **fields) -> str:
        """An item the control routes cannot make, saved over EWS by the sandbox's sync user
        impersonating the room (no invitations), as Outlook would save it."""
        from exchangelib import CalendarItem, EWSDateTime
        from exchangelib.items import SEND_TO_NONE

        from tests.support.ews_sandbox import account

        for key in ("start", "end"):
            if isinstance(fields[key], datetime):
                fields[key] = EWSDateTime.from_datetime(fields[key].astimezone(UTC))
        room = account(self.sandbox, EWS_ROOM, "svc-reserva@contoso.test", impersonate=True)
        item = CalendarItem(account=room, folder=room.calendar, **fields)
        item.save(send_meeting_invitations=SEND_TO_NONE)
        return str(item.id)
