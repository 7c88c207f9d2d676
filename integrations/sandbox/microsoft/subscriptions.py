"""Graph change notifications for Outlook events: subscriptions, validation, delivery.

``POST /v1.0/subscriptions`` validates the notification URL (and the lifecycle URL) with
Graph's handshake: a POST to ``{url}?validationToken=...`` that must answer 200 with the
decoded token as ``text/plain`` within 10 seconds. Expiry is capped at the configured maximum
(10,080 minutes for Outlook events); ``PATCH`` renews, ``reauthorize`` resumes. Every
notification carries the subscription's ``clientState``. Lifecycle notifications
(``reauthorizationRequired``, ``missed``, ``subscriptionRemoved``) are sent on request through
the control API. Subscriptions past their expiry disappear when the sandbox clock passes it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import secrets
import ssl
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from ..core import Request, Response, Router
from . import timezones as tz
from .errors import GRAPH, graph_error
from .graph_common import GRAPH_ROOT, READ, access_denied, authenticate, ms_state
from .state import Mailbox, MicrosoftState

if TYPE_CHECKING:
    from ..server import Sandbox

FIELDS = {
    "changeType",
    "notificationUrl",
    "resource",
    "expirationDateTime",
    "clientState",
    "lifecycleNotificationUrl",
    "latestSupportedTlsVersion",
    "includeResourceData",
    "@odata.type",
}
CHANGE_TYPES = {"created", "updated", "deleted"}
LIFECYCLE_EVENTS = ("reauthorizationRequired", "missed", "subscriptionRemoved")


def _bad(request: Request, message: str, code: str = "ValidationError") -> Response:
    return graph_error(400, code, message, request)


def _ssl_context(sandbox: Sandbox) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if sandbox.ca_file.exists():
        context.load_verify_locations(cafile=str(sandbox.ca_file))
    return context


def post(
    sandbox: Sandbox, url: str, body: bytes, content_type: str, timeout: float
) -> tuple[int, str]:
    """POST from the sandbox to a client's endpoint; returns (status, text) or (0, error)."""
    # Only http(s) URLs get here: _url_allowed checked the scheme when the subscription was made.
    headers = {"Content-Type": content_type}
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    context = _ssl_context(sandbox)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def _url_allowed(sandbox: Sandbox, url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if not sandbox.config["microsoft"].get("allow_http_loopback_notifications", True):
        return False
    try:
        return parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _validate_endpoint(sandbox: Sandbox, url: str) -> bool:
    token = secrets.token_urlsafe(24) + " validation:" + str(uuid.uuid4())
    sep = "&" if "?" in url else "?"
    status, text = post(
        sandbox,
        f"{url}{sep}validationToken={quote(token)}",
        b"",
        "text/plain; charset=utf-8",
        timeout=10,
    )
    return status == 200 and text == token


def _resource_mailbox(state: MicrosoftState, resource: str, principal: Any) -> Mailbox | None:
    parts = [p for p in resource.strip("/").split("/") if p]
    if len(parts) == 2 and parts[0].lower() == "me" and parts[1].lower() == "events":
        return None if principal.is_app else state.mailbox(principal.user_id)
    tail = [p.lower() for p in parts[2:]]
    if (
        len(parts) >= 3
        and parts[0].lower() == "users"
        and tail in (["events"], ["calendar", "events"])
    ):
        return state.mailbox(unquote(parts[1]))
    return None


def _json(sub: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sub.items() if not k.startswith("_")}


def create(request: Request, sandbox: Sandbox) -> Response:
    principal = authenticate(request, sandbox)
    if isinstance(principal, Response):
        return principal
    state = ms_state(sandbox)
    try:
        body = request.json()
        assert isinstance(body, dict)
    except (ValueError, AssertionError):
        return _bad(request, "Invalid JSON in the request body.", "BadRequest")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return _bad(
            request,
            f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.subscription'.",
            "BadRequest",
        )
    for name in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
        if not body.get(name):
            return _bad(request, f"The property '{name}' is required.", "BadRequest")
    changes = {c.strip() for c in str(body["changeType"]).split(",")}
    if not changes <= CHANGE_TYPES:
        return _bad(request, f"Invalid changeType '{body['changeType']}'.", "BadRequest")
    if body.get("includeResourceData"):
        return _bad(
            request,
            "Rich notifications (includeResourceData) are not supported for this resource.",
            "ExtensionError",
        )
    client_state = body.get("clientState")
    if client_state is not None and len(str(client_state)) > 128:
        return _bad(request, "clientState must be at most 128 characters.")
    mailbox = _resource_mailbox(state, str(body["resource"]), principal)
    if mailbox is None or mailbox.tenant_id != principal.tenant_id:
        return _bad(
            request,
            f"Resource '{body['resource']}' is not supported or does not exist.",
            "ExtensionError",
        )
    if not principal.permissions & READ or (
        not principal.is_app and mailbox.id != principal.user_id
    ):
        return access_denied(request)
    expiry = _expiry(request, sandbox, body["expirationDateTime"])
    if isinstance(expiry, Response):
        return expiry
    for key in ("notificationUrl", "lifecycleNotificationUrl"):
        url = body.get(key)
        if url is None:
            continue
        if not _url_allowed(sandbox, str(url)):
            return _bad(request, f"The {key} must be an https URL.")
        if not _validate_endpoint(sandbox, str(url)):
            return _bad(
                request,
                "Subscription validation request failed. Notification "
                "endpoint must respond with 200 OK to validation request.",
            )
    sub = {
        "id": str(uuid.uuid4()),
        "resource": body["resource"],
        "applicationId": principal.app_id,
        "changeType": ",".join(sorted(changes)),
        "clientState": client_state,
        "notificationUrl": body["notificationUrl"],
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
        "expirationDateTime": tz.iso_z(expiry),
        "creatorId": principal.user_id or principal.app_id,
        "includeResourceData": None,
        "latestSupportedTlsVersion": body.get("latestSupportedTlsVersion", "v1_2"),
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": None,
        "_mailbox": mailbox.id,
        "_expires": expiry,
        "_paused": False,
        "_tenant": mailbox.tenant_id,
        "_deliveries": [],
    }
    with state.lock:
        state.subscriptions[sub["id"]] = sub
    context = {"@odata.context": f"{GRAPH_ROOT}/$metadata#subscriptions/$entity"}
    return Response.json(201, context | _json(sub))


def _expiry(request: Request, sandbox: Sandbox, raw: Any) -> dt.datetime | Response:
    try:
        expiry = tz.parse_query_instant(str(raw))
    except ValueError:
        return _bad(request, "expirationDateTime is not a valid date and time.", "BadRequest")
    now = sandbox.clock.now()
    limit = int(sandbox.config["microsoft"].get("subscription_max_minutes", 10080))
    if expiry <= now:
        return _bad(request, "Subscription expiration must be in the future.", "ExtensionError")
    if expiry > now + dt.timedelta(minutes=limit):
        return _bad(
            request,
            "Operation: Create; Exception: [Status Code: BadRequest; Reason: "
            f"Subscription expiration can only be {limit} minutes in the future.]",
            "ExtensionError",
        )
    return expiry


def _own(request: Request, sandbox: Sandbox) -> tuple[dict[str, Any], Any] | Response:
    principal = authenticate(request, sandbox)
    if isinstance(principal, Response):
        return principal
    state = ms_state(sandbox)
    expire_due(state, sandbox)
    sub = state.subscriptions.get(request.params["sub_id"])
    if sub is None or sub["applicationId"] != principal.app_id:
        return graph_error(
            404,
            "ResourceNotFound",
            f"The object '{request.params['sub_id']}' was not found.",
            request,
        )
    return sub, principal


def get_one(request: Request, sandbox: Sandbox) -> Response:
    found = _own(request, sandbox)
    if isinstance(found, Response):
        return found
    context = {"@odata.context": f"{GRAPH_ROOT}/$metadata#subscriptions/$entity"}
    return Response.json(200, context | _json(found[0]))


def list_all(request: Request, sandbox: Sandbox) -> Response:
    principal = authenticate(request, sandbox)
    if isinstance(principal, Response):
        return principal
    state = ms_state(sandbox)
    expire_due(state, sandbox)
    value = [
        _json(s) for s in state.subscriptions.values() if s["applicationId"] == principal.app_id
    ]
    return Response.json(
        200, {"@odata.context": f"{GRAPH_ROOT}/$metadata#subscriptions", "value": value}
    )


def renew(request: Request, sandbox: Sandbox) -> Response:
    found = _own(request, sandbox)
    if isinstance(found, Response):
        return found
    sub = found[0]
    try:
        body = request.json()
    except ValueError:
        return _bad(request, "Invalid JSON in the request body.", "BadRequest")
    if not isinstance(body, dict) or set(body) - {"expirationDateTime", "notificationUrl"}:
        return _bad(
            request, "Only expirationDateTime and notificationUrl can be updated.", "BadRequest"
        )
    if "expirationDateTime" in body:
        expiry = _expiry(request, sandbox, body["expirationDateTime"])
        if isinstance(expiry, Response):
            return expiry
        sub["_expires"], sub["expirationDateTime"] = expiry, tz.iso_z(expiry)
    sub["_paused"] = False  # a renewing PATCH also reauthorizes
    context = {"@odata.context": f"{GRAPH_ROOT}/$metadata#subscriptions/$entity"}
    return Response.json(200, context | _json(sub))


def reauthorize(request: Request, sandbox: Sandbox) -> Response:
    found = _own(request, sandbox)
    if isinstance(found, Response):
        return found
    found[0]["_paused"] = False
    return Response.empty(200)


def delete(request: Request, sandbox: Sandbox) -> Response:
    found = _own(request, sandbox)
    if isinstance(found, Response):
        return found
    ms_state(sandbox).subscriptions.pop(found[0]["id"], None)
    return Response.empty(204)


def expire_due(state: MicrosoftState, sandbox: Sandbox) -> None:
    now = sandbox.clock.now()
    with state.lock:
        for sub_id in [k for k, s in state.subscriptions.items() if s["_expires"] <= now]:
            del state.subscriptions[sub_id]


def _deliver(sandbox: Sandbox, sub: dict[str, Any], url: str, items: list[dict[str, Any]]):
    status, _ = post(
        sandbox,
        url,
        json.dumps({"value": items}).encode(),
        "application/json; charset=utf-8",
        timeout=10,
    )
    sub["_deliveries"].append(
        {
            "time": sandbox.clock.now().isoformat(),
            "status": status,
            "kind": items[0].get("lifecycleEvent", "change"),
        }
    )


def attach(state: MicrosoftState, sandbox: Sandbox) -> None:
    """Send a change notification to every matching subscription after each change."""

    def on_change(box: Mailbox, event: dict[str, Any], change: str) -> None:
        expire_due(state, sandbox)
        for sub in list(state.subscriptions.values()):
            if sub["_mailbox"] != box.id or sub["_paused"]:
                continue
            if change not in sub["changeType"].split(","):
                continue
            ref = f"Users/{box.id}/Events/{event['id']}"
            item = {
                "subscriptionId": sub["id"],
                "subscriptionExpirationDateTime": sub["expirationDateTime"],
                "changeType": change,
                "resource": ref,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": ref,
                    "@odata.etag": f'W/"{event["changeKey"]}"',
                    "id": event["id"],
                },
                "clientState": sub["clientState"],
                "tenantId": sub["_tenant"],
            }
            sandbox.defer(
                lambda sub=sub, item=item: _deliver(sandbox, sub, sub["notificationUrl"], [item])
            )

    state.listeners.append(on_change)
    sandbox.clock_listeners.append(lambda: expire_due(state, sandbox))


def send_lifecycle(sandbox: Sandbox, sub: dict[str, Any], event: str) -> None:
    """Send a lifecycle notification now (control API); pauses or removes as Graph does."""
    state = ms_state(sandbox)
    item = {
        "subscriptionId": sub["id"],
        "subscriptionExpirationDateTime": sub["expirationDateTime"],
        "tenantId": sub["_tenant"],
        "clientState": sub["clientState"],
        "lifecycleEvent": event,
    }
    if event == "reauthorizationRequired":
        sub["_paused"] = True
    elif event == "subscriptionRemoved":
        state.subscriptions.pop(sub["id"], None)
    sandbox.defer(lambda: _deliver(sandbox, sub, sub["lifecycleNotificationUrl"], [item]))


def register(router: Router, sandbox: Sandbox) -> None:
    sid = r"/v1\.0/subscriptions/(?P<sub_id>[^/]+)"
    routes = [
        ("POST", r"/v1\.0/subscriptions", create, "subscription create"),
        ("GET", r"/v1\.0/subscriptions", list_all, "subscriptions list"),
        ("GET", sid, get_one, "subscription get"),
        ("PATCH", sid, renew, "subscription renew"),
        ("DELETE", sid, delete, "subscription delete"),
        ("POST", f"{sid}/reauthorize", reauthorize, "subscription reauthorize"),
    ]
    for method, pattern, handler, name in routes:
        router.add(method, pattern, handler, service=GRAPH, name=f"graph {name}")
    attach(ms_state(sandbox), sandbox)
