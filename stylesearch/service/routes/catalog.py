"""The catalog as a whole: sync, duplicates, labels, attributes, what is served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ...catalog import Columns
from ...config import DUPLICATE_THRESHOLD, environment
from .. import schemas
from ..deps import ApiError, Reader, Writer
from .common import ERRORS

router = APIRouter(prefix="/v1", responses=ERRORS)


@router.post(
    "/sync", response_model=schemas.SyncResponse, summary="Bring the index up to date with its catalog on the server (API key)"
)
async def sync(body: schemas.SyncRequest, svc: Writer) -> dict[str, Any]:
    roots = svc.settings.roots()
    for given in [body.catalog] + ([body.manifest] if body.manifest else []):
        if not any(Path(given).resolve().is_relative_to(root) for root in roots):
            raise ApiError(
                403,
                "sync_not_allowed",
                f"{given!r} is not under a folder this server may sync from"
                + (f" ({', '.join(map(str, roots))})" if roots else "; set STYLESEARCH_SYNC_ROOTS to allow one"),
            )
    columns = Columns(body.path_column, body.id_column, body.label_column, body.unlabelled)
    report = await run_in_threadpool(svc.engine.sync, body.catalog, body.manifest, columns=columns)
    return report.to_dict()


# --------------------------------------------------------------------------- describing


@router.get("/duplicates", response_model=schemas.DuplicatesResponse, summary="Groups of near-duplicate items")
async def duplicates(
    svc: Reader,
    threshold: Annotated[
        float,
        Query(
            gt=0,
            le=1,
            description="copy score at or above which two items are copies (the same pixels, re-encoded, resized, mirrored …)",
        ),
    ] = DUPLICATE_THRESHOLD,
    limit: Annotated[int, Query(ge=1, le=1000, description="groups returned, largest first")] = 100,
) -> schemas.DuplicatesResponse:
    groups = await run_in_threadpool(svc.engine.duplicates, threshold)
    shown = [schemas.DuplicateGroup.model_validate(g.to_dict()) for g in groups[:limit]]
    return schemas.DuplicatesResponse(groups=shown, total_groups=len(groups), threshold=threshold)


@router.get("/labels", response_model=schemas.LabelsResponse, summary="Style labels and their item counts")
async def labels(svc: Reader) -> schemas.LabelsResponse:
    return schemas.LabelsResponse(labels=await run_in_threadpool(svc.engine.labels))


@router.get("/attributes", response_model=dict[str, dict[str, int]], summary="Attribute values (for filters) with counts")
async def attributes(svc: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, dict[str, int]]:
    return await run_in_threadpool(svc.engine.attribute_values, limit)


@router.get("/index", response_model=schemas.IndexInfo, summary="What is served: size, model, search backend")
async def index_info(svc: Reader) -> dict[str, Any]:
    info = await run_in_threadpool(svc.engine.info)
    info.pop("index", None)  # the server's file system is not the client's business
    info["card_fields"] = list(environment().card_fields)  # what the page's cards show ($STYLESEARCH_CARD_FIELDS)
    return json.loads(json.dumps(info, default=str))
