"""EWS control routes under ``/_sandbox/api/ews/`` and the page's EWS calendars.

"Someone in Outlook" lists, creates, edits and deletes items of any mailbox here: the same
change keys, change log (SyncFolderItems), notifications and room processing as an EWS write.
Tests and the manual demo also answer for a room whose delegate decides by hand, expire sync
states and subscriptions, queue ``ErrorServerBusy`` answers, and make calendar folders
under a mailbox's calendar (``POST .../mailboxes/<address>/calendar-folders``; ``?folder=<id>``
on the item list and item create routes picks one). The generic faults
(``POST /_sandbox/api/faults`` with ``"service": "ews"``) give a bare 503, a SOAP
``ErrorInternalServerError`` (500) or a dropped connection.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..control import ControlError, guarded
from ..core import Request, Response, Router
from . import notifications, rooms
from .items import format_datetime
from .operations import DELETE_HOOKS, WRITE_HOOKS
from .soap import ItemError
from .state import (
    FREE_BUSY_ACCESS,
    ITEM_PREFIX,
    PROCESSING,
    Attendee,
    CalendarItem,
    EwsState,
    Folder,
    Mailbox,
    new_id,
)

if TYPE_CHECKING:
    from ..server import Sandbox

API = "/_sandbox/api/ews"
FREE_BUSY = ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData")
# Control body key -> (CalendarItem attribute, the FieldURI a write of it changes)
EDITABLE = {
    "subject": ("subject", "item:Subject"),
    "body": ("body", "item:Body"),
    "location": ("location", "calendar:Location"),
    "start": ("start", "calendar:Start"),
    "end": ("end", "calendar:End"),
    "free_busy": ("free_busy", "calendar:LegacyFreeBusyStatus"),
}


def _state(sandbox: Sandbox) -> EwsState:
    return sandbox.services["ews"]  # type: ignore[return-value]


def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.json() or {}
    except ValueError as exc:
        raise ControlError(f"malformed JSON body: {exc}") from exc
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


def _mailbox(request: Request, sandbox: Sandbox) -> Mailbox:
    try:
        return _state(sandbox).mailbox(unquote(request.params["mailbox"]))
    except ItemError:
        raise ControlError(f"no mailbox {request.params['mailbox']!r}") from None


def _item(request: Request, sandbox: Sandbox, box: Mailbox) -> CalendarItem:
    item = _state(sandbox).items.get(unquote(request.params["item_id"]))
    if item is None or item.mailbox != box.email:
        raise ControlError("no such item in this mailbox")
    return item


def _when(value: Any, what: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ControlError(f"{what}: {exc}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def item_json(state: EwsState, item: CalendarItem) -> dict[str, Any]:
    def people(kind: str, attendees: list[Attendee]) -> list[dict[str, str]]:
        return [{"email": a.email, "type": kind, "response": a.response} for a in attendees]

    return {
        "id": item.id,
        "change_key": item.change_key,
        "mailbox": item.mailbox,
        "uid": item.uid,
        "subject": item.subject,
        "body": item.body,
        "start": format_datetime(item.start) if item.start else None,
        "end": format_datetime(item.end) if item.end else None,
        "location": item.location,
        "free_busy": item.free_busy,
        "is_cancelled": item.is_cancelled,
        "my_response": item.my_response,
        "organizer": item.organizer.email if item.organizer else None,
        "attendees": people("Required", item.required)
        + people("Optional", item.optional)
        + people("Resource", item.resources),
        "extended_properties": [
            {**dict(key), "value": value} for key, value in sorted(item.extended.items())
        ],
        "last_modified": format_datetime(item.modified) if item.modified else None,
    }


def list_mailboxes(request: Request, sandbox: Sandbox) -> Response:
    state = _state(sandbox)
    with state.lock:
        value = [
            {
                "email": box.email,
                "name": box.name,
                "kind": box.kind,
                "items": len(state.items_in(box.folders["calendar"])),
                "calendar_folder_id": box.folders["calendar"].id,
            }
            | (
                {
                    "automate_processing": box.automate_processing,
                    "allow_conflicts": box.allow_conflicts,
                    "capacity": box.capacity,
                }
                if box.kind == "room"
                else {"impersonation": box.impersonation}
            )
            for box in state.mailboxes.values()
        ]
    return Response.json(200, {"value": value})


def _calendar_folder(request: Request, state: EwsState, box: Mailbox) -> Folder:
    """``?folder=<id>`` names one of the mailbox's calendar folders; none, its calendar."""
    wanted = (request.query.get("folder") or [""])[0]
    if not wanted:
        return box.folders["calendar"]
    folder = state.folders.get(wanted)
    if folder is None or folder.mailbox != box.email:
        raise ControlError("no such calendar folder in this mailbox")
    return folder


def folder_json(folder: Folder) -> dict[str, Any]:
    return {"id": folder.id, "name": folder.display_name, "folder_class": folder.folder_class}


def list_calendar_folders(request: Request, sandbox: Sandbox) -> Response:
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        found = state.children(box.folders["calendar"])
        return Response.json(200, {"value": [folder_json(f) for f in found]})


def create_calendar_folder(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"name": "Bookings", "folder_class"?: "IPF.Appointment"}: a calendar made in
    Outlook under the mailbox's calendar (another class: a folder that is not a calendar)."""
    state, box, data = _state(sandbox), _mailbox(request, sandbox), _body(request)
    name, folder_class = data.get("name"), data.get("folder_class", "IPF.Appointment")
    if not isinstance(name, str) or not name.strip():
        raise ControlError("give the folder's name")
    if not isinstance(folder_class, str) or not folder_class.startswith("IPF."):
        raise ControlError("folder_class must be an IPF. class, e.g. IPF.Appointment")
    with state.lock:
        try:
            folder = state.add_calendar_folder(box, name.strip(), folder_class)
        except ItemError as error:
            raise ControlError(f"{error.code}: {error.message}") from None
        return Response.json(201, folder_json(folder))


def delete_calendar_folder(request: Request, sandbox: Sandbox) -> Response:
    """A folder made under the calendar deleted in Outlook, with its items."""
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        folder = state.folders.get(unquote(request.params["folder_id"]))
        if folder is None or folder.mailbox != box.email or folder.distinguished:
            raise ControlError("no such folder made under this mailbox's calendar")
        state.delete_folder(folder)
        return Response.empty(204)


def list_items(request: Request, sandbox: Sandbox) -> Response:
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        found = sorted(
            state.items_in(_calendar_folder(request, state, box)),
            key=lambda i: (i.start or dt.datetime.min.replace(tzinfo=dt.UTC), i.id),
        )
        return Response.json(200, {"value": [item_json(state, i) for i in found]})


def _apply(item: CalendarItem, data: dict[str, Any]) -> set[str]:
    """Set the editable fields ``data`` gives; return the FieldURIs that changed."""
    unknown = set(data) - set(EDITABLE) - {"attendees", "resources", "send_invitations"}
    if unknown:
        raise ControlError(f"unknown fields: {', '.join(sorted(unknown))}")
    touched = set()
    for key, (attr, uri) in EDITABLE.items():
        if key not in data:
            continue
        value = data[key]
        if key in ("start", "end"):
            value = _when(value, key)
        elif key == "free_busy" and value not in FREE_BUSY:
            raise ControlError(f"free_busy must be one of {', '.join(FREE_BUSY)}")
        elif not isinstance(value, str):
            raise ControlError(f"{key} must be a string")
        if getattr(item, attr) != value:
            setattr(item, attr, value)
            touched.add(uri)
    for key, attr, uri in (
        ("attendees", "required", "calendar:RequiredAttendees"),
        ("resources", "resources", "calendar:Resources"),
    ):
        if key in data:
            emails = data[key]
            if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
                raise ControlError(f"{key} must be a list of addresses")
            setattr(item, attr, [Attendee(e.strip().lower()) for e in emails])
            touched.add(uri)
    if item.start is None or item.end is None or item.end < item.start:
        raise ControlError("give start and end, end not before start")
    return touched


def create_item(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"subject", "start", "end", "location", "body", "free_busy", "attendees": [...],
    "resources": [...], "send_invitations": true}: a meeting typed in Outlook."""
    state, box, data = _state(sandbox), _mailbox(request, sandbox), _body(request)
    with state.lock:
        calendar = _calendar_folder(request, state, box)
        item = CalendarItem(new_id(ITEM_PREFIX, box.email), box.email, calendar.id)
        _apply(item, data)
        if item.is_meeting:
            item.organizer = Attendee(box.email, box.name)
        state.create(item)
        sends = "SendToAllAndSaveCopy" if data.get("send_invitations", True) else "SendToNone"
        for hook in WRITE_HOOKS:
            hook(state, sandbox, item, sends)
        return Response.json(201, item_json(state, item))


def get_item(request: Request, sandbox: Sandbox) -> Response:
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        return Response.json(200, item_json(state, _item(request, sandbox, box)))


def update_item(request: Request, sandbox: Sandbox) -> Response:
    """Move, rename or re-invite: any of create's fields. A new change key, as Outlook's save."""
    state, box, data = _state(sandbox), _mailbox(request, sandbox), _body(request)
    with state.lock:
        item = _item(request, sandbox, box)
        draft = CalendarItem(**vars(item))
        touched = _apply(draft, data)
        if touched:
            vars(item).update(vars(draft))
            if item.is_meeting and item.organizer is None:
                item.organizer = Attendee(box.email, box.name)
            state.touched(item, touched)
            sends = "SendToAllAndSaveCopy" if data.get("send_invitations", True) else "SendToNone"
            for hook in WRITE_HOOKS:
                hook(state, sandbox, item, sends)
        return Response.json(200, item_json(state, item))


def delete_item(request: Request, sandbox: Sandbox) -> Response:
    """Delete as Outlook does; a meeting's organizer sends cancellations (?notify=false: not)."""
    state, box = _state(sandbox), _mailbox(request, sandbox)
    with state.lock:
        item = _item(request, sandbox, box)
        state.delete(item)
        sends = "SendToNone" if request.arg("notify") == "false" else "SendToAllAndSaveCopy"
        for hook in DELETE_HOOKS:
            hook(state, sandbox, item, sends)
    return Response.empty(204)


def respond(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"response": "Accept" | "Tentative" | "Decline"}: the room's (or a person's)
    answer to a meeting in their calendar, by hand; the organizer's item records it."""
    state, box, data = _state(sandbox), _mailbox(request, sandbox), _body(request)
    answer = data.get("response")
    if answer not in ("Accept", "Tentative", "Decline"):
        raise ControlError("response must be Accept, Tentative or Decline")
    with state.lock:
        item = _item(request, sandbox, box)
        if item.organizer is None or item.organizer.email == box.email:
            raise ControlError("this item is not a meeting this mailbox was invited to")
        rooms.record_response(state, item, box, answer)
        return Response.json(200, item_json(state, item) if item.id in state.items else {})


def set_room(request: Request, sandbox: Sandbox) -> Response:
    """Body: any of automate_processing, allow_conflicts, max_duration_minutes,
    booking_window_days, add_organizer_to_subject, delete_subject, free_busy_access."""
    state, box, data = _state(sandbox), _mailbox(request, sandbox), _body(request)
    if box.kind != "room":
        raise ControlError("not a room mailbox")
    if "automate_processing" in data and data["automate_processing"] not in PROCESSING:
        raise ControlError(f"automate_processing must be one of {', '.join(PROCESSING)}")
    if "free_busy_access" in data and data["free_busy_access"] not in FREE_BUSY_ACCESS:
        raise ControlError(f"free_busy_access must be one of {', '.join(FREE_BUSY_ACCESS)}")
    kinds = {
        "automate_processing": str,
        "allow_conflicts": bool,
        "max_duration_minutes": int,
        "booking_window_days": int,
        "add_organizer_to_subject": bool,
        "delete_subject": bool,
        "free_busy_access": str,
    }
    with state.lock:
        for key, value in data.items():
            if key not in kinds or not isinstance(value, kinds[key]):
                raise ControlError(f"{key}: not a room setting, or the wrong type")
            setattr(box, key, value)
    return list_mailboxes(request, sandbox)


def expire_sync_states(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"mailbox": "atlas@..."} or {} for every mailbox."""
    state, data = _state(sandbox), _body(request)
    mailbox = None
    if data.get("mailbox"):
        try:
            mailbox = state.mailbox(data["mailbox"]).email
        except ItemError:
            raise ControlError(f"no mailbox {data['mailbox']!r}") from None
    return Response.json(200, {"expired": state.expire_sync_states(mailbox)})


def list_subscriptions(request: Request, sandbox: Sandbox) -> Response:
    state = _state(sandbox)
    notifications.expire_due(state)
    with state.lock:
        value = [sub.to_dict() for sub in state.subscriptions.values()]
    return Response.json(200, {"value": value})


def expire_subscriptions(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"id": ...}, {"mailbox": ...} or {} for all: they end (an open stream closes)
    and the next use answers ErrorSubscriptionNotFound."""
    state, data = _state(sandbox), _body(request)
    with state.lock:
        ids = [
            sub.id
            for sub in state.subscriptions.values()
            if (not data.get("id") or sub.id == data["id"])
            and (not data.get("mailbox") or sub.mailbox == str(data["mailbox"]).lower())
        ]
        if data.get("id") and not ids:
            raise ControlError("no such subscription")
        for sid in ids:
            notifications.remove(state, sid)
    return Response.json(200, {"expired": len(ids)})


def server_busy(request: Request, sandbox: Sandbox) -> Response:
    """Body: {"count": 1, "back_off_ms": 5000}: the next ``count`` EWS requests are answered
    ErrorServerBusy with that BackOffMilliseconds (before any work is done)."""
    state, data = _state(sandbox), _body(request)
    count, back_off = data.get("count", 1), data.get("back_off_ms", 5000)
    if not isinstance(count, int) or count < 1 or not isinstance(back_off, int) or back_off < 0:
        raise ControlError("count must be a positive integer, back_off_ms a non-negative one")
    with state.lock:
        state.busy.append((count, back_off))
    return Response.json(201, {"queued": [{"count": c, "back_off_ms": b} for c, b in state.busy]})


def page_calendars(state: EwsState, day: dt.date) -> list[dict[str, Any]]:
    """Rooms first, then people: each EWS mailbox's calendar items on ``day`` (UTC)."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)
    status = {
        "Accept": "accepted",
        "Decline": "declined",
        "Tentative": "tentative",
        "NoResponseReceived": "tentative",
        "Organizer": "organizer",
    }
    result = []
    with state.lock:
        boxes = sorted(state.mailboxes.values(), key=lambda b: (b.kind != "room", b.email))
        for box in boxes:
            found = sorted(
                (
                    i
                    for i in state.items_in(box.folders["calendar"])
                    if i.start and i.end and i.start < end and i.end > start
                ),
                key=lambda i: (i.start, i.id),
            )
            result.append(
                {
                    "provider": "ews",
                    "mailbox": box.email,
                    "title": f"{box.name}{' (room)' if box.kind == 'room' else ''}",
                    "events": [
                        {
                            "id": i.id,
                            "subject": i.subject,
                            "start": i.start.isoformat() if i.start else None,
                            "end": i.end.isoformat() if i.end else None,
                            "status": "cancelled"
                            if i.is_cancelled
                            else status.get(i.my_response, i.my_response.lower()),
                        }
                        for i in found
                    ],
                }
            )
    return result


def register(router: Router, sandbox: Sandbox) -> None:
    mb = f"{API}/mailboxes/(?P<mailbox>[^/]+)"
    item = f"{mb}/items/(?P<item_id>[^/]+)"
    routes = [
        ("GET", f"{API}/mailboxes", list_mailboxes, "mailboxes"),
        ("GET", f"{mb}/items", list_items, "items"),
        ("POST", f"{mb}/items", create_item, "item create"),
        ("GET", f"{mb}/calendar-folders", list_calendar_folders, "calendar folders"),
        ("POST", f"{mb}/calendar-folders", create_calendar_folder, "calendar folder create"),
        (
            "DELETE",
            f"{mb}/calendar-folders/(?P<folder_id>[^/]+)",
            delete_calendar_folder,
            "calendar folder delete",
        ),
        ("GET", item, get_item, "item get"),
        ("PATCH", item, update_item, "item update"),
        ("DELETE", item, delete_item, "item delete"),
        ("POST", f"{item}/respond", respond, "item respond"),
        ("PATCH", f"{API}/rooms/(?P<mailbox>[^/]+)", set_room, "room settings"),
        ("POST", f"{API}/sync-states/expire", expire_sync_states, "sync states expire"),
        ("GET", f"{API}/subscriptions", list_subscriptions, "subscriptions"),
        ("POST", f"{API}/subscriptions/expire", expire_subscriptions, "subscriptions expire"),
        ("POST", f"{API}/server-busy", server_busy, "server busy"),
    ]
    for method, pattern, handler, name in routes:
        router.add(method, pattern, guarded(handler), service="control", name=f"control ews {name}")
