"""Microsoft identity platform and Graph v1.0 calendars, emulated.

``register(router, sandbox)`` wires the identity routes (``/{tenant}/...``), Graph
(``/v1.0/...``) and the Microsoft control routes (``/_sandbox/api/microsoft/...``), and
stores the state in ``sandbox.services["microsoft"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core import Router
from . import (
    control,
    graph_batch,
    graph_delta,
    graph_events,
    identity,
    rooms,
    schedule,
    subscriptions,
)
from .errors import GRAPH, IDENTITY, format_graph, format_identity
from .state import MicrosoftState

if TYPE_CHECKING:
    from ..server import Sandbox


def register(router: Router, sandbox: Sandbox) -> None:
    """Plug the Microsoft services into the sandbox."""
    key_file = sandbox.state_dir / "microsoft-signing-key.pem"
    state = MicrosoftState(sandbox.config.get("microsoft", {}), sandbox.clock.now, key_file)
    sandbox.services["microsoft"] = state
    sandbox.error_formatters[GRAPH] = format_graph
    sandbox.error_formatters[IDENTITY] = format_identity
    sandbox.path_services.append(("/v1.0", GRAPH))
    for module in (
        identity,
        graph_delta,
        graph_batch,
        graph_events,
        schedule,
        subscriptions,
        control,
    ):
        module.register(router, sandbox)
    rooms.attach(state, sandbox)
    sandbox.page_sources.append(lambda day: control.page_calendars(state, day))
