"""Classifying photos, and a photo set's style shares."""

from __future__ import annotations

import time
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter, ValidationError

from .. import schemas
from ..deps import ApiError, Reader
from .common import (
    ERRORS,
    checked_k,
    elapsed_ms,
    embed_uploads,
    item_out,
    parse_where,
    read_upload,
    strict_form,
)

router = APIRouter(prefix="/v1", responses=ERRORS)


@router.post(
    "/classify",
    response_model=schemas.ClassifyResponse,
    summary="Style of uploaded photos, with evidence",
    dependencies=[strict_form("file", "method", "k", "prior", "min_confidence", "where", "min_familiarity")],
)
async def classify(
    svc: Reader,
    file: Annotated[list[UploadFile], File(description="one or more product photos")],
    method: Annotated[Literal["knn", "linear", "both"], Form()] = "both",
    k: Annotated[int, Form(ge=1, le=schemas.K_LIMIT)] = 10,
    prior: Annotated[
        Literal["catalog", "uniform"],
        Form(description="catalog: the index's label shares mixed with uniform (default); uniform: every style alike"),
    ] = "catalog",
    min_confidence: Annotated[float | None, Form(ge=0, le=1)] = None,
    where: Annotated[str | None, Form(description="JSON object; " + schemas.WHERE_DESCRIPTION)] = None,
    min_familiarity: Annotated[
        float | None, Form(ge=0, le=1, description="below it the label is null, reason out_of_catalog (0: off)")
    ] = None,
) -> schemas.ClassifyResponse:
    t0 = time.perf_counter()
    if len(file) > svc.settings.max_files:
        raise ApiError(413, "too_many_files", f"at most {svc.settings.max_files} images per request")
    names = [f.filename or f"file{i + 1}" for i, f in enumerate(file)]
    data = [await read_upload(svc, f) for f in file]
    vectors = await embed_uploads(svc, names, data)
    verdicts = await run_in_threadpool(
        svc.engine.classify_vectors,
        vectors,
        checked_k(svc, k),
        parse_where(where),
        min_confidence,
        method,
        prior,
        min_familiarity,
    )
    fields = set(schemas.Classification.model_fields) - {"image", "neighbors"}
    results = [  # validated, Literal fields included, from the library's answer
        schemas.Classification.model_validate(
            {**{f: getattr(v, f) for f in fields}, "image": name, "neighbors": [item_out(h) for h in v.neighbors]}
        )
        for name, v in zip(names, verdicts)
    ]
    return schemas.ClassifyResponse(results=results, took_ms=elapsed_ms(t0))


# --------------------------------------------------------------------------- shares


@router.post(
    "/shares",
    response_model=schemas.SharesResponse,
    summary="Style shares of a photo set (uploads and/or indexed items), with 95 % intervals",
    dependencies=[strict_form("file", "items", "k")],
)
async def style_shares(
    svc: Reader,
    file: Annotated[list[UploadFile] | None, File(description="photos of the set")] = None,
    items: Annotated[str | None, Form(description='JSON list of indexed item ids in the set, e.g. ["a", "b"]')] = None,
    k: Annotated[int, Form(ge=1, le=schemas.K_LIMIT)] = 10,
) -> schemas.SharesResponse:
    from ... import shares

    t0 = time.perf_counter()
    uploads = file or []
    if len(uploads) > svc.settings.max_files:
        raise ApiError(413, "too_many_files", f"at most {svc.settings.max_files} images per request")
    try:
        ids = TypeAdapter(list[str]).validate_json(items) if items else []
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "items must be a JSON list of item ids") from exc
    if not uploads and not ids:
        raise ApiError(422, "invalid_request", "send the photos as file fields, or their item ids as items")
    parts = []
    if uploads:
        names = [f.filename or f"file{i + 1}" for i, f in enumerate(uploads)]
        parts.append((await embed_uploads(svc, names, [await read_upload(svc, f) for f in uploads])).values)
    if ids:
        parts.append((await run_in_threadpool(svc.engine.snapshot.vectors_of, ids))[1])
    result = await run_in_threadpool(shares.of, svc.engine, np.concatenate(parts), None, checked_k(svc, k))
    return schemas.SharesResponse(**result, took_ms=elapsed_ms(t0))
