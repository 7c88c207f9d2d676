"""Personal sign-in for Exchange Server: not offered.

EWS on-premises has no per-person OAuth consent Reserva could use (hybrid modern auth signs
the service account in with application credentials), so personal mode is not available for
this provider; normal and strict mode act as the sync user. The functions exist because every
provider module answers the same calls (``ProviderSpec.oauth``).
"""

from __future__ import annotations

from typing import Any, NoReturn

from ..base import PermanentError

NOT_OFFERED = (
    "Exchange Server (EWS) has no personal sign-in: use normal or strict sync mode, in which "
    "Reserva acts as the sync user of the credential alias."
)


def begin_authorization(*args: Any, **kwargs: Any) -> NoReturn:
    raise PermanentError(NOT_OFFERED, code="no_personal_sign_in")


def complete_authorization(*args: Any, **kwargs: Any) -> NoReturn:
    raise PermanentError(NOT_OFFERED, code="no_personal_sign_in")
