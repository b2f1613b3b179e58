"""Explaining a match: block shares and heat maps."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from .. import schemas
from ..deps import Reader, Services
from .common import (
    ERRORS,
    elapsed_ms,
    item_out,
    read_upload,
    strict_form,
)

router = APIRouter(prefix="/v1", responses=ERRORS)


@router.get("/explain", response_model=schemas.ExplainResponse, summary="Why an item matches another: block shares, heat maps")
async def explain_items(
    svc: Reader,
    query: Annotated[str, Query(min_length=1, description="the indexed item searched from (its id)")],
    item: Annotated[str, Query(min_length=1, description="the indexed item it matched (its id)")],
    grid: Annotated[int, Query(ge=2, le=64, description="cells per side of the heat maps")] = 16,
) -> schemas.ExplainResponse:
    t0 = time.perf_counter()
    why = await run_in_threadpool(svc.engine.explain, f"item:{query}", item)
    return _explained(svc, f"item:{query}", item, why, grid, t0)


@router.post(
    "/explain",
    response_model=schemas.ExplainResponse,
    summary="Why an item matches an uploaded photo: block shares, heat maps",
    dependencies=[strict_form("file", "item", "grid")],
)
async def explain_upload(
    svc: Reader,
    file: Annotated[UploadFile, File(description="the photo searched with")],
    item: Annotated[str, Form(min_length=1, description="the indexed item it matched (its id)")],
    grid: Annotated[int, Form(ge=2, le=64)] = 16,
) -> schemas.ExplainResponse:
    t0 = time.perf_counter()
    data = await read_upload(svc, file)
    why = await run_in_threadpool(svc.engine.explain, data, item)
    return _explained(svc, file.filename or "upload", item, why, grid, t0)


def _explained(svc: Services, query: str, item: str, why: Any, grid: int, t0: float) -> schemas.ExplainResponse:
    body = why.to_dict(grid)
    return schemas.ExplainResponse(query=query, item=item_out(svc.engine.get(item)), took_ms=elapsed_ms(t0), **body)
