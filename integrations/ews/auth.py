"""Tokens for Exchange Server: none a person holds (see ``oauth.py``); the client signs in
with the credential alias itself (NTLM, Basic or hybrid modern auth) through exchangelib."""

from __future__ import annotations

from typing import Any, NoReturn

from .oauth import NOT_OFFERED, PermanentError


def user_token(*args: Any, **kwargs: Any) -> NoReturn:
    raise PermanentError(NOT_OFFERED, code="no_personal_sign_in")
