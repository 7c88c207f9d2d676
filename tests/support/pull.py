"""``Remote``: the room's calendar edited as a person would, on either provider (through
the sandbox's control API), and ``at`` for the times of the pull tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.calendars.conftest import GOOGLE_ROOM, MS_ROOM, control
from tests.conftest import next_weekday

KINDS = ["microsoft", "google"]


def at(day_offset: int, hour: int) -> datetime:
    day = next_weekday(1) + timedelta(days=day_offset)
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC).replace(hour=hour)


class Remote:
    """Edit the room's calendar as a person would, on either provider."""

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
