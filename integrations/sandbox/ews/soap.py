"""SOAP 1.1 envelopes as Exchange Web Services reads and writes them.

Parsing is strict in the ways EWS is: the body must be a well-formed XML document (no DTD,
no entity declarations - refused before parsing, as defusedxml would), a SOAP 1.1
``Envelope`` whose ``Body`` holds exactly one element of the EWS messages namespace, and a
``RequestServerVersion`` naming a schema version Exchange knows. What EWS refuses before it
runs an operation it answers with a SOAP fault (HTTP 500, ``faultcode`` ``a:<code>``,
``detail`` with ``e:ResponseCode``/``e:Message`` and ``t:MessageXml``); failures of one item of
an operation are ``ResponseClass="Error"`` response messages instead (``operations.py``).

Every answer carries ``ServerVersionInfo`` in the SOAP header, as Exchange 2016/2019/SE do.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ..core import Headers, Response

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

for _prefix, _uri in (("s", SOAP), ("m", M), ("t", T), ("e", E)):
    ET.register_namespace(_prefix, _uri)

# RequestServerVersion values the Exchange 2016+ schema accepts (types.xsd ExchangeVersionType).
SCHEMA_VERSIONS = (
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
)

# Builds the sandbox can claim to be (Exchange's "Build numbers and release dates" page).
# On-premises 2016/2019/SE report Version="V2017_07_11" in ServerVersionInfo.
SERVER_BUILDS = {
    "2016-cu23": "15.1.2507.6",
    "2019-cu14": "15.2.1544.4",
    "2019-cu15": "15.2.1748.10",
    "se-rtm": "15.2.2562.17",
}
SERVER_SCHEMA_VERSION = "V2017_07_11"


def q(ns: str, name: str) -> str:
    """The ElementTree name ``{ns}name``."""
    return f"{{{ns}}}{name}"


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def ns_of(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


class SoapFault(Exception):
    """A request EWS refuses as a whole: answered with a SOAP fault (HTTP 500)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        client: bool = True,
        back_off_ms: int | None = None,
        line: int | None = None,
        position: int | None = None,
        status: int = 500,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.client = code, message, client
        self.back_off_ms, self.line, self.position, self.status = (
            back_off_ms,
            line,
            position,
            status,
        )


class ItemError(Exception):
    """One item of an operation failed: a ``ResponseClass="Error"`` response message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Envelope:
    """A parsed EWS request: the operation element and what the SOAP header said."""

    operation: ET.Element
    version: str = "Exchange2007"
    impersonation: dict[str, str] = field(default_factory=dict)
    time_zone: str | None = None

    @property
    def name(self) -> str:
        return local(self.operation.tag)


_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_envelope(body: bytes) -> Envelope:
    """Parse and check a request body; raises :class:`SoapFault` as EWS would answer."""
    if not body.strip():
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: Root element is missing.",
            line=0,
            position=0,
        )
    if _DTD.search(body):
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: For security reasons DTD is prohibited in "
            "this XML document.",
            line=1,
            position=1,
        )
    try:
        root = ET.fromstring(body)  # noqa: S314 - no DTD can reach here (checked above)
    except ET.ParseError as exc:
        line, position = exc.position
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: {exc}",
            line=line,
            position=position,
        ) from None
    if root.tag != q(SOAP, "Envelope"):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: the root element must be a SOAP 1.1 "
            f"Envelope, not '{local(root.tag)}' in '{ns_of(root.tag)}'.",
            line=1,
            position=1,
        )
    header = root.find(q(SOAP, "Header"))
    body_elem = root.find(q(SOAP, "Body"))
    unexpected = [c for c in root if c.tag not in (q(SOAP, "Header"), q(SOAP, "Body"))]
    if body_elem is None or unexpected:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the Envelope must hold an optional Header "
            "and one Body.",
        )
    children = list(body_elem)
    if len(children) != 1 or ns_of(children[0].tag) != M:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the Body must hold exactly one EWS "
            "operation element in the messages namespace.",
        )
    envelope = Envelope(children[0])
    if header is not None:
        _read_header(header, envelope)
    return envelope


def _read_header(header: ET.Element, envelope: Envelope) -> None:
    for child in header:
        name = local(child.tag)
        if ns_of(child.tag) != T:
            if child.get(q(SOAP, "mustUnderstand")) == "1":
                raise SoapFault(
                    "ErrorSchemaValidation",
                    f"The request failed schema validation: header '{name}' is not understood.",
                )
            continue
        if name == "RequestServerVersion":
            version = child.get("Version", "")
            if version not in SCHEMA_VERSIONS:
                raise SoapFault(
                    "ErrorInvalidServerVersion",
                    f"The specified server version '{version}' is invalid.",
                )
            envelope.version = version
        elif name == "ExchangeImpersonation":
            sid = child.find(q(T, "ConnectingSID"))
            if sid is None or len(sid) != 1:
                raise SoapFault(
                    "ErrorSchemaValidation",
                    "The request failed schema validation: ExchangeImpersonation needs one "
                    "ConnectingSID identifier.",
                )
            ident = sid[0]
            envelope.impersonation = {local(ident.tag): (ident.text or "").strip()}
        elif name == "TimeZoneContext":
            definition = child.find(q(T, "TimeZoneDefinition"))
            envelope.time_zone = definition.get("Id") if definition is not None else None
        elif name in ("MailboxCulture", "DateTimePrecision", "ManagementRole"):
            continue
        else:
            raise SoapFault(
                "ErrorSchemaValidation",
                f"The request failed schema validation: unknown SOAP header '{name}'.",
            )


def version_info(build: str) -> ET.Element:
    major, minor, major_build, minor_build = ([*build.split("."), "0", "0", "0", "0"])[:4]
    return ET.Element(
        q(T, "ServerVersionInfo"),
        {
            "MajorVersion": major,
            "MinorVersion": minor,
            "MajorBuildNumber": major_build,
            "MinorBuildNumber": minor_build,
            "Version": SERVER_SCHEMA_VERSION,
        },
    )


def _serialize(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(
        root, encoding="utf-8", xml_declaration=False
    )


def serialize_envelope(body_child: ET.Element, build: str) -> bytes:
    """An Envelope document: ServerVersionInfo in the header, ``body_child`` in the body."""
    root = ET.Element(q(SOAP, "Envelope"))
    ET.SubElement(root, q(SOAP, "Header")).append(version_info(build))
    ET.SubElement(root, q(SOAP, "Body")).append(body_child)
    return _serialize(root)


def envelope_response(body_child: ET.Element, build: str) -> Response:
    """A 200 answer: ServerVersionInfo in the header, ``body_child`` in the body."""
    return Response(
        200,
        serialize_envelope(body_child, build),
        Headers({"Content-Type": "text/xml; charset=utf-8"}),
    )


def fault_response(fault: SoapFault, build: str | None = None) -> Response:
    """A SOAP fault in Exchange's shape (HTTP 500 unless the fault says otherwise)."""
    root = ET.Element(q(SOAP, "Envelope"))
    if build and fault.code == "ErrorServerBusy":
        ET.SubElement(root, q(SOAP, "Header")).append(version_info(build))
    body = ET.SubElement(root, q(SOAP, "Body"))
    node = ET.SubElement(body, q(SOAP, "Fault"))
    # faultcode is a QName in the types namespace ("a:ErrorX"), or s:Server for server faults.
    ET.SubElement(node, "faultcode").text = f"a:{fault.code}" if fault.client else "s:Server"
    ET.SubElement(
        node, "faultstring", {"{http://www.w3.org/XML/1998/namespace}lang": "en-US"}
    ).text = fault.message
    detail = ET.SubElement(node, "detail")
    ET.SubElement(detail, q(E, "ResponseCode")).text = fault.code
    ET.SubElement(detail, q(E, "Message")).text = fault.message
    if fault.back_off_ms is not None or fault.line is not None:
        xml = ET.SubElement(detail, q(T, "MessageXml"))
        if fault.back_off_ms is not None:
            ET.SubElement(xml, q(T, "Value"), {"Name": "BackOffMilliseconds"}).text = str(
                fault.back_off_ms
            )
        if fault.line is not None:
            ET.SubElement(xml, q(T, "LineNumber")).text = str(fault.line)
            ET.SubElement(xml, q(T, "LinePosition")).text = str(fault.position or 0)
    text = _serialize(root).replace(b"<faultcode>", f'<faultcode xmlns:a="{T}">'.encode())
    return Response(fault.status, text, Headers({"Content-Type": "text/xml; charset=utf-8"}))


def response_message(operation: str, error: ItemError | None = None) -> ET.Element:
    """``m:<Operation>ResponseMessage`` with ResponseClass and ResponseCode (and MessageText)."""
    message = ET.Element(
        q(M, f"{operation}ResponseMessage"),
        {"ResponseClass": "Error" if error else "Success"},
    )
    if error:
        ET.SubElement(message, q(M, "MessageText")).text = error.message
        ET.SubElement(message, q(M, "ResponseCode")).text = error.code
        ET.SubElement(message, q(M, "DescriptiveLinkKey")).text = "0"
    else:
        ET.SubElement(message, q(M, "ResponseCode")).text = "NoError"
    return message


def text_of(elem: ET.Element | None, name: str, ns: str = T) -> str | None:
    if elem is None:
        return None
    child = elem.find(q(ns, name))
    return None if child is None else (child.text or "")
