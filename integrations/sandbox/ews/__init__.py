"""Exchange Web Services (on-premises Exchange 2016/2019/SE), emulated.

``register(router, sandbox)`` serves ``POST /EWS/Exchange.asmx`` (SOAP 1.1, NTLM or Basic)
and the EWS control routes (``/_sandbox/api/ews/...``), and keeps the state in
``sandbox.services["ews"]``. The client it is written against is exchangelib. Operations
live in ``operations.py`` (folders, items, sync), ``notifications.py`` and ``streaming.py``
(subscriptions), ``availability.py`` (free/busy), ``directory.py`` (time zones, names);
``rooms.py`` answers meeting requests for room mailboxes; ``control.py`` holds the control
routes and the page's calendars.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core import Request, Response, Router
from . import availability, control, directory, endpoint, notifications, rooms, streaming
from .operations import DELETE_HOOKS, WRITE_HOOKS
from .soap import SoapFault, fault_response
from .state import EwsState

# The operations modules register themselves on import (``operations.OPERATIONS``).
__all__ = ["availability", "directory", "register", "streaming"]

if TYPE_CHECKING:
    from ..server import Sandbox


def format_error(status: int, code: str, message: str, request: Request | None) -> Response:
    """Faults, throttling and unknown paths under /EWS in EWS's shape."""
    if status == 503:
        # HTTP.sys / IIS answer an unavailable EWS application pool with a bare 503.
        return Response.text(503, "Service Unavailable", "text/html")
    if status in (404, 405):
        return Response.text(status, f"{status} - {message}", "text/html")
    return fault_response(SoapFault("ErrorInternalServerError", message, client=False))


def register(router: Router, sandbox: Sandbox) -> None:
    """Plug EWS into the sandbox."""
    state = EwsState(sandbox.config.get("ews", {}), sandbox.clock.now, sandbox.state_dir)
    sandbox.services["ews"] = state
    sandbox.error_formatters[endpoint.SERVICE] = format_error
    sandbox.path_services.append(("/EWS", endpoint.SERVICE))
    router.add(
        "POST",
        r"/EWS/Exchange\.asmx",
        endpoint.handle,
        service=endpoint.SERVICE,
        name="EWS",
    )
    if rooms.on_write not in WRITE_HOOKS:
        WRITE_HOOKS.append(rooms.on_write)
        DELETE_HOOKS.append(rooms.on_delete)
    notifications.install(state, sandbox)
    control.register(router, sandbox)
    sandbox.page_sources.append(lambda day: control.page_calendars(state, day))
