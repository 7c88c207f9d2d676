"""Uploaded images (floor maps, space photos): what is accepted, judged by content.

A file is accepted when it is at most ``UPLOAD_MAX_BYTES`` and is, by its bytes (never its
name), one of:

- **PNG**: the 8-byte signature, then an IHDR chunk giving the width and height;
- **JPEG**: the SOI marker, then a start-of-frame segment giving the height and width;
- **SVG**: well-formed XML with no DTD (so no entities: no external ones, no "billion
  laughs"), an ``<svg>`` root in the SVG namespace, and nothing that could run or fetch when
  the file is opened: no ``<script>``, ``<foreignObject>`` or other embedding element, no
  ``on*`` event attribute, no link that leaves the document (``href`` other than ``#id``),
  no ``javascript:`` value, no ``@import`` or external ``url()`` in styles, no processing
  instruction (``<?xml-stylesheet?>``).

Pillow is not a dependency: the two raster headers are read here in a few lines, and the
image itself is only ever decoded by the browser, which is why the dimensions are bounded.
The stored file is named after its detected type (``.png``, ``.jpg``, ``.svg``), so a file
uploaded as ``plan.html`` is served as the image it is; ``views.media`` serves them with a
sandboxing Content-Security-Policy on top.
"""

from __future__ import annotations

import re
import struct
import uuid
from dataclasses import dataclass
from xml.parsers import expat

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.text import slugify

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 12_000  # pixels: the browser decodes the image; a bigger one is a memory bomb
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
XLINK_NAMESPACE = "http://www.w3.org/1999/xlink"
XHTML_NAMESPACE = "http://www.w3.org/1999/xhtml"
# Elements that run script, embed other documents or media, or load from elsewhere.
FORBIDDEN_ELEMENTS = {
    "script",
    "foreignobject",
    "iframe",
    "embed",
    "object",
    "handler",
    "listener",
    "audio",
    "video",
    "canvas",
    "image",  # a raster inside the plan may point anywhere; plans are drawn, not collaged
    "feimage",
}
ANIMATIONS = {"set", "animate", "animatetransform", "animatemotion"}
_CONTROL = re.compile(r"[\x00-\x20]+")
_URL = re.compile(r"url\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)
EXTENSIONS = {"png": "png", "jpeg": "jpg", "svg": "svg"}
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "svg": "image/svg+xml",
}


@dataclass(frozen=True)
class ImageInfo:
    """What an accepted upload is: ``kind`` is "png", "jpeg" or "svg"; width and height in
    pixels (for an SVG, its viewBox or width/height, which give the aspect ratio)."""

    kind: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.kind]


def _refuse(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_image")


def read_upload(upload) -> bytes:
    """The whole content of an uploaded or stored file (at most the limit plus one byte, so
    an oversized file is never read whole), left rewound."""
    limit = settings.UPLOAD_MAX_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise _too_big(size)
    upload.seek(0)
    data = upload.read(limit + 1)
    upload.seek(0)
    if isinstance(data, str):
        data = data.encode()
    if len(data) > limit:
        raise _too_big(len(data))
    return data


def _too_big(size: int) -> ValidationError:
    return _refuse(
        f"The file is {filesizeformat(size)}; the largest accepted is "
        f"{filesizeformat(settings.UPLOAD_MAX_BYTES)}."
    )


def inspect(data: bytes) -> ImageInfo:
    """What ``data`` is, or a ValidationError saying why it is refused."""
    if not data:
        raise _refuse("The file is empty.")
    if data.startswith(PNG_SIGNATURE):
        info = _png(data)
    elif data.startswith(b"\xff\xd8\xff"):
        info = _jpeg(data)
    elif _looks_like_xml(data):
        info = _svg(data)
    else:
        raise _refuse("Upload a PNG, JPEG or SVG image; this file is none of them.")
    if not (0 < info.width <= MAX_SIDE and 0 < info.height <= MAX_SIDE):
        raise _refuse(
            f"The image is {info.width} x {info.height} pixels; each side must be between 1 "
            f"and {MAX_SIDE} pixels."
        )
    return info


def validate_image(upload) -> None:
    """Model field validator: the upload is an accepted image (see the module's docstring).
    A file already stored was checked when it was uploaded (and may be gone from disk)."""
    if getattr(upload, "_committed", False):
        return
    inspect(read_upload(upload))


def _png(data: bytes) -> ImageInfo:
    # Signature (8), then the first chunk: length (4), type (4) = IHDR, width (4), height (4).
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _refuse("This PNG file is damaged (no image header).")
    width, height = struct.unpack(">II", data[16:24])
    return ImageInfo("png", width, height)


# Start-of-frame markers (baseline, progressive, ...); C4, C8 and CC are not frames.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> ImageInfo:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF:
            if at + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return ImageInfo("jpeg", width, height)
        if marker == 0xD9 or length < 2:
            break
        at += 2 + length
    raise _refuse("This JPEG file is damaged (no frame header).")


def _looks_like_xml(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<")


class _SvgChecker:
    """Collects the root element and refuses anything unsafe while expat parses."""

    def __init__(self) -> None:
        self.root: tuple[str, dict[str, str]] | None = None
        self.in_style = 0
        self.style_text: list[str] = []

    def start(self, name: str, attributes: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        lower = local.lower()
        if self.root is None:
            self.root = (name, attributes)
        if namespace == XHTML_NAMESPACE or lower in FORBIDDEN_ELEMENTS:
            raise _refuse(f"SVG files may not contain <{local}> (it can run or embed content).")
        if lower == "style":
            self.in_style += 1
        for attribute, value in attributes.items():
            self._attribute(lower, attribute, value, attributes)

    def _attribute(self, element: str, attribute: str, value: str, all_: dict[str, str]) -> None:
        local = attribute.rpartition(" ")[2].lower()
        squeezed = _CONTROL.sub("", value).lower()
        if local.startswith("on"):
            raise _refuse(f"SVG files may not have event attributes ({local}).")
        if "javascript:" in squeezed or "vbscript:" in squeezed:
            raise _refuse("SVG files may not contain javascript: links.")
        if local == "href" and not value.strip().startswith("#"):
            raise _refuse('SVG files may link only inside themselves (href="#...").')
        if local == "style":
            self._css(value)
        if element in ANIMATIONS:
            target = all_.get("attributeName", "").lower()
            if target.endswith("href") or target.startswith("on"):
                raise _refuse("SVG animations may not change links or event attributes.")

    def end(self, name: str) -> None:
        if name.rpartition(" ")[2].lower() == "style":
            self.in_style -= 1
            self._css("".join(self.style_text))  # expat may hand the text over in pieces
            self.style_text.clear()

    def text(self, data: str) -> None:
        if self.in_style:
            self.style_text.append(data)

    @staticmethod
    def _css(css: str) -> None:
        lowered = _CONTROL.sub("", css).lower()
        if "@import" in lowered or "expression(" in lowered:
            raise _refuse("SVG styles may not import other files.")
        for target in _URL.findall(css):
            if target and not target.startswith("#"):
                raise _refuse("SVG styles may refer only to the file itself (url(#...)).")


def _refuse_dtd(*_args) -> None:
    raise _refuse("SVG files may not declare a DOCTYPE or entities.")


def _refuse_instruction(*_args) -> None:
    raise _refuse("SVG files may not contain processing instructions.")


def _svg(data: bytes) -> ImageInfo:
    checker = _SvgChecker()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.ProcessingInstructionHandler = _refuse_instruction
    parser.StartElementHandler = checker.start
    parser.EndElementHandler = checker.end
    parser.CharacterDataHandler = checker.text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise _refuse(f"This SVG file is not well-formed XML ({exc}).") from exc
    if checker.root is None or checker.root[0] != f"{SVG_NAMESPACE} svg":
        raise _refuse("Upload a PNG, JPEG or SVG image; this XML file is not an SVG image.")
    width, height = _svg_size(checker.root[1])
    return ImageInfo("svg", width, height)


def _length(value: str | None) -> float | None:
    if not value:
        return None
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(px)?\s*", value)
    return float(match.group(1)) if match else None


def _svg_size(attributes: dict[str, str]) -> tuple[int, int]:
    """Pixels from width/height, else the viewBox (which gives the aspect ratio)."""
    width, height = _length(attributes.get("width")), _length(attributes.get("height"))
    if width and height:
        return round(width), round(height)
    parts = re.split(r"[\s,]+", attributes.get("viewBox", "").strip())
    try:
        box = [float(part) for part in parts] if len(parts) == 4 else []
    except ValueError:
        box = []
    if box and box[2] > 0 and box[3] > 0:
        return max(1, round(box[2])), max(1, round(box[3]))
    raise _refuse("This SVG image has no size: give its <svg> a viewBox (or width and height).")


def stored_name(folder: str, stem: str, upload) -> str:
    """``folder/stem-<random>.<ext>`` with the extension of the detected type (the random
    part keeps a replaced image from being served from a browser's cache). ``upload`` is the
    field's file, assigned (a form's upload, ``ContentFile(..., name=...)``) before saving."""
    info = inspect(read_upload(upload))
    slug = slugify(stem)[:60] or "image"
    return f"{folder}/{slug}-{uuid.uuid4().hex[:8]}.{info.extension}"
