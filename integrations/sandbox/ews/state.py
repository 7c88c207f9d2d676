"""The Exchange organisation the EWS endpoint serves: mailboxes, folders, calendar items.

Ids and change keys are opaque base64 strings, as Exchange's are. Every write gives an item a
new change key and appends to its folder's change log, which ``SyncFolderItems`` reads
through sync states (opaque tokens the sandbox issued; anything else is
``ErrorInvalidSyncStateData``). Each item remembers which fields each of its versions
changed, so ``UpdateItem`` with ``ConflictResolution="AutoResolve"`` and an old change key
succeeds when the fields it sets were not changed since, as Exchange resolves it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .soap import SERVER_BUILDS, ItemError

ITEM_PREFIX = b"RSVI"
FOLDER_PREFIX = b"RSVF"
DISTINGUISHED = ("root", "msgfolderroot", "calendar")


@dataclass
class Mailbox:
    email: str
    name: str
    kind: str  # "user" or "room"
    username: str = ""
    password: str = ""
    impersonation: bool = False
    capacity: int | None = None
    # Rooms: Set-CalendarProcessing. "AutoAccept" (the resource booking assistant answers),
    # "AutoUpdate" (requests land tentative; a delegate answers by hand), "None" (not
    # processed). With AutoAccept, a request that conflicts is declined unless allow_conflicts.
    automate_processing: str = "AutoAccept"
    allow_conflicts: bool = False
    max_duration_minutes: int = 1440
    booking_window_days: int = 180
    add_organizer_to_subject: bool = True
    delete_subject: bool = True
    # Who may see what in GetUserAvailability: "AvailabilityOnly" (free/busy times, Exchange's
    # default), "LimitedDetails" (and subject, location) or "Reviewer" (all details).
    free_busy_access: str = "AvailabilityOnly"
    folders: dict[str, Folder] = field(default_factory=dict)  # distinguished name -> folder


@dataclass
class Folder:
    id: str
    mailbox: str
    distinguished: str
    display_name: str
    folder_class: str
    parent: str | None
    change_key: str = ""
    # (sequence, item id, "Create"|"Update"|"Delete")
    changes: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class Attendee:
    email: str
    name: str = ""
    response: str = "Unknown"  # ResponseTypeType


@dataclass
class CalendarItem:
    id: str
    mailbox: str
    folder_id: str
    subject: str = ""
    body: str = ""
    body_type: str = "HTML"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    is_all_day: bool = False
    location: str = ""
    free_busy: str = "Busy"
    sensitivity: str = "Normal"
    importance: str = "Normal"
    categories: list[str] = field(default_factory=list)
    reminder_is_set: bool = True
    reminder_minutes: int = 15
    uid: str = ""
    organizer: Attendee | None = None
    required: list[Attendee] = field(default_factory=list)
    optional: list[Attendee] = field(default_factory=list)
    resources: list[Attendee] = field(default_factory=list)
    is_cancelled: bool = False
    my_response: str = "Organizer"
    start_tz: str | None = None
    end_tz: str | None = None
    # (property set / tag, name or id, type) -> value; ExtendedFieldURI attributes kept as given
    extended: dict[tuple[tuple[str, str], ...], Any] = field(default_factory=dict)
    created: dt.datetime | None = None
    modified: dt.datetime | None = None
    # Versions: change key -> fields the write that made it changed (None for the creation).
    versions: list[tuple[str, frozenset[str] | None]] = field(default_factory=list)
    # Recurring series (recurrence.py): "Single", "RecurringMaster", or, for an occurrence
    # computed from its master, "Occurrence" / "Exception" with its original start.
    item_type: str = "Single"
    recurrence: Any = None  # recurrence.Pattern, on a master
    recurrence_xml: Any = None  # the t:Recurrence element as the client wrote it
    exceptions: dict[dt.datetime, dict[str, Any]] = field(default_factory=dict)
    deleted: set[dt.datetime] = field(default_factory=set)
    original_start: dt.datetime | None = None
    master_id: str = ""

    @property
    def change_key(self) -> str:
        return self.versions[-1][0]

    @property
    def is_meeting(self) -> bool:
        return bool(self.required or self.optional or self.resources)


def new_change_key() -> str:
    # Exchange's calendar change keys start with DwAAABYAAAA; the rest is a version blob.
    return base64.b64encode(b"\x0f\x00\x00\x00\x16\x00\x00\x00" + os.urandom(16)).decode()


def new_id(prefix: bytes, mailbox: str) -> str:
    raw = prefix + uuid.uuid4().bytes + mailbox.encode("utf-8")[:40]
    return base64.b64encode(raw).decode()


def check_id(value: str, prefix: bytes) -> None:
    """ErrorInvalidIdMalformed unless ``value`` is an id of this kind the sandbox could issue."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.") from None
    if not raw.startswith(prefix) or len(raw) < len(prefix) + 16:
        raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.")


PROCESSING = ("AutoAccept", "AutoUpdate", "None")
FREE_BUSY_ACCESS = ("AvailabilityOnly", "LimitedDetails", "Reviewer")


def room_processing(room: dict[str, Any]) -> dict[str, Any]:
    """A room's calendar processing settings from its configuration entry.

    ``auto_accept: false`` (the older switch) means ``automate_processing: "AutoUpdate"``.
    """
    processing = room.get("automate_processing")
    if processing is None:
        processing = "AutoAccept" if room.get("auto_accept", True) else "AutoUpdate"
    if processing not in PROCESSING:
        raise ValueError(f"automate_processing must be one of {PROCESSING}, not {processing!r}")
    access = room.get("free_busy_access", "AvailabilityOnly")
    if access not in FREE_BUSY_ACCESS:
        raise ValueError(f"free_busy_access must be one of {FREE_BUSY_ACCESS}, not {access!r}")
    return {
        "automate_processing": processing,
        "allow_conflicts": bool(room.get("allow_conflicts", False)),
        "max_duration_minutes": int(room.get("max_duration_minutes", 1440)),
        "booking_window_days": int(room.get("booking_window_days", 180)),
        "add_organizer_to_subject": bool(room.get("add_organizer_to_subject", True)),
        "delete_subject": bool(room.get("delete_subject", True)),
        "free_busy_access": access,
    }


class EwsState:
    """All mailboxes, their folders and items; guarded by one lock."""

    def __init__(
        self, config: dict[str, Any], now: Callable[[], dt.datetime], state_dir: Path
    ) -> None:
        self.config = config
        self.state_dir = state_dir
        self.now = now
        self.lock = threading.RLock()
        build = config.get("server_build", "2019-cu15")
        self.build = SERVER_BUILDS.get(build, build)
        self.netbios = config.get("netbios_domain", "CONTOSO")
        self.mailboxes: dict[str, Mailbox] = {}
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, CalendarItem] = {}
        self.sequence = 0
        # sync state token -> (folder id, sequence seen)
        self.sync_states: dict[str, tuple[str, int]] = {}
        # Called under the lock after every write: (kind "Create"|"Update"|"Delete", item,
        # folder). Notifications listen here; rooms and notifications live in their modules.
        self.listeners: list[Callable[[str, CalendarItem, Folder], None]] = []
        # Subscriptions (notifications.py) by id; streams wait on ``changed``.
        self.subscriptions: dict[str, Any] = {}
        self.changed = threading.Condition(self.lock)
        # Open GetStreamingEvents connections: token -> (account they count against, ids).
        self.streams: dict[object, tuple[str, frozenset[str]]] = {}
        # ErrorServerBusy injected through the control API: answers left, BackOffMilliseconds.
        self.busy: list[tuple[int, int]] = []
        for user in config.get("users", []):
            self._add_mailbox(
                Mailbox(
                    email=user["email"].lower(),
                    name=user.get("name", user["email"]),
                    kind="user",
                    username=user.get("username", user["email"].partition("@")[0]),
                    password=user.get("password", ""),
                    impersonation=bool(user.get("impersonation", False)),
                    free_busy_access=user.get("free_busy_access", "AvailabilityOnly"),
                )
            )
        for room in config.get("rooms", []):
            self._add_mailbox(
                Mailbox(
                    email=room["email"].lower(),
                    name=room.get("name", room["email"]),
                    kind="room",
                    capacity=room.get("capacity"),
                    **room_processing(room),
                )
            )

    def _add_mailbox(self, mailbox: Mailbox) -> None:
        self.mailboxes[mailbox.email] = mailbox
        root = self._add_folder(mailbox, "root", "", "", None)
        top = self._add_folder(
            mailbox, "msgfolderroot", "Top of Information Store", "IPF.Note", root.id
        )
        self._add_folder(mailbox, "calendar", "Calendar", "IPF.Appointment", top.id)

    def add_calendar_folder(
        self, mailbox: Mailbox, display: str, folder_class: str = "IPF.Appointment"
    ) -> Folder:
        """A folder under the mailbox's calendar, as Outlook's "New Calendar" makes one
        (IPF.Appointment; another class, e.g. IPF.Note, as made by mistake or by a script):
        not distinguished, reached by its folder id. Exchange refuses a second folder of the
        same name (case-insensitive) under one parent."""
        calendar = mailbox.folders["calendar"]
        if any(
            f.parent == calendar.id and f.display_name.lower() == display.lower()
            for f in self.folders.values()
        ):
            raise ItemError("ErrorFolderExists", "A folder with the specified name already exists.")
        folder = Folder(
            new_id(FOLDER_PREFIX, mailbox.email),
            mailbox.email,
            "",
            display,
            folder_class,
            calendar.id,
            new_change_key(),
        )
        self.folders[folder.id] = folder
        return folder

    def delete_folder(self, folder: Folder) -> None:
        """A folder made under a calendar deleted in Outlook, with its items and sub-folders
        (Exchange moves it to Deleted Items; here it is gone: its id answers
        ErrorFolderNotFound)."""
        for child in self.children(folder):
            self.delete_folder(child)
        for item in self.items_in(folder):
            del self.items[item.id]
        for token in [t for t, (f, _seq) in self.sync_states.items() if f == folder.id]:
            del self.sync_states[token]
        del self.folders[folder.id]

    def children(self, folder: Folder, deep: bool = False) -> list[Folder]:
        """The folders under ``folder`` (its direct children, or all descendants)."""
        found = []
        for child in self.folders.values():
            if child.parent == folder.id:
                found.append(child)
                if deep:
                    found.extend(self.children(child, deep=True))
        return found

    def _add_folder(
        self, mailbox: Mailbox, name: str, display: str, cls: str, parent: str | None
    ) -> Folder:
        folder = Folder(
            new_id(FOLDER_PREFIX, mailbox.email),
            mailbox.email,
            name,
            display,
            cls,
            parent,
            new_change_key(),
        )
        mailbox.folders[name] = folder
        self.folders[folder.id] = folder
        return folder

    # -- lookups -----------------------------------------------------------------------

    def mailbox(self, email: str) -> Mailbox:
        found = self.mailboxes.get((email or "").strip().lower())
        if found is None:
            raise ItemError(
                "ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it."
            )
        return found

    def user_by_login(self, login: str) -> Mailbox | None:
        """A user by ``user@domain``, ``DOMAIN\\user`` or ``user``, case-insensitively."""
        login = login.strip().lower()
        domain, sep, name = login.rpartition("\\")
        if sep and domain != self.netbios.lower():
            return None
        for mailbox in self.mailboxes.values():
            if mailbox.kind != "user" or not mailbox.password:
                continue
            if login == mailbox.email or (name or login) == mailbox.username.lower():
                return mailbox
        return None

    def folder(self, folder_id: str) -> Folder:
        check_id(folder_id, FOLDER_PREFIX)
        found = self.folders.get(folder_id)
        if found is None:
            raise ItemError(
                "ErrorFolderNotFound", "The specified folder could not be found in the store."
            )
        return found

    def item(self, item_id: str) -> CalendarItem:
        check_id(item_id, ITEM_PREFIX)
        found = self.items.get(item_id)
        if found is None:
            raise ItemError("ErrorItemNotFound", "The specified object was not found in the store.")
        return found

    # -- writes --------------------------------------------------------------------------

    def _log(self, item: CalendarItem, kind: str) -> None:
        self.sequence += 1
        folder = self.folders[item.folder_id]
        folder.changes.append((self.sequence, item.id, kind))
        folder.change_key = new_change_key()
        for listener in self.listeners:
            listener(kind, item, folder)
        self.changed.notify_all()

    def create(self, item: CalendarItem) -> CalendarItem:
        with self.lock:
            return self._create(item)

    def _create(self, item: CalendarItem) -> CalendarItem:
        now = self.now()
        item.created = item.modified = now
        if not item.uid:
            item.uid = uuid.uuid4().hex.upper() + "00000000000000000000000000000000"
        item.versions = [(new_change_key(), None)]
        self.items[item.id] = item
        self._log(item, "Create")
        return item

    def touched(self, item: CalendarItem, fields: set[str]) -> None:
        """Record a write to ``item`` that changed ``fields``: new change key, change log."""
        with self.lock:
            item.modified = self.now()
            item.versions.append((new_change_key(), frozenset(fields)))
            self._log(item, "Update")

    def delete(self, item: CalendarItem) -> None:
        with self.lock:
            self.items.pop(item.id, None)
            self._log(item, "Delete")

    def take_busy(self) -> int | None:
        """The BackOffMilliseconds of an injected ErrorServerBusy due now, if any."""
        with self.lock:
            if not self.busy:
                return None
            left, back_off = self.busy[0]
            if left <= 1:
                self.busy.pop(0)
            else:
                self.busy[0] = (left - 1, back_off)
            return back_off

    def expire_sync_states(self, mailbox: str | None = None) -> int:
        """Forget the sync states issued (for one mailbox's folders, or all): the next
        SyncFolderItems with one answers ErrorInvalidSyncStateData, as after a mailbox move."""
        with self.lock:
            gone = [
                token
                for token, (folder_id, _seq) in self.sync_states.items()
                if mailbox is None or self.folders[folder_id].mailbox == mailbox
            ]
            for token in gone:
                del self.sync_states[token]
            return len(gone)

    def changed_since(self, item: CalendarItem, change_key: str) -> frozenset[str] | None:
        """Fields changed after the version ``change_key``; None if it is not one of its keys."""
        keys = [key for key, _ in item.versions]
        if change_key not in keys:
            return None
        changed: set[str] = set()
        for _key, fields in item.versions[keys.index(change_key) + 1 :]:
            changed |= fields or set()
        return frozenset(changed)

    # -- sync states -------------------------------------------------------------------

    def issue_sync_state(self, folder: Folder, sequence: int) -> str:
        token = base64.b64encode(b"RSVS" + secrets.token_bytes(24)).decode()
        self.sync_states[token] = (folder.id, sequence)
        return token

    def items_in(self, folder: Folder) -> list[CalendarItem]:
        return [item for item in self.items.values() if item.folder_id == folder.id]
