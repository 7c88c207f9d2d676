"""``GetServerTimeZones`` and ``ResolveNames``.

GetServerTimeZones knows ``UTC`` and ``W. Europe Standard Time`` (exchangelib asks for the
zone of a free/busy request's start before GetUserAvailability); another id is
``ErrorTimeZone``. ResolveNames resolves configured mailboxes by address (``smtp:`` prefix
allowed), or by the start of a name or user name: one match is ``Success``, several
``ErrorNameResolutionMultipleResults`` (a warning, with the candidates), none
``ErrorNameResolutionNoResults``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .operations import Call, _response, operation
from .soap import ItemError, M, SoapFault, T, q, response_message
from .state import Mailbox


def _schema(message: str) -> SoapFault:
    return SoapFault("ErrorSchemaValidation", f"The request failed schema validation: {message}")


# -- GetServerTimeZones -------------------------------------------------------------------

_ZONES = {
    "UTC": ("(UTC) Coordinated Universal Time", "PT0M", None),
    "W. Europe Standard Time": (
        "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
        "-PT1H",
        ("-PT2H", ("PT2H", "3"), ("PT3H", "10")),
    ),
}


def _zone_definition(zone_id: str, full: bool) -> ET.Element:
    name, bias, daylight = _ZONES[zone_id]
    node = ET.Element(q(T, "TimeZoneDefinition"), {"Name": name, "Id": zone_id})
    if not full:
        return node
    rule = f"trule:Microsoft/Registry/{zone_id}/2006"
    periods = ET.SubElement(node, q(T, "Periods"))
    ET.SubElement(
        periods, q(T, "Period"), {"Bias": bias, "Name": "Standard", "Id": f"{rule}-Standard"}
    )
    groups = ET.SubElement(node, q(T, "TransitionsGroups"))
    group = ET.SubElement(groups, q(T, "TransitionsGroup"), {"Id": "0"})
    if daylight is None:
        transition = ET.SubElement(group, q(T, "Transition"))
        ET.SubElement(transition, q(T, "To"), {"Kind": "Period"}).text = f"{rule}-Standard"
    else:
        dst_bias, to_dst, to_std = daylight
        ET.SubElement(
            periods,
            q(T, "Period"),
            {"Bias": dst_bias, "Name": "Daylight", "Id": f"{rule}-Daylight"},
        )
        for target, (offset, month) in (("Daylight", to_dst), ("Standard", to_std)):
            transition = ET.SubElement(group, q(T, "RecurringDayTransition"))
            ET.SubElement(transition, q(T, "To"), {"Kind": "Period"}).text = f"{rule}-{target}"
            ET.SubElement(transition, q(T, "TimeOffset")).text = offset
            ET.SubElement(transition, q(T, "Month")).text = month
            ET.SubElement(transition, q(T, "DayOfWeek")).text = "Sunday"
            ET.SubElement(transition, q(T, "Occurrence")).text = "-1"
    transitions = ET.SubElement(node, q(T, "Transitions"))
    transition = ET.SubElement(transitions, q(T, "Transition"))
    ET.SubElement(transition, q(T, "To"), {"Kind": "Group"}).text = "0"
    return node


@operation("GetServerTimeZones")
def get_server_time_zones(call: Call) -> ET.Element:
    full = call.op.get("ReturnFullTimeZoneData", "true") in ("true", "1")
    ids_elem = call.op.find(q(M, "Ids"))
    wanted = [(e.text or "").strip() for e in ids_elem] if ids_elem is not None else list(_ZONES)
    root, messages = _response("GetServerTimeZones")
    unknown = [zone_id for zone_id in wanted if zone_id not in _ZONES]
    if unknown:
        messages.append(
            response_message(
                "GetServerTimeZones",
                ItemError("ErrorTimeZone", f"The sandbox does not know '{unknown[0]}'."),
            )
        )
        return root
    message = response_message("GetServerTimeZones")
    container = ET.SubElement(message, q(M, "TimeZoneDefinitions"))
    for zone_id in wanted:
        container.append(_zone_definition(zone_id, full))
    messages.append(message)
    return root


# -- ResolveNames --------------------------------------------------------------------------


def _candidates(call: Call, entry: str) -> list[Mailbox]:
    text = entry.strip().lower()
    if text.startswith("smtp:"):
        text = text[5:]
    exact = call.state.mailboxes.get(text)
    if exact is not None:
        return [exact]
    if not text or "@" in text:
        return []
    return sorted(
        (
            box
            for box in call.state.mailboxes.values()
            if box.name.lower().startswith(text)
            or box.email.startswith(text)
            or (box.username and box.username.lower().startswith(text))
        ),
        key=lambda box: box.email,
    )


@operation("ResolveNames")
def resolve_names(call: Call) -> ET.Element:
    entries = call.op.findall(q(M, "UnresolvedEntry"))
    if not entries:
        raise _schema("ResolveNames needs an UnresolvedEntry.")
    root, messages = _response("ResolveNames")
    for entry in entries:
        found = _candidates(call, entry.text or "")
        if not found:
            messages.append(
                response_message(
                    "ResolveNames",
                    ItemError("ErrorNameResolutionNoResults", "No results were found."),
                )
            )
            continue
        if len(found) == 1:
            message = response_message("ResolveNames")
        else:
            message = ET.Element(q(M, "ResolveNamesResponseMessage"), {"ResponseClass": "Warning"})
            ET.SubElement(message, q(M, "MessageText")).text = "Multiple results were found."
            ET.SubElement(message, q(M, "ResponseCode")).text = "ErrorNameResolutionMultipleResults"
            ET.SubElement(message, q(M, "DescriptiveLinkKey")).text = "0"
        results = ET.SubElement(
            message,
            q(M, "ResolutionSet"),
            {"TotalItemsInView": str(len(found)), "IncludesLastItemInRange": "true"},
        )
        for box in found:
            resolution = ET.SubElement(results, q(T, "Resolution"))
            node = ET.SubElement(resolution, q(T, "Mailbox"))
            ET.SubElement(node, q(T, "Name")).text = box.name
            ET.SubElement(node, q(T, "EmailAddress")).text = box.email
            ET.SubElement(node, q(T, "RoutingType")).text = "SMTP"
            ET.SubElement(node, q(T, "MailboxType")).text = "Mailbox"
        messages.append(message)
    return root
