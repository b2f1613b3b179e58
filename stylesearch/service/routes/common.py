"""What the routers share: the error responses, item output, checked parameters, uploads
and their embedding (through the micro-batcher), and the search response."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from ... import Where
from ...errors import ConfigError, ImageError
from ...images import check_upload
from ...results import Embedded, Hit
from .. import schemas
from ..deps import ApiError, Services

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody, "description": text}
    for status, text in {
        400: "bad request (malformed body or parameters)",
        401: "missing or wrong API key",
        403: "writes are disabled on this server",
        404: "no such item",
        409: "the item id is taken",
        413: "upload too large",
        415: "not an image type we read",
        422: "invalid parameters, or an image that cannot be decoded",
        503: "not ready",
    }.items()
}


def item_out(hit: Hit, with_score: bool = True) -> schemas.Item:
    return schemas.Item(
        id=hit.id,
        label=hit.label,
        attributes=hit.attributes,
        image_url=f"/v1/items/{quote(hit.id, safe='')}/image",
        score=hit.score if with_score else None,
        group=hit.group,
    )


def checked_k(svc: Services, k: int | str) -> int:
    """``k`` checked in one place: a whole number from 1 to the server's ``max_k`` (the
    schemas state the same bounds in the OpenAPI document)."""
    try:
        k = int(k)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", "k must be an integer") from exc
    if not 1 <= k <= svc.settings.max_k:
        raise ApiError(422, "invalid_request", f"k must be from 1 to {svc.settings.max_k}, got {k}")
    return k


def parse_where(text: str | None) -> Where:
    """A ``where`` filter sent as a JSON string (form fields and query parameters)."""
    try:
        return Where.parse_json(text)
    except ConfigError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc


async def read_upload(svc: Services, upload: StarletteUpload) -> bytes:
    limit = svc.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ApiError(
            413, "payload_too_large", f"{upload.filename or 'the upload'} is over the {limit}-byte limit: send a smaller image"
        )
    try:
        check_upload(data, max_bytes=limit, max_pixels=svc.settings.max_pixels)
    except ImageError as exc:
        raise ApiError(exc.http_status, exc.code, f"{upload.filename or 'upload'}: {exc}") from exc
    return data


async def embed_uploads(svc: Services, names: list[str], images: list[bytes]) -> Embedded:
    """The uploaded images embedded (style vectors float32 [N, D] and their novelty),
    micro-batched with other requests; 422 naming the first that cannot be read."""
    done = await svc.batcher.embed(images)
    if (first := done.first_failure()) is not None:
        raise ApiError(422, "bad_image", f"{names[first[0]]}: {first[1]}")
    return done


def only_fields(given: Iterable[str], allowed: Sequence[str]) -> None:
    """422 for form fields the schema does not have (its ``additionalProperties`` is false)."""
    stray = sorted(set(given) - set(allowed))
    if stray:
        raise ApiError(
            422, "invalid_request", f"unexpected form field(s) {', '.join(stray)}: this endpoint takes {', '.join(allowed)}"
        )


def strict_form(*allowed: str) -> Any:
    """A dependency that refuses multipart fields beyond ``allowed``."""

    async def check(request: Request) -> None:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            only_fields((await request.form()).keys(), allowed)

    return Depends(check)


async def empty_hint(svc: Services, found: bool, where: Any) -> str | None:
    """Why a filtered answer is empty (a value no item has), else ``None``."""
    if found or not where:
        return None
    return await run_in_threadpool(svc.engine.snapshot.hint, where)


async def search_response(svc: Services, query: str, hits: list[Hit], where: Any, t0: float) -> schemas.SearchResponse:
    return schemas.SearchResponse(
        query=query,
        results=[item_out(h) for h in hits],
        took_ms=elapsed_ms(t0),
        hint=await empty_hint(svc, bool(hits), where),
        familiarity=None,
    )


def elapsed_ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


def base64_image(svc: Services, text: str, name: str) -> bytes:
    """A base64-encoded photo of a JSON body, within the upload limits."""
    limit = svc.settings.max_upload_bytes
    if len(text) > (limit + 2) // 3 * 4 + 4:
        raise ApiError(413, "payload_too_large", f"{name} is over the {limit}-byte limit: send a smaller image")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "invalid_request", f"{name} is not valid base64") from exc
    try:
        check_upload(data, max_bytes=limit, max_pixels=svc.settings.max_pixels)
    except ImageError as exc:
        raise ApiError(exc.http_status, exc.code, f"{name}: {exc}") from exc
    return data
