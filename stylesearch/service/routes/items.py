"""Indexed items: browse, similar, image, get, add, remove."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import TypeAdapter, ValidationError

from ...catalog import path_of
from ...images import sniff_image_type
from ...results import Hit
from .. import schemas
from ..deps import ApiError, Reader, Writer
from .common import (
    ERRORS,
    checked_k,
    embed_uploads,
    empty_hint,
    item_out,
    parse_where,
    read_upload,
    search_response,
    strict_form,
)

router = APIRouter(prefix="/v1", responses=ERRORS)


@router.get("/items", response_model=schemas.ItemPage, summary="Browse indexed items (optionally filtered)")
async def list_items(
    svc: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=schemas.OFFSET_LIMIT)] = 0,
    where: Annotated[str | None, Query(description="JSON object; " + schemas.WHERE_DESCRIPTION)] = None,
) -> schemas.ItemPage:
    filt = parse_where(where)
    hits = await run_in_threadpool(svc.engine.browse, filt, limit, offset)
    total = await run_in_threadpool(svc.engine.count, filt)
    return schemas.ItemPage(
        items=[item_out(h, with_score=False) for h in hits],
        total=total,
        offset=offset,
        hint=await empty_hint(svc, total > 0, filt),
    )


@router.get("/items/{item_id:path}/similar", response_model=schemas.SearchResponse, summary="Items in the style of an item")
async def similar(item_id: str, query: Annotated[schemas.SimilarQuery, Query()], svc: Reader) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    filt = parse_where(query.where)
    hits = await run_in_threadpool(lambda: svc.engine.similar(item_id, checked_k(svc, query.k), filt, **query.arrangement()))
    return await search_response(svc, f"item:{item_id}", hits, filt, t0)


@router.get(
    "/items/{item_id:path}/image",
    response_class=FileResponse,
    summary="The photo of an indexed item",
    responses={200: {"content": {"image/*": {}}, "description": "the image file"}},
)
async def item_image(item_id: str, svc: Reader) -> FileResponse:
    hit = await run_in_threadpool(svc.engine.get, item_id)  # only files that belong to indexed items
    path = path_of(hit.path)
    try:
        with path.open("rb") as fh:
            mime = sniff_image_type(fh.read(16))
    except OSError as exc:
        raise ApiError(404, "image_missing", f"the photo of item {item_id!r} is no longer on disk") from exc
    if mime is None:
        raise ApiError(404, "image_missing", f"the file of item {item_id!r} is not an image")
    return FileResponse(path, media_type=mime, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


@router.get("/items/{item_id:path}", response_model=schemas.Item, summary="One indexed item")
async def get_item(item_id: str, svc: Reader) -> schemas.Item:
    return item_out(await run_in_threadpool(svc.engine.get, item_id), with_score=False)


@router.post(
    "/items",
    response_model=schemas.AddResponse,
    status_code=201,
    summary="Add a photo to the index (API key)",
    dependencies=[strict_form("file", "id", "label", "attributes")],
)
async def add_item(
    svc: Writer,
    file: Annotated[UploadFile, File(description="the product photo")],
    id: Annotated[str | None, Form(min_length=1, max_length=512, description="item id (default: a hash of the image)")] = None,
    label: Annotated[str | None, Form(min_length=1, max_length=200, description="its style, if known")] = None,
    attributes: Annotated[str | None, Form(description='JSON object of attributes, e.g. {"articleType": "Shirts"}')] = None,
) -> schemas.AddResponse:
    attrs: dict[str, str] = {}
    if attributes:
        try:
            attrs = TypeAdapter(dict[str, str]).validate_json(attributes)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", "attributes must be a JSON object of strings") from exc
    data = await read_upload(svc, file)
    item_id = id or hashlib.sha1(data).hexdigest()[:16]
    vectors = (await embed_uploads(svc, [file.filename or "file"], [data])).values
    await run_in_threadpool(svc.engine.add_vectors, vectors, [item_id], [data], [label], [attrs])
    added = Hit(item_id, 1.0, label, "", attrs)  # what was just written; no lookup needed
    return schemas.AddResponse(item=item_out(added, with_score=False), items=len(svc.engine))


@router.delete("/items/{item_id:path}", response_model=schemas.RemoveResponse, summary="Remove an item (API key)")
async def remove_item(item_id: str, svc: Writer) -> schemas.RemoveResponse:
    await run_in_threadpool(svc.engine.remove, [item_id])
    return schemas.RemoveResponse(removed=item_id, items=len(svc.engine))
