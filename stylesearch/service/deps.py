"""What routes depend on: the app's state (engine, batcher, metrics), API-key checks and
the JSON error every failure becomes."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..engine import StyleSearch
from .batcher import MicroBatcher
from .metrics import Metrics
from .settings import Settings


class ApiError(Exception):
    """An error answered as ``{"code", "message", "status"}`` with HTTP status ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@dataclass
class Services:
    """Everything the lifespan builds once; routes reach it through :func:`services`."""

    settings: Settings
    engine: StyleSearch
    batcher: MicroBatcher
    metrics: Metrics


def services(request: Request) -> Services:
    state: Services | None = getattr(request.app.state, "services", None)
    if state is None:
        raise ApiError(503, "not_ready", "the index is still loading; retry shortly")
    return state


_bearer = HTTPBearer(auto_error=False, description="an API key from STYLESEARCH_API_KEYS")


def _key_matches(given: str, keys: list[str]) -> bool:
    """Constant-time comparison against every key (no early exit that would leak which)."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def _check_key(svc: Services, credentials: HTTPAuthorizationCredentials | None, what: str) -> None:
    keys = svc.settings.keys()
    if not keys:
        raise ApiError(
            403, "writes_disabled", f"this server has no API key configured, so it refuses {what}: set STYLESEARCH_API_KEYS"
        )
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(401, "unauthorized", "send the header 'Authorization: Bearer <API key>'", challenge)
    if not _key_matches(credentials.credentials, keys):
        raise ApiError(401, "unauthorized", "the API key is not valid", challenge)


def writer(
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Services:
    """Services for a write endpoint: a valid API key is required."""
    _check_key(svc, credentials, "writes")
    return svc


def _credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    """A bearer key from the ``Authorization`` header, read without declaring it: reads are
    open unless configured otherwise (the app then documents the key, see ``create_app``)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return HTTPAuthorizationCredentials(scheme="Bearer", credentials=key.strip())


def reader(svc: Annotated[Services, Depends(services)], request: Request) -> Services:
    """Services for a read endpoint: a key only when ``read_requires_key`` is set. Reads see
    what other processes (``serve --workers N``, ``stylesearch add``) published."""
    if svc.settings.read_requires_key:
        _check_key(svc, _credentials(request), "reads")
    svc.engine.refresh()
    return svc


Reader = Annotated[Services, Depends(reader)]
Writer = Annotated[Services, Depends(writer)]
