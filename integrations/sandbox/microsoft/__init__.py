"""Microsoft identity platform and Graph v1.0 calendars, emulated.

``register(router, sandbox)`` wires the identity routes (``/{tenant}/...``), Graph
(``/v1.0/...``) and the Microsoft control routes (``/_sandbox/api/microsoft/...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core import Router

if TYPE_CHECKING:
    from ..server import Sandbox


def register(router: Router, sandbox: Sandbox) -> None:
    """Plug the Microsoft services into the sandbox."""
