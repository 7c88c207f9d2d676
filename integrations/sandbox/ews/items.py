"""Calendar items to and from EWS XML (``t:CalendarItem``), and item shapes.

Reading: every child of a ``t:CalendarItem`` must be an element the Exchange schema allows
there (anything else is ``ErrorSchemaValidation``); the ones the sandbox models are stored,
the others (e.g. ``t:ReminderDueBy``) are accepted and ignored. Writing: ``ItemShape``'s
``BaseShape`` (IdOnly, Default, AllProperties) plus ``AdditionalProperties`` (``FieldURI``,
``ExtendedFieldURI``) choose the elements, in the schema's order. Empty properties are left
out, as Exchange does.
"""

from __future__ import annotations

import copy
import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

from . import recurrence
from .soap import ItemError, SoapFault, T, local, ns_of, q
from .state import Attendee, CalendarItem

# Schema order of the CalendarItem elements the sandbox reads or writes, with FieldURIs.
FIELDS: list[tuple[str, str]] = [
    ("ItemId", "item:ItemId"),
    ("ParentFolderId", "item:ParentFolderId"),
    ("ItemClass", "item:ItemClass"),
    ("Subject", "item:Subject"),
    ("Sensitivity", "item:Sensitivity"),
    ("Body", "item:Body"),
    ("DateTimeReceived", "item:DateTimeReceived"),
    ("Categories", "item:Categories"),
    ("Importance", "item:Importance"),
    ("DateTimeCreated", "item:DateTimeCreated"),
    ("ReminderIsSet", "item:ReminderIsSet"),
    ("ReminderMinutesBeforeStart", "item:ReminderMinutesBeforeStart"),
    ("HasAttachments", "item:HasAttachments"),
    ("ExtendedProperty", ""),
    ("LastModifiedTime", "item:LastModifiedTime"),
    ("UID", "calendar:UID"),
    ("Start", "calendar:Start"),
    ("End", "calendar:End"),
    ("OriginalStart", "calendar:OriginalStart"),
    ("IsAllDayEvent", "calendar:IsAllDayEvent"),
    ("LegacyFreeBusyStatus", "calendar:LegacyFreeBusyStatus"),
    ("Location", "calendar:Location"),
    ("IsMeeting", "calendar:IsMeeting"),
    ("IsCancelled", "calendar:IsCancelled"),
    ("IsRecurring", "calendar:IsRecurring"),
    ("CalendarItemType", "calendar:CalendarItemType"),
    ("MyResponseType", "calendar:MyResponseType"),
    ("Organizer", "calendar:Organizer"),
    ("RequiredAttendees", "calendar:RequiredAttendees"),
    ("OptionalAttendees", "calendar:OptionalAttendees"),
    ("Resources", "calendar:Resources"),
    ("Recurrence", "calendar:Recurrence"),
    ("ModifiedOccurrences", "calendar:ModifiedOccurrences"),
    ("DeletedOccurrences", "calendar:DeletedOccurrences"),
    ("StartTimeZone", "calendar:StartTimeZone"),
    ("EndTimeZone", "calendar:EndTimeZone"),
]
URI_TO_ELEMENT = {uri: name for name, uri in FIELDS if uri}
# What BaseShape="Default" returns for a calendar item (Exchange's documented default set).
DEFAULT_SHAPE = {
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "DateTimeReceived",
    "HasAttachments",
    "Start",
    "End",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "Location",
    "IsCancelled",
    "IsRecurring",
    "CalendarItemType",
    "MyResponseType",
    "Organizer",
}
ALL_SHAPE = {name for name, _ in FIELDS if name != "ExtendedProperty"}

# Other CalendarItem (and Item) children of the schema: accepted on writes, not stored.
_IGNORED = {
    "MimeContent",
    "Attachments",
    "Size",
    "InReplyTo",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "ResponseObjects",
    "ReminderDueBy",
    "ReminderNextTime",
    "DisplayCc",
    "DisplayTo",
    "Culture",
    "EffectiveRights",
    "LastModifiedName",
    "IsAssociated",
    "WebClientReadFormQueryString",
    "WebClientEditFormQueryString",
    "ConversationId",
    "UniqueBody",
    "RecurrenceId",
    "DateTimeStamp",
    "When",
    "MeetingRequestWasSent",
    "IsResponseRequested",
    "ConflictingMeetingCount",
    "AdjacentMeetingCount",
    "ConflictingMeetings",
    "AdjacentMeetings",
    "Duration",
    "TimeZone",
    "AppointmentReplyTime",
    "AppointmentSequenceNumber",
    "AppointmentState",
    "FirstOccurrence",
    "LastOccurrence",
    "MeetingTimeZone",
    "ConferenceType",
    "AllowNewTimeProposal",
    "IsOnlineMeeting",
    "MeetingWorkspaceUrl",
    "NetShowUrl",
    "EnhancedLocation",
    "StartWallClock",
    "EndWallClock",
    "StartTimeZoneId",
    "EndTimeZoneId",
    "IntendedFreeBusyStatus",
    "JoinOnlineMeetingUrl",
    "OnlineMeetingSettings",
    "IsOrganizer",
    "InboxReminders",
    "Flag",
    "InstanceKey",
    "EntityExtractionResult",
    "PolicyTag",
    "ArchiveTag",
    "RetentionDate",
    "Preview",
    "RightsManagementLicenseData",
    "PredictedActionReasons",
    "IsClutter",
    "BlockStatus",
    "HasBlockedImages",
    "TextBody",
    "IconIndex",
    "SearchKey",
    "SortKey",
    "Hashtags",
    "Mentions",
    "MentionedMe",
}
_MODELLED = {name for name, _ in FIELDS}
READ_ONLY = {
    "ItemId",
    "ParentFolderId",
    "DateTimeReceived",
    "DateTimeCreated",
    "LastModifiedTime",
    "HasAttachments",
    "IsMeeting",
    "IsCancelled",
    "IsRecurring",
    "CalendarItemType",
    "MyResponseType",
    "OriginalStart",
    "ModifiedOccurrences",
    "DeletedOccurrences",
}
FREE_BUSY = {"Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData"}
SENSITIVITY = {"Normal", "Personal", "Private", "Confidential"}
IMPORTANCE = {"Low", "Normal", "High"}


def parse_datetime(text: str | None, what: str) -> dt.datetime:
    """xs:dateTime; without an offset it is UTC (the sandbox ignores TimeZoneContext)."""
    value = (text or "").strip()
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: The '{what}' element is invalid - The "
            f"value '{value}' is invalid according to its datatype "
            "'http://www.w3.org/2001/XMLSchema:dateTime'.",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bool(text: str | None, what: str) -> bool:
    value = (text or "").strip()
    if value not in ("true", "false", "1", "0"):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: The '{what}' element is invalid - The "
            f"value '{value}' is invalid according to its datatype "
            "'http://www.w3.org/2001/XMLSchema:boolean'.",
        )
    return value in ("true", "1")


def _enum(text: str | None, allowed: set[str], what: str) -> str:
    value = (text or "").strip()
    if value not in allowed:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: The '{what}' element is invalid - The "
            f"value '{value}' is invalid according to its datatype - The Enumeration "
            "constraint failed.",
        )
    return value


def _attendees(elem: ET.Element) -> list[Attendee]:
    found = []
    for attendee in elem:
        mailbox = attendee.find(q(T, "Mailbox"))
        email = (mailbox.findtext(q(T, "EmailAddress")) if mailbox is not None else "") or ""
        if not email.strip():
            raise ItemError("ErrorInvalidRecipients", "At least one recipient isn't valid.")
        name = mailbox.findtext(q(T, "Name")) or "" if mailbox is not None else ""
        found.append(Attendee(email.strip().lower(), name.strip()))
    return found


def extended_key(uri: ET.Element) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(uri.attrib.items()))


def apply_element(item: CalendarItem, child: ET.Element) -> str:
    """Set the property ``child`` carries on ``item``; return the element's name."""
    name = local(child.tag)
    if ns_of(child.tag) != T or (name not in _MODELLED and name not in _IGNORED):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: The element 'CalendarItem' in namespace "
            f"'{T}' has invalid child element '{name}' in namespace '{ns_of(child.tag)}'.",
        )
    text = child.text
    if name == "Subject":
        item.subject = text or ""
    elif name == "Body":
        item.body = text or ""
        item.body_type = _enum(child.get("BodyType"), {"HTML", "Text"}, "BodyType")
    elif name == "Start":
        item.start = parse_datetime(text, "Start")
    elif name == "End":
        item.end = parse_datetime(text, "End")
    elif name == "IsAllDayEvent":
        item.is_all_day = _bool(text, name)
    elif name == "Location":
        item.location = text or ""
    elif name == "LegacyFreeBusyStatus":
        item.free_busy = _enum(text, FREE_BUSY, name)
    elif name == "Sensitivity":
        item.sensitivity = _enum(text, SENSITIVITY, name)
    elif name == "Importance":
        item.importance = _enum(text, IMPORTANCE, name)
    elif name == "Categories":
        item.categories = [(s.text or "") for s in child]
    elif name == "ReminderIsSet":
        item.reminder_is_set = _bool(text, name)
    elif name == "ReminderMinutesBeforeStart":
        try:
            item.reminder_minutes = int(text or "")
        except ValueError:
            raise SoapFault(
                "ErrorSchemaValidation",
                "The request failed schema validation: "
                "ReminderMinutesBeforeStart is not an integer.",
            ) from None
    elif name == "UID":
        item.uid = text or ""
    elif name == "Recurrence":
        # A new pattern starts the series afresh: exceptions and deletions go, as in Exchange.
        item.recurrence = recurrence.parse(child)
        item.recurrence_xml = copy.deepcopy(child)
        item.item_type = "RecurringMaster"
        item.exceptions, item.deleted = {}, set()
    elif name == "RequiredAttendees":
        item.required = _attendees(child)
    elif name == "OptionalAttendees":
        item.optional = _attendees(child)
    elif name == "Resources":
        item.resources = _attendees(child)
    elif name in ("StartTimeZone", "MeetingTimeZone"):
        item.start_tz = child.get("Id") or item.start_tz
        if name == "MeetingTimeZone":
            item.end_tz = item.end_tz or item.start_tz
    elif name == "EndTimeZone":
        item.end_tz = child.get("Id")
    elif name == "ExtendedProperty":
        uri = child.find(q(T, "ExtendedFieldURI"))
        if uri is None:
            raise SoapFault(
                "ErrorSchemaValidation",
                "The request failed schema validation: ExtendedProperty needs an ExtendedFieldURI.",
            )
        values = child.find(q(T, "Values"))
        value: Any = (
            [v.text or "" for v in values]
            if values is not None
            else child.findtext(q(T, "Value")) or ""
        )
        item.extended[extended_key(uri)] = value
    elif name in READ_ONLY:
        raise ItemError(
            "ErrorInvalidPropertySet", f"The property {name} is read-only and cannot be set."
        )
    return name


def _mailbox(parent: ET.Element, attendee: Attendee, name_of: dict[str, str]) -> None:
    box = ET.SubElement(parent, q(T, "Mailbox"))
    ET.SubElement(box, q(T, "Name")).text = attendee.name or name_of.get(attendee.email, "")
    ET.SubElement(box, q(T, "EmailAddress")).text = attendee.email
    ET.SubElement(box, q(T, "RoutingType")).text = "SMTP"
    ET.SubElement(box, q(T, "MailboxType")).text = "Mailbox"


def wanted_fields(shape: ET.Element | None) -> tuple[set[str], list[ET.Element]]:
    """The element names and ExtendedFieldURIs an ``ItemShape`` asks for."""
    if shape is None:
        return {"ItemId"}, []
    base = (shape.findtext(q(T, "BaseShape")) or "").strip()
    names = {
        "IdOnly": {"ItemId"},
        "Default": set(DEFAULT_SHAPE),
        "AllProperties": set(ALL_SHAPE),
    }.get(base)
    if names is None:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: "
            f"BaseShape '{base}' is not IdOnly, Default or AllProperties.",
        )
    extended = []
    extra = shape.find(q(T, "AdditionalProperties"))
    for path in extra if extra is not None else []:
        kind = local(path.tag)
        if kind == "FieldURI":
            uri = path.get("FieldURI", "")
            if uri in URI_TO_ELEMENT:
                names.add(URI_TO_ELEMENT[uri])
            elif ":" not in uri:
                raise SoapFault(
                    "ErrorSchemaValidation",
                    f"The request failed schema validation: '{uri}' is not a valid FieldURI.",
                )
            # Other known-looking URIs (message:..., item:Size, ...) name empty properties.
        elif kind == "ExtendedFieldURI":
            extended.append(path)
    return names, extended


def write_item(
    parent: ET.Element,
    item: CalendarItem,
    names: set[str],
    extended: list[ET.Element],
    folder_change_key: str,
    name_of: dict[str, str],
) -> ET.Element:
    """Append ``t:CalendarItem`` with the requested properties to ``parent``."""
    node = ET.SubElement(parent, q(T, "CalendarItem"))
    for name, _uri in FIELDS:
        if name == "ExtendedProperty":
            for uri in extended:
                value = item.extended.get(extended_key(uri))
                if value is None:
                    continue
                prop = ET.SubElement(node, q(T, "ExtendedProperty"))
                ET.SubElement(prop, q(T, "ExtendedFieldURI"), dict(uri.attrib))
                if isinstance(value, list):
                    values = ET.SubElement(prop, q(T, "Values"))
                    for v in value:
                        ET.SubElement(values, q(T, "Value")).text = v
                else:
                    ET.SubElement(prop, q(T, "Value")).text = value
            continue
        if name not in names:
            continue
        _write_field(node, item, name, folder_change_key, name_of)
    return node


def _write_field(
    node: ET.Element, item: CalendarItem, name: str, folder_ck: str, name_of: dict[str, str]
) -> None:
    def text(value: str) -> None:
        ET.SubElement(node, q(T, name)).text = value

    if name == "ItemId":
        ET.SubElement(node, q(T, "ItemId"), {"Id": item.id, "ChangeKey": item.change_key})
    elif name == "ParentFolderId":
        ET.SubElement(node, q(T, "ParentFolderId"), {"Id": item.folder_id, "ChangeKey": folder_ck})
    elif name == "ItemClass":
        text("IPM.Appointment")
    elif name == "Subject":
        text(item.subject)
    elif name == "Sensitivity":
        text(item.sensitivity)
    elif name == "Body":
        ET.SubElement(node, q(T, "Body"), {"BodyType": item.body_type}).text = item.body
    elif name in ("DateTimeReceived", "DateTimeCreated") and item.created:
        text(format_datetime(item.created))
    elif name == "LastModifiedTime" and item.modified:
        text(format_datetime(item.modified))
    elif name == "Categories" and item.categories:
        cats = ET.SubElement(node, q(T, "Categories"))
        for category in item.categories:
            ET.SubElement(cats, q(T, "String")).text = category
    elif name == "Importance":
        text(item.importance)
    elif name == "ReminderIsSet":
        text(str(item.reminder_is_set).lower())
    elif name == "ReminderMinutesBeforeStart":
        text(str(item.reminder_minutes))
    elif name == "HasAttachments":
        text("false")
    elif name == "UID":
        text(item.uid)
    elif name == "Start" and item.start:
        text(format_datetime(item.start))
    elif name == "End" and item.end:
        text(format_datetime(item.end))
    elif name == "IsAllDayEvent":
        text(str(item.is_all_day).lower())
    elif name == "LegacyFreeBusyStatus":
        text(item.free_busy)
    elif name == "Location" and item.location:
        text(item.location)
    elif name == "IsMeeting":
        text(str(item.is_meeting).lower())
    elif name == "IsCancelled":
        text(str(item.is_cancelled).lower())
    elif name == "IsRecurring":
        text(str(item.item_type in ("Occurrence", "Exception")).lower())
    elif name == "CalendarItemType":
        text(item.item_type)
    elif name == "OriginalStart" and item.original_start:
        text(format_datetime(item.original_start))
    elif name == "Recurrence":
        recurrence.write_recurrence(node, item)
    elif name == "ModifiedOccurrences":
        recurrence.write_modified(node, item, format_datetime)
    elif name == "DeletedOccurrences":
        recurrence.write_deleted(node, item, format_datetime)
    elif name == "MyResponseType":
        text(item.my_response)
    elif name == "Organizer" and item.organizer:
        _mailbox(ET.SubElement(node, q(T, "Organizer")), item.organizer, name_of)
    elif name in ("RequiredAttendees", "OptionalAttendees", "Resources"):
        people = {
            "RequiredAttendees": item.required,
            "OptionalAttendees": item.optional,
            "Resources": item.resources,
        }[name]
        if people:
            container = ET.SubElement(node, q(T, name))
            for person in people:
                attendee = ET.SubElement(container, q(T, "Attendee"))
                _mailbox(attendee, person, name_of)
                ET.SubElement(attendee, q(T, "ResponseType")).text = person.response
    elif name == "StartTimeZone" and item.start_tz:
        ET.SubElement(node, q(T, name), {"Id": item.start_tz})
    elif name == "EndTimeZone" and (item.end_tz or item.start_tz):
        ET.SubElement(node, q(T, name), {"Id": item.end_tz or item.start_tz or ""})
