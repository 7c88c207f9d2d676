"""Strictness from Google's own schema: the Calendar v3 discovery document.

``calendar.v3.json`` is copied verbatim from the google-api-python-client wheel
(``googleapiclient/discovery_cache/documents/calendar.v3.json``, revision in the file), so the
sandbox needs no Google package at run time. From it we take, per method:

* the OAuth scopes that may call it (``scopes``),
* the query parameters it accepts, their types, enums, minimums and whether they repeat,
* the request body's schema (``request.$ref``), walked property by property.

What the discovery document cannot say (required ``start``/``end``, the event-id alphabet,
``timeMin < timeMax``) is checked by the handlers. Messages follow the texts Google's front
end uses ("Invalid string value: 'x'. Allowed values: [...]", "Invalid JSON payload
received. Unknown name ..."), each with Google's reason.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ApiError

DISCOVERY_FILE = Path(__file__).with_name("calendar.v3.json")
INT_RE = re.compile(r"^-?\d+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339: a date, "T", a time with optional fraction, and an offset (Z or +hh:mm).
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# EventDateTime.dateTime may omit the offset when timeZone is given.
LOCAL_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?$")


@cache
def discovery() -> dict[str, Any]:
    """The parsed discovery document (read once)."""
    with DISCOVERY_FILE.open(encoding="utf-8") as handle:
        return json.load(handle)


@cache
def method(method_id: str) -> dict[str, Any]:
    """A method by its discovery id, e.g. ``calendar.events.insert``."""
    _, resource, name = method_id.split(".", 2)
    return discovery()["resources"][resource]["methods"][name]


def method_scopes(method_id: str) -> frozenset[str]:
    return frozenset(method(method_id).get("scopes", ()))


def parse_datetime(value: str) -> dt.datetime | None:
    """An RFC 3339 timestamp with offset as an aware datetime, or None when malformed."""
    if not DATETIME_RE.match(value):
        return None
    try:
        return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


# -- query parameters ----------------------------------------------------------------------


def check_query(method_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """Validate ``query`` against the method's and the API's parameters; return typed values.

    Repeated parameters come back as lists, the others as single typed values. Path
    parameters are not in ``query``; a query parameter named like one is unknown.
    """
    params = {
        name: spec
        for name, spec in method(method_id).get("parameters", {}).items()
        if spec.get("location") == "query"
    }
    params.update(discovery()["parameters"])
    typed: dict[str, Any] = {}
    for name, values in query.items():
        spec = params.get(name)
        if spec is None:
            raise ApiError(
                400,
                "invalidParameter",
                f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                f"parameter. Field '{name}' could not be found in request message.",
                extra={"locationType": "parameter", "location": name},
            )
        if len(values) > 1 and not spec.get("repeated"):
            raise ApiError(
                400,
                "invalidParameter",
                f"Parameter '{name}' may only be given once.",
                extra={"locationType": "parameter", "location": name},
            )
        converted = [_query_value(name, spec, value) for value in values]
        typed[name] = converted if spec.get("repeated") else converted[0]
    if "quotaUser" in typed and len(typed["quotaUser"]) > 40:
        # Discovery: "Must not exceed 40 characters."
        raise _invalid_param("quotaUser", "Invalid quotaUser: must not exceed 40 characters.")
    return typed


def _invalid_param(name: str, message: str) -> ApiError:
    return ApiError(
        400, "invalidParameter", message, extra={"locationType": "parameter", "location": name}
    )


def _query_value(name: str, spec: dict[str, Any], value: str) -> Any:
    kind = spec.get("type")
    if kind == "integer":
        if not INT_RE.match(value):
            raise _invalid_param(name, f"Invalid integer value: '{value}'.")
        number = int(value)
        low, high = spec.get("minimum"), spec.get("maximum")
        if (low is not None and number < int(low)) or (high is not None and number > int(high)):
            shown = f"[{low if low is not None else ''}, {high if high is not None else ''}]"
            raise _invalid_param(
                name, f"Invalid value '{value}'. Values must be within the range: {shown}"
            )
        return number
    if kind == "boolean":
        if value not in ("true", "false"):
            raise _invalid_param(name, f"Invalid boolean value: '{value}'.")
        return value == "true"
    if "enum" in spec and value not in spec["enum"]:
        allowed = ", ".join(spec["enum"])
        raise _invalid_param(name, f"Invalid string value: '{value}'. Allowed values: [{allowed}]")
    if spec.get("format") == "date-time" and parse_datetime(value) is None:
        # Discovery: "Must be an RFC3339 timestamp with mandatory time zone offset".
        raise ApiError(400, "badRequest", "Bad Request")
    return value


# -- request bodies -------------------------------------------------------------------------


def check_body(method_id: str, body: bytes) -> Any:
    """Parse and validate the JSON request body of a method that takes one."""
    ref = method(method_id).get("request", {}).get("$ref")
    if not body.strip():
        if ref:
            raise ApiError(400, "required", "Required")
        return None
    try:
        payload = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "parseError", f"Invalid JSON payload received. {exc}.") from None
    if ref:
        if not isinstance(payload, dict):
            raise _type_error("resource", "TYPE_MESSAGE", payload)
        _check_value(payload, {"$ref": ref}, "resource")
    return payload


def _type_error(path: str, expected: str, value: Any) -> ApiError:
    return ApiError(400, "invalid", f"Invalid value at '{path}' ({expected}), {json.dumps(value)}")


def _check_value(value: Any, spec: dict[str, Any], path: str) -> None:
    if "$ref" in spec:
        spec = discovery()["schemas"][spec["$ref"]]
    if value is None:
        return  # JSON null clears a field, as Google's front end accepts it.
    kind = spec.get("type")
    if kind == "any":
        return
    if kind == "object":
        if not isinstance(value, dict):
            raise _type_error(path, "TYPE_MESSAGE", value)
        properties = spec.get("properties", {})
        extra = spec.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                _check_value(item, properties[key], f"{path}.{key}")
            elif extra is not None:
                _check_value(item, extra, f"{path}[{key!r}]")
            else:
                raise ApiError(
                    400,
                    "invalid",
                    f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': "
                    "Cannot find field.",
                )
        return
    if kind == "array":
        if not isinstance(value, list):
            raise _type_error(path, "TYPE_LIST", value)
        for index, item in enumerate(value):
            _check_value(item, spec.get("items", {}), f"{path}[{index}]")
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _type_error(path, "TYPE_BOOL", value)
        return
    if kind in ("integer", "number"):
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number and not (isinstance(value, str) and INT_RE.match(value)):
            raise _type_error(path, "TYPE_INT32", value)
        return
    if kind == "string":
        _check_string(value, spec, path)


def _check_string(value: Any, spec: dict[str, Any], path: str) -> None:
    fmt = spec.get("format")
    if fmt in ("int64", "uint64"):
        # JSON can carry 64-bit integers as numbers or as strings; both are accepted.
        if isinstance(value, int) and not isinstance(value, bool):
            return
        if isinstance(value, str) and INT_RE.match(value):
            return
        raise _type_error(path, "TYPE_INT64", value)
    if not isinstance(value, str):
        raise _type_error(path, "TYPE_STRING", value)
    if fmt == "date" and not DATE_RE.match(value):
        raise ApiError(400, "invalid", f"Invalid value at '{path}': not a yyyy-mm-dd date.")
    if fmt == "date-time" and not (DATETIME_RE.match(value) or LOCAL_DATETIME_RE.match(value)):
        raise ApiError(400, "invalid", f"Invalid value at '{path}': not an RFC 3339 date-time.")
    if "enum" in spec and value not in spec["enum"]:
        allowed = ", ".join(spec["enum"])
        raise ApiError(
            400, "invalid", f"Invalid string value: '{value}'. Allowed values: [{allowed}]"
        )
